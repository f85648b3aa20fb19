#!/usr/bin/env bash
# Writes a Go module proxy directory holding every published module of the
# checkout at one version: scripts/modproxy.sh OUT [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
version=${2:-$(cat scripts/release-version)}
args=()
while read -r dir; do
	[ -z "$dir" ] || [ "${dir:0:1}" = "#" ] && continue
	[ -f "$dir/go.mod" ] || continue
	mod=$(awk '$1 == "module" { print $2; exit }' "$dir/go.mod")
	args+=("$mod=$dir")
done < scripts/published-modules
rm -rf "$out"
mkdir -p "$out"
(cd tools && go run ./modproxy -repo .. -version "$version" -out "$out" "${args[@]}")
