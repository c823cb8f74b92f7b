#!/bin/sh
# Install the Debian packages the build and the tests need, only those that
# are missing, so `make run` and `make test` work on a fresh Debian 12 machine.
# Arguments name extra packages (`make test VALGRIND=1` passes valgrind).
set -eu
# hdf5-filter-plugin (the LZ4 and bzip2 HDF5 filters) is optional for the
# server, which offers them when libhdf5 finds them; installed here so that
# the tests exercise them.
# libhttp-parser-dev: the HTTP port's parser. chromium and prometheus (promtool and
# the server) are for the tests of the viewer and of /metrics; npm (with nodejs)
# builds the viewer (make viewer), but a machine whose nodejs already brings npm
# (nodesource's) must not get Debian's npm package, which conflicts with it.
PKGS="build-essential pkg-config libhdf5-dev libuv1-dev libinih-dev liblzf-dev libssl-dev openssl libhiredis-dev redis-server hdf5-tools
hdf5-filter-plugin libhttp-parser-dev chromium prometheus
python3 python3-h5py python3-numpy python3-msgpack python3-msgpack-numpy python3-pytest $*"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
echo "installing missing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
