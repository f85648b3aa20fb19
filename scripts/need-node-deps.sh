#!/usr/bin/env bash
# Installs the npm packages of e2e/node (the eventsource client that
# e2e/node_test.go runs) with `npm ci`, from package-lock.json, when
# node_modules is missing or older than package-lock.json.
#
# Without node and npm this fails under CI=true (the tests would fail too);
# elsewhere it says so and exits 0, and the Node tests skip.
set -euo pipefail
cd "$(dirname "$0")/../e2e/node"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	if [ "${CI:-}" = true ]; then
		echo "need-node-deps: node and npm are needed (Debian packages nodejs and npm)" >&2
		exit 1
	fi
	echo "need-node-deps: node or npm is missing; the Node tests will be skipped" >&2
	exit 0
fi

# npm writes node_modules/.package-lock.json at each install.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
	exit 0
fi
echo "need-node-deps: npm ci in e2e/node" >&2
npm ci --no-audit --no-fund
