#!/usr/bin/env bash
# Checks the published modules as users will meet them (see
# docs/releasing.md): each alone, outside the workspace, against exactly
# what its go.mod declares, and on the newer supported Go; installed with
# go get into a new module, with no network, from a module proxy built
# from the checkout; and the API check.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(cat scripts/release-version)
tmp=$(mktemp -d)
cache=$(go env GOMODCACHE)

# The repository's modules at the release version must come from the
# proxy built here, never from an earlier run's module cache.
forget() {
	for d in "$cache/github.com/ssekit" "$cache/cache/download/github.com/ssekit"; do
		[ -e "$d" ] && chmod -R u+w "$d" && rm -rf "$d"
	done
	return 0
}
cleanup() { forget; rm -rf "$tmp"; }
trap cleanup EXIT

step() { printf '\n==> release check: %s\n' "$*"; }

modules=()
while read -r dir; do
	[ -z "$dir" ] || [ "${dir:0:1}" = "#" ] && continue
	modules+=("$dir")
done < scripts/published-modules

step "module proxy of every published module at $version"
bash scripts/modproxy.sh "$tmp/proxy" "$version"
forget

alone=(GOWORK=off GOFLAGS=-mod=mod GONOSUMDB='github.com/ssekit/*' GOSUMDB=off)
# Third-party modules a module declares may not be in the module cache
# yet (the workspace may select other versions): they come from the Go
# module proxy. The repository's own come from the proxy built here only.
online="file://$tmp/proxy,https://proxy.golang.org"

# Each module alone runs on the newer supported Go (GOTOOLCHAIN=go1.27.3),
# so that one pass proves both: the modules stand alone, and their tests
# pass on Go 1.27 as the workspace pass shows they do on the Go installed.
# The go command verifies a toolchain against the checksum database, so
# this pass keeps it on (GONOSUMDB still leaves the repository's own
# modules out of it).
newer=(GOTOOLCHAIN=go1.27.3 GOSUMDB=sum.golang.org)
for dir in "${modules[@]}"; do
	step "$dir alone (GOWORK=off, Go 1.27.3): vet, build, test"
	mkdir -p "$tmp/mod/$dir"
	cp "$dir/go.mod" "$tmp/mod/$dir/go.mod"
	[ -f "$dir/go.sum" ] && cp "$dir/go.sum" "$tmp/mod/$dir/go.sum"
	if grep -q '^replace\|^\s*github.com/ssekit/ssekit/[^ ]* =>' "$dir/go.mod"; then
		echo "$dir/go.mod has replace directives; a published module must not" >&2
		exit 1
	fi
	(cd "$dir" && env "${alone[@]}" "${newer[@]}" GOPROXY="$online" go vet -modfile="$tmp/mod/$dir/go.mod" ./... &&
		env "${alone[@]}" "${newer[@]}" GOPROXY="$online" go build -modfile="$tmp/mod/$dir/go.mod" ./... &&
		env "${alone[@]}" "${newer[@]}" GOPROXY="$online" go test -count=1 -modfile="$tmp/mod/$dir/go.mod" ./...)
done

step "install with go get into a new module, without the network"
# Everything the apps need is now in the module cache, which serves as a
# proxy; the network is off.
offline="file://$tmp/proxy,file://$cache/cache/download,off"
app="$tmp/app"
cp -r scripts/installcheck "$app"
(cd "$app" && mv go.mod.in go.mod &&
	env "${alone[@]}" GOPROXY="$offline" go get \
		"github.com/ssekit/ssekit/core@$version" \
		"github.com/ssekit/ssekit/chisse@$version" \
		"github.com/ssekit/ssekit/ginsse@$version" \
		"github.com/ssekit/ssekit/echosse@$version" \
		"github.com/ssekit/ssekit/echosse/echo5@$version" \
		"github.com/ssekit/ssekit/fibersse@$version" \
		"github.com/ssekit/ssekit/fibersse/fiber3@$version" &&
	env "${alone[@]}" GOPROXY="$offline" go mod tidy &&
	grep -q "github.com/ssekit/ssekit/ginsse $version" go.mod &&
	env "${alone[@]}" GOPROXY="$offline" go build -o "$tmp/bin/" ./... &&
	for app in nethttp chi gin echo4 echo5 fiber2 fiber3; do
		"$tmp/bin/$app"
	done)

step "API compatibility with the last release"
bash scripts/apicheck.sh
bash scripts/apicheck-selftest.sh

step "release check passed ($version)"
cd "$root"
