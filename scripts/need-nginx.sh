#!/usr/bin/env bash
# Makes sure Debian's nginx is there for e2e/nginx_test.go, installing the
# package nginx-light, or nginx where that is missing, with apt-get when
# /usr/sbin/nginx is not there. The tests start their own nginx with a
# configuration in a temporary directory; the package's own service is not
# needed.
#
# When nginx cannot be installed, this fails under CI=true (the tests would
# fail too); elsewhere it says so and exits 0, and the nginx tests skip.
set -euo pipefail

if [ -x /usr/sbin/nginx ]; then
	exit 0
fi

give_up() {
	if [ "${CI:-}" = true ]; then
		echo "need-nginx: $*" >&2
		exit 1
	fi
	echo "need-nginx: $*; the nginx tests will be skipped" >&2
	exit 0
}

command -v apt-get >/dev/null || give_up "/usr/sbin/nginx is missing and there is no apt-get to install it"
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || give_up "/usr/sbin/nginx is missing and installing it needs root or sudo"
	sudo=sudo
fi

echo "need-nginx: installing Debian's nginx" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || give_up "apt-get update failed"
for pkg in nginx-light nginx; do
	if $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; then
		break
	fi
	echo "need-nginx: could not install $pkg" >&2
done
[ -x /usr/sbin/nginx ] || give_up "installing nginx-light or nginx did not give /usr/sbin/nginx"
/usr/sbin/nginx -v
