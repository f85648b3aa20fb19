#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, race-enabled tests in
# every workspace module, and a short fuzz run of the encoder. It installs
# the tools it needs. `make test` and .ci/run call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v go >/dev/null || { echo "Go 1.26 or newer is needed: https://go.dev/dl/" >&2; exit 1; }
export PATH="$(go env GOPATH)/bin:$PATH"

if ! command -v staticcheck >/dev/null; then
	step "installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

# Services and tools the tests use: each need-*.sh installs or starts one
# (Redis, Chromium, nginx, the Node client). Outside CI, one that cannot be
# had makes its tests skip with a reason; under CI=true it is an error.
for need in scripts/need-*.sh; do
	step "$(basename "$need" .sh)"
	bash "$need"
done

# The workspace modules, as go.work lists them.
mapfile -t modules < <(go list -m -f '{{.Dir}}')

step "generated and copied files"
bash scripts/testkit.sh -check
while read -r dir; do
	[ -z "$dir" ] || [ "${dir:0:1}" = "#" ] && continue
	# A module's zip holds its own directory only: each published module
	# carries the license.
	cmp -s LICENSE "$dir/LICENSE" || { echo "$dir/LICENSE is missing or differs from LICENSE" >&2; exit 1; }
done < scripts/published-modules

step "gofmt"
unformatted=$(gofmt -l "${modules[@]}")
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

for dir in "${modules[@]}"; do
	rel=${dir#"$PWD"/}
	step "$rel: go vet, staticcheck"
	(cd "$dir" && go vet ./... && staticcheck ./...)
	step "$rel: go test -race"
	(cd "$dir" && go test -race -count=1 -timeout 10m ./...)
done

# Each published module alone, an install with go get from a module proxy
# of the checkout without the network, Go 1.27, the API check.
bash scripts/release-check.sh

step "core: fuzz the encoder for ${FUZZTIME:=20s}"
(cd core && go test -run '^$' -fuzz '^FuzzAppendEvent$' -fuzztime "$FUZZTIME" -fuzzminimizetime 5s ./sse)

step "all checks passed"
