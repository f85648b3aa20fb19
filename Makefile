# The two commands of the README.
.PHONY: demo test

demo:
	go run ./examples/demo

test:
	./scripts/test.sh
