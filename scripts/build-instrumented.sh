#!/usr/bin/env bash
# Builds the library's code (C kernels, the AdaK core, the C-ABI exports) as plain object files
# instrumented with sanitizers, for linking straight into a test program or a fuzz harness.
# SwiftPM is bypassed on purpose: a sanitized *shared* library would need the sanitizer runtime
# preloaded into every host, and libFuzzer's instrumentation has no `swift build` switch, whereas
# swiftc/clang compile and link everything into one executable that carries its own runtime.
#
# usage: scripts/build-instrumented.sh OUTDIR MODE
#   MODE  fuzz   libFuzzer coverage + ASan   (link programs with: swiftc -sanitize=fuzzer,address)
#         asan   ASan + UBSan                (swiftc -sanitize=address; Swift 6.3 on Linux has no
#                                             -sanitize=undefined: UBSan instruments the C
#                                             kernels, whose handlers ship in the ASan runtime,
#                                             and Swift code traps on overflow/bounds anyway)
#         tsan   TSan                        (swiftc -sanitize=thread)
# Leaves OUTDIR/obj/{kernels-*.o,AdaK.o,AdaKExports.o}, OUTDIR/mod/ (Swift modules) and
# OUTDIR/link-flags (the swiftc flags to link a program against the objects).
set -euo pipefail

out=$1
mode=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
llvm=${LLVM_DIR:-/usr/lib/llvm-19}
swift_bin=$(dirname "$(readlink -f "$(command -v swiftc)")")
clang=$swift_bin/clang

case $mode in
    fuzz) c_san=(-fsanitize=fuzzer-no-link,address); s_san=(-sanitize=fuzzer,address) ;;
    asan) c_san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
          s_san=(-sanitize=address) ;;
    tsan) c_san=(-fsanitize=thread); s_san=(-sanitize=thread) ;;
    *) echo "build-instrumented: unknown mode '$mode' (fuzz, asan, tsan)" >&2; exit 2 ;;
esac

mkdir -p "$out/obj" "$out/mod" "$out/include"
# The kernels' module map, as SwiftPM would generate it for the umbrella header.
cat > "$out/include/module.modulemap" <<MAP
module CAdaKKernels {
    umbrella header "$repo/Sources/CAdaKKernels/include/CAdaKKernels.h"
    export *
}
MAP

stamp=$out/.stamp-$mode
newest=$(find "$repo/Sources/CAdaKKernels" "$repo/Sources/AdaK" "$repo/Sources/AdaKExports" "$repo/include" "$0" -type f -newer "$stamp" 2>/dev/null | head -1 || true)
if [ -f "$stamp" ] && [ -z "$newest" ]; then
    echo "build-instrumented: $out is up to date"
else
    echo "build-instrumented: C kernels ($mode)"
    for c in "$repo"/Sources/CAdaKKernels/*.c; do
        "$clang" -c -g -O2 -fno-math-errno -fPIC -fopenmp -idirafter "$llvm/lib/clang/19/include" \
            "${c_san[@]}" -I "$repo/Sources/CAdaKKernels/include" "$c" -o "$out/obj/kernels-$(basename "${c%.c}").o"
    done
    echo "build-instrumented: AdaK ($mode)"
    swiftc -parse-as-library -module-name AdaK -wmo -O -g "${s_san[@]}" \
        -Xcc -fmodule-map-file="$out/include/module.modulemap" -I "$repo/Sources/CAdaKKernels/include" \
        -emit-module -emit-module-path "$out/mod/AdaK.swiftmodule" \
        -c $(find "$repo/Sources/AdaK" -name '*.swift' | sort) -o "$out/obj/AdaK.o"
    echo "build-instrumented: AdaKExports ($mode)"
    swiftc -parse-as-library -module-name AdaKExports -wmo -O -g "${s_san[@]}" \
        -Xcc -fmodule-map-file="$out/include/module.modulemap" -I "$out/mod" -I "$repo/include" \
        -c $(find "$repo/Sources/AdaKExports" -name '*.swift' | sort) -o "$out/obj/AdaKExports.o"
    touch "$stamp"
fi
printf '%s\n' "${s_san[@]}" -use-ld=lld -L"$llvm/lib" -Xlinker -rpath -Xlinker "$llvm/lib" -lomp -lopenblas -lm > "$out/link-flags"
