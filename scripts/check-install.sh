#!/usr/bin/env bash
# Checks an installed libadak (make install PREFIX=...): SONAME and symlinks, pkg-config
# metadata, and that neither the library nor the CLI needs the Swift toolchain at run time.
# usage: scripts/check-install.sh PREFIX
set -euo pipefail

prefix=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
major=$(sed -n 's/^#define ADAK_VERSION_MAJOR \([0-9]*\)$/\1/p' "$repo/include/adak.h")
minor=$(sed -n 's/^#define ADAK_VERSION_MINOR \([0-9]*\)$/\1/p' "$repo/include/adak.h")
patch=$(sed -n 's/^#define ADAK_VERSION_PATCH \([0-9]*\)$/\1/p' "$repo/include/adak.h")
version=$major.$minor.$patch
lib=$prefix/lib/libadak.so.$version
fail() { echo "check-install: $*" >&2; exit 1; }

[ -f "$lib" ] || fail "$lib is missing"
[ "$(readlink "$prefix/lib/libadak.so.$major")" = "libadak.so.$version" ] || fail "libadak.so.$major does not point at libadak.so.$version"
[ "$(readlink "$prefix/lib/libadak.so")" = "libadak.so.$major" ] || fail "libadak.so does not point at libadak.so.$major"
[ -f "$prefix/include/adak.h" ] || fail "include/adak.h is missing"
[ -f "$prefix/include/adak.hpp" ] || fail "include/adak.hpp is missing"
[ -x "$prefix/bin/adak" ] || fail "bin/adak is missing"

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libadak.so.$major" ] || fail "SONAME is '$soname', expected libadak.so.$major"

for f in "$lib" "$prefix/bin/adak"; do
    if readelf -d "$f" | grep -E 'R(UN)?PATH' | grep -q /opt/swift; then
        fail "$f has a run path into the Swift toolchain"
    fi
    deps=$(env -i ldd "$f")
    if echo "$deps" | grep -q 'not found'; then
        echo "$deps" >&2
        fail "$f has unresolved dependencies"
    fi
    if echo "$deps" | grep -Eq 'libswift|/opt/swift'; then
        echo "$deps" >&2
        fail "$f depends on the Swift toolchain's libraries"
    fi
done

pcversion=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion adak)
[ "$pcversion" = "$version" ] || fail "pkg-config says version '$pcversion', expected $version"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --libs --static adak | grep -q -- '-lomp' \
    || fail "adak.pc has no Libs.private for OpenMP"

echo "check-install: $prefix: libadak.so.$version (SONAME libadak.so.$major), adak.h, adak.pc $pcversion, bin/adak; no Swift toolchain dependency"
