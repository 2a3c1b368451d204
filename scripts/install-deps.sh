#!/bin/sh
# Install every build and test dependency of cmgate from Debian's
# packages.  Idempotent and non-interactive; run as root (or with sudo).
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
 libevent-dev libcurl4-openssl-dev libjson-c-dev libssl-dev liblmdb-dev
 libcmocka-dev curl openssl ca-certificates procps util-linux perl-base
 groff-base systemd strace linux-perf iso-codes
 clang libclang-rt-dev valgrind
 nginx-light wrk gnuplot-nox
 chromium"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
