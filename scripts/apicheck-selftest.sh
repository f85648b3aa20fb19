#!/usr/bin/env bash
# Proves that scripts/apicheck.sh catches a break: in a scratch clone, a
# release tag with one more exported function than the next commit has.
# The check must pass for a compatible change, fail when the next version
# keeps the minor version, and pass again when the next version may break.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q . "$tmp/repo"
cp scripts/apicheck.sh "$tmp/repo/scripts/apicheck.sh"
cd "$tmp/repo"
git -c user.name=selftest -c user.email=selftest@localhost commit -q --allow-empty -m base
commit() { git add -A && git -c user.name=selftest -c user.email=selftest@localhost commit -q -m "$1"; }

cat >core/sse/zz_apicheck_selftest.go <<'GO'
package sse

// RemovedLater exists only in the scratch release of the API check's self-test.
func RemovedLater() {}
GO
commit "release with RemovedLater"
git tag core/v0.1.0

cat >core/sse/zz_apicheck_added.go <<'GO'
package sse

// AddedLater exists only in the scratch clone of the API check's self-test.
func AddedLater() {}
GO
commit "compatible: AddedLater"
RELEASE_VERSION=v0.1.1 bash scripts/apicheck.sh core >"$tmp/compatible" 2>&1 || {
	cat "$tmp/compatible"; echo "apicheck self-test: a compatible change failed the check" >&2; exit 1; }

git rm -q core/sse/zz_apicheck_selftest.go
commit "incompatible: RemovedLater removed"
if RELEASE_VERSION=v0.1.1 bash scripts/apicheck.sh core >"$tmp/broken" 2>&1; then
	cat "$tmp/broken"; echo "apicheck self-test: a removed function passed as compatible" >&2; exit 1
fi
grep -q 'RemovedLater' "$tmp/broken" || {
	cat "$tmp/broken"; echo "apicheck self-test: the report does not name RemovedLater" >&2; exit 1; }
RELEASE_VERSION=v0.2.0 bash scripts/apicheck.sh core >"$tmp/bumped" 2>&1 || {
	cat "$tmp/bumped"; echo "apicheck self-test: a new minor version before v1 may break, but failed" >&2; exit 1; }
echo "apicheck self-test: a removed function fails v0.1.1 and passes v0.2.0; an added one passes:"
sed 's/^/  /' "$tmp/broken"
