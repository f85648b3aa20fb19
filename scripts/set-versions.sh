#!/usr/bin/env bash
# Sets the version of a release of every published module:
#
#	scripts/set-versions.sh vX.Y.Z
#
# writes it to scripts/release-version, makes every go.mod of the
# repository require its ssekit siblings at that version, and drops the
# replace directives of the published modules (the workspace, go.work,
# serves local development; the unpublished modules keep theirs, so that
# they also build with GOWORK=off).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/set-versions.sh vX.Y.Z}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "not a release version: $version" >&2; exit 2; }
echo "$version" >scripts/release-version

published=" "
while read -r dir; do
	[ -z "$dir" ] || [ "${dir:0:1}" = "#" ] && continue
	published+="$dir "
done < scripts/published-modules

for gomod in $(git ls-files '*go.mod') $(git ls-files --others --exclude-standard '*go.mod'); do
	dir=$(dirname "$gomod")
	args=()
	for req in $(cd "$dir" && go mod edit -json | awk -F'"' '/"Path": "github.com\/ssekit\/ssekit\// { print $4 }' | sort -u); do
		mod=$(awk '$1 == "module" { print $2; exit }' "$gomod")
		[ "$req" = "$mod" ] && continue
		args+=("-require=$req@$version")
		if [[ $published == *" $dir "* ]]; then
			args+=("-dropreplace=$req")
		fi
	done
	[ ${#args[@]} -eq 0 ] && continue
	(cd "$dir" && go mod edit "${args[@]}")
	echo "$gomod: ssekit modules at $version"
done
