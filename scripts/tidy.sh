#!/usr/bin/env bash
# Tidies a published module against the checkout: scripts/tidy.sh DIR...
# go mod tidy ignores go.work, so the siblings at the next release version
# come from a module proxy built from the checkout; third-party modules
# from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
proxy=$(mktemp -d)
trap 'rm -rf "$proxy"' EXIT
bash scripts/modproxy.sh "$proxy/p"
gomodcache=$(go env GOMODCACHE)
for dir in "$@"; do
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod GONOSUMDB='github.com/ssekit/*' GONOSUMCHECK=1 GOSUMDB=off \
		GOPROXY="file://$proxy/p,https://proxy.golang.org" GOMODCACHE="$proxy/cache" go mod tidy)
done
# The siblings' sums name the checkout of today: keep them out of go.sum.
for dir in "$@"; do
	sed -i '/^github.com\/ssekit\/ssekit\//d' "$dir/go.sum"
done
echo "tidied: $*" >&2
: "$gomodcache"
