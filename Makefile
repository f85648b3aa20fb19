# The two commands of the README, and the benchmarks.
.PHONY: demo test bench

demo:
	go run ./examples/demo

test:
	./scripts/test.sh

# Every benchmark scenario against ssekit and its peers (< 10 minutes on
# 2 cores); writes bench/results/latest.json and docs/benchmarks.md.
bench:
	cd bench && go run ./cmd/run
