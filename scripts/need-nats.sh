#!/usr/bin/env bash
# Makes sure NATS with JetStream answers on 127.0.0.1:4222 for the ssenats
# tests: starts Debian's nats-server when it is installed but down, and
# installs it with apt-get when it is missing. Some tests also start
# nats-server processes of their own (on free ports, with temporary
# JetStream directories), so the binary must be on the PATH.
#
# When NATS cannot be had, this fails under CI=true (the NATS tests must
# run there); elsewhere it says so and exits 0, and the NATS tests skip.
set -euo pipefail

# The server's INFO line says whether JetStream is on.
ping() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222 && head -n1 <&3' 2>/dev/null | grep -q '"jetstream":true'; }

give_up() {
	if [ "${CI:-}" = true ]; then
		echo "need-nats: $*" >&2
		exit 1
	fi
	echo "need-nats: $*; the NATS tests will be skipped" >&2
	exit 0
}

if ! command -v nats-server >/dev/null; then
	command -v apt-get >/dev/null || give_up "nats-server is missing and there is no apt-get to install it"
	[ "$(id -u)" -eq 0 ] || give_up "nats-server is missing and installing it needs root"
	echo "need-nats: installing Debian's nats-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || give_up "apt-get update failed"
	apt-get install -y -qq --no-install-recommends nats-server >/dev/null || give_up "apt-get install nats-server failed"
fi

ping && exit 0

dir=/var/lib/nats-server
mkdir -p "$dir" 2>/dev/null || dir=$(mktemp -d)
echo "need-nats: starting nats-server with JetStream on 127.0.0.1:4222 (store: $dir)" >&2
nohup "$(command -v nats-server)" -a 127.0.0.1 -p 4222 -js -sd "$dir" >/dev/null 2>&1 &
for _ in $(seq 50); do
	ping && exit 0
	sleep 0.1
done
give_up "nats-server started but does not answer with JetStream on 127.0.0.1:4222"
