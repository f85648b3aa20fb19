#!/usr/bin/env bash
# Compares the API of every published module with its last release tag
# (DIR/vX.Y.Z) and fails on an incompatible change that the next version
# (scripts/release-version, or RELEASE_VERSION) does not allow: before v1
# a new minor version may break, from v1 on only a new major may (and a
# new major is a new module path, so it has no earlier tag).
#
#	scripts/apicheck.sh [DIR...]   (default: every published module)
#
# A module without a release tag has nothing to be compatible with.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
next=${RELEASE_VERSION:-$(cat scripts/release-version)}

dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
	while read -r dir; do
		[ -z "$dir" ] || [ "${dir:0:1}" = "#" ] && continue
		dirs+=("$dir")
	done < scripts/published-modules
fi

tmp=$(mktemp -d)
cleanup() {
	for wt in "$tmp"/old-*; do
		[ -d "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1
	done
	rm -rf "$tmp"
	git worktree prune
}
trap cleanup EXIT

apidiff=$(cd tools && go tool -n apidiff)

# allowed OLD NEW: whether going from version OLD to NEW may break the API.
allowed() {
	local old=${1#v} new=${2#v}
	local omaj=${old%%.*} nmaj=${new%%.*}
	local orest=${old#*.} nrest=${new#*.}
	local omin=${orest%%.*} nmin=${nrest%%.*}
	[ "$omaj" != "$nmaj" ] && return 0
	[ "$omaj" = 0 ] && [ "$omin" != "$nmin" ] && return 0
	return 1
}

failed=0
checked=0
for dir in "${dirs[@]}"; do
	tag=$(git tag --list "$dir/v*" --sort=-v:refname | head -1)
	if [ -z "$tag" ]; then
		echo "apicheck: $dir: no release tag yet, nothing to compare with"
		continue
	fi
	old=${tag#"$dir/"}
	wt="$tmp/old-${dir//\//-}"
	git worktree add --detach --quiet "$wt" "$tag"
	mod=$(awk '$1 == "module" { print $2; exit }' "$dir/go.mod")
	report="$tmp/report-${dir//\//-}"
	: >"$report"
	# Every package of the old release must still be there, compatible.
	for pkg in $(cd "$wt/$dir" && go list ./... | grep -v '/internal\(/\|$\)'); do
		exp="$tmp/$(echo "$pkg" | tr / _)"
		(cd "$wt/$dir" && "$apidiff" -w "$exp.old" "$pkg")
		if ! (cd "$dir" && go list "$pkg" >/dev/null 2>&1); then
			echo "package $pkg: removed" >>"$report"
			continue
		fi
		(cd "$dir" && "$apidiff" -w "$exp.new" "$pkg")
		changes=$("$apidiff" -incompatible "$exp.old" "$exp.new")
		[ -n "$changes" ] && printf 'package %s\n%s\n' "$pkg" "$changes" >>"$report"
	done
	checked=$((checked + 1))
	if [ -s "$report" ]; then
		if allowed "$old" "$next"; then
			echo "apicheck: $mod: incompatible changes since $old, allowed in $next:"
			sed 's/^/  /' "$report"
		else
			echo "apicheck: $mod: incompatible changes since $old, which $next does not allow:" >&2
			sed 's/^/  /' "$report" >&2
			failed=1
		fi
	else
		echo "apicheck: $mod: compatible with $old"
	fi
done
cd "$root"
[ "$failed" = 0 ] || exit 1
echo "apicheck: $checked module(s) compared"
