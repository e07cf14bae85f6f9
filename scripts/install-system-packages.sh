#!/usr/bin/env bash
# Installs the Debian packages libadak needs to build and test, when they are missing:
# OpenBLAS, LLVM's OpenMP runtime 19 (Debian's default libomp is LLVM 14, too old for the
# code clang 21 emits; see docs/DESIGN.md §6), pkg-config, and venv for the Python tests.
# The linker (lld) comes with the Swift toolchain.
set -euo pipefail

packages=(libopenblas-dev libomp-19-dev pkg-config python3-venv binutils)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present (${packages[*]})"
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "system packages: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
