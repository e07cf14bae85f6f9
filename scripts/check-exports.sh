#!/usr/bin/env bash
# Checks that a libadak.so exports exactly the functions declared in include/adak.h:
# every declared function is a defined dynamic symbol, and every defined dynamic adak_*
# symbol is declared. Also checks that no symbol other than adak_* is exported.
# usage: scripts/check-exports.sh LIBRARY [HEADER]
set -euo pipefail

lib=$1
header=${2:-$(cd "$(dirname "$0")/.." && pwd)/include/adak.h}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Declared functions: strip comments with the preprocessor (without expanding includes),
# then take every lower-case adak_ identifier followed by "(" that is not a function-pointer
# typedef "(*name)(" (the look-ahead wants "(" right after the name).
cc -fpreprocessed -dD -E -P "$header" 2>/dev/null \
    | grep -oP '(?<![\w])adak_[a-z0-9_]+(?=\s*\()' | sort -u > "$tmp/declared"
nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u > "$tmp/exported"
grep '^adak_' "$tmp/exported" > "$tmp/exported_adak" || true
grep -v '^adak_' "$tmp/exported" > "$tmp/exported_other" || true

status=0
missing=$(comm -23 "$tmp/declared" "$tmp/exported_adak")
extra=$(comm -13 "$tmp/declared" "$tmp/exported_adak")
if [ -n "$missing" ]; then
    echo "check-exports: declared in adak.h but not exported by $lib:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    status=1
fi
if [ -n "$extra" ]; then
    echo "check-exports: exported by $lib but not declared in adak.h:" >&2
    echo "$extra" | sed 's/^/  /' >&2
    status=1
fi
if [ -s "$tmp/exported_other" ]; then
    echo "check-exports: $lib exports symbols outside the adak_ namespace:" >&2
    sed 's/^/  /' "$tmp/exported_other" >&2
    status=1
fi
n=$(wc -l < "$tmp/declared")
if [ "$n" -eq 0 ]; then
    echo "check-exports: no function declarations found in $header" >&2
    status=1
fi
if [ $status -eq 0 ]; then
    echo "check-exports: $n functions declared in adak.h, exactly these exported by $(basename "$lib")"
fi
exit $status
