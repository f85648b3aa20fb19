#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests
# in e2e (chromium_test.go), installing the package when it is missing.
#
# It needs root and apt-get. Without them, or when the install fails, it
# says why and exits 0, so that a developer's run goes on and the browser
# tests skip themselves; under CI=true it exits 1 instead, since CI must run
# the browser tests (they fail there without Chromium, too).
set -euo pipefail

chromium=/usr/bin/chromium

if [ -x "$chromium" ]; then
	exit 0
fi

give_up() {
	echo "need-chromium: $*" >&2
	if [ "${CI:-}" = true ]; then
		echo "need-chromium: CI=true, so the browser tests must run: failing" >&2
		exit 1
	fi
	echo "need-chromium: the Chromium tests in e2e will be skipped" >&2
	exit 0
}

if [ "$EUID" -ne 0 ]; then
	give_up "$chromium is missing and installing it needs root (run: sudo apt-get install --no-install-recommends chromium)"
fi
if ! command -v apt-get >/dev/null; then
	give_up "$chromium is missing and there is no apt-get to install Debian's chromium package"
fi

echo "need-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update && apt-get install -y --no-install-recommends chromium; }; then
	give_up "apt-get could not install chromium"
fi
if [ ! -x "$chromium" ]; then
	give_up "the chromium package is installed but $chromium is not there"
fi
"$chromium" --version 2>/dev/null || true
