#!/usr/bin/env bash
# Makes sure Redis answers on 127.0.0.1:6379 for the sseredis tests:
# starts Debian's redis-server when it is installed but down, and installs
# it with apt-get when it is missing.
#
# When Redis cannot be had, this fails under CI=true (the Redis tests must
# run there); elsewhere it says so and exits 0, and the Redis tests skip.
set -euo pipefail

ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

ping && exit 0

give_up() {
	if [ "${CI:-}" = true ]; then
		echo "need-redis: $*" >&2
		exit 1
	fi
	echo "need-redis: $*; the Redis tests will be skipped" >&2
	exit 0
}

if ! command -v redis-server >/dev/null; then
	command -v apt-get >/dev/null || give_up "redis-server is missing and there is no apt-get to install it"
	[ "$(id -u)" -eq 0 ] || give_up "redis-server is missing and installing it needs root"
	echo "need-redis: installing Debian's redis-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || give_up "apt-get update failed"
	apt-get install -y -qq --no-install-recommends redis-server >/dev/null || give_up "apt-get install redis-server failed"
fi

echo "need-redis: starting redis-server on 127.0.0.1:6379" >&2
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null ||
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null ||
	give_up "redis-server did not start"
for _ in $(seq 50); do
	ping && exit 0
	sleep 0.1
done
give_up "redis-server started but does not answer on 127.0.0.1:6379"
