#!/bin/sh
# What `make fuzz` needs on top of the build's own packages: clang 14 and
# its runtime libraries (libFuzzer, ASan, UBSan). Only the fuzz targets call
# this, so `make test` never needs clang. Installs only what is missing.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
PKGS="clang-14 libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing missing Debian packages for fuzzing:$missing" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
fi
# `clang` is the name the Makefile uses (FUZZ_CC); Debian's clang-14 package
# installs only clang-14, the unversioned name comes from the `clang` package.
command -v clang >/dev/null 2>&1 || command -v clang-14 >/dev/null 2>&1 || {
    echo "fuzz/install-deps.sh: no clang after installing clang-14" >&2
    exit 1
}
