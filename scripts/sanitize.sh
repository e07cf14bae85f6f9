#!/usr/bin/env bash
# Runs the C tests against the library's code built with sanitizers (scripts/build-instrumented.sh).
#
# usage: scripts/sanitize.sh asan   ASan + UBSan (C kernels; ASan for Swift, which has no UBSan on
#                                   Linux): misuse, misuse_more, threads, fuzz_replay, the
#                                   tokenizer regression replay, and the Swift GGUF/tokenizer
#                                   tests with `swift test --sanitize=address`
#        scripts/sanitize.sh tsan   TSan: 4 threads, each with its own session on one shared
#                                   model, with 1 and with 2 OpenMP threads per session
# Environment: FIXTURES (default Tests/Fixtures), SANITIZE_SWIFT_TESTS=0 skips swift test.
set -euo pipefail

mode=${1:?usage: scripts/sanitize.sh asan|tsan}
repo=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${FIXTURES:-$repo/Tests/Fixtures}
inst=$repo/build/inst-$mode
out=$repo/build/san-$mode
tiny=$fixtures/models/tiny-mixtral.f32.gguf
swift_bin=$(dirname "$(readlink -f "$(command -v swiftc)")")

"$repo/scripts/build-instrumented.sh" "$inst" "$mode"
mapfile -t link < "$inst/link-flags"
mkdir -p "$out"
case $mode in
    asan) cflags=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer) ;;
    tsan) cflags=(-fsanitize=thread) ;;
    *) echo "sanitize.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac

build() {  # build NAME SOURCE
    "$swift_bin/clang" -c -g -O1 "${cflags[@]}" -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE \
        -I "$repo/include" "$2" -o "$out/$1.o"
    swiftc "${link[@]}" "$inst"/obj/*.o "$out/$1.o" -o "$out/$1"
}

passed=0
failed=0
run() {
    local name=$1
    shift
    echo "--- $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "sanitize: FAILED: $name" >&2; fi
}

if [ "$mode" = asan ]; then
    export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export OMP_NUM_THREADS=2
    for t in misuse misuse_more threads fuzz_replay; do build "$t" "$repo/Tests/C/$t.c"; done
    # The tokenizer harness, linked without libFuzzer's main: replay the regression corpus.
    swiftc -parse-as-library -module-name TokenizerReplay -O -g -sanitize=address -I "$inst/mod" \
        -Xcc -fmodule-map-file="$inst/include/module.modulemap" "${link[@]}" \
        "$repo/fuzz/TokenizerFuzz.swift" "$repo/fuzz/TokenizerReplayMain.swift" \
        "$inst"/obj/kernels-*.o "$inst/obj/AdaK.o" -o "$out/tokenizer_replay"
    for model in "$fixtures"/models/tiny-*.gguf; do
        run "misuse $(basename "$model")" "$out/misuse" "$model"
    done
    run "misuse_more" "$out/misuse_more" "$tiny"
    run "misuse_more q4_0" "$out/misuse_more" "$fixtures/models/tiny-qwen2moe.q4_0.gguf"
    run "threads 4x2, 2 kernel threads" "$out/threads" "$tiny" 4 2 2
    run "fuzz_replay" "$out/fuzz_replay" "$repo/fuzz/regress/gguf" "$fixtures"/models/tiny-*.gguf
    run "tokenizer_replay" env ADAK_FUZZ_VOCABS="$fixtures/tokenizer/smollm2.vocab.gguf:$fixtures/tokenizer/gemma3.vocab.gguf" \
        "$out/tokenizer_replay" "$repo/fuzz/regress/tokenizer"
    if [ "${SANITIZE_SWIFT_TESTS:-1}" != 0 ]; then
        # The Swift loader and tokenizer tests under ASan (debug build of its own).
        run "swift test (ASan): GGUF, tokenizer, reliability" \
            env LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp:print_suppressions=0" swift test --package-path "$repo" --scratch-path "$repo/.build-asan" --sanitize=address \
                --filter 'GGUFTests|TokenizerTests|Reliability'
    fi
else
    # No suppressions are needed. ignore_noninstrumented_modules (which Archer suggests) is left
    # off on purpose: it would also hide reports from frames in libomp/OpenBLAS.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
    build threads "$repo/Tests/C/threads.c"
    run "threads 4x3, 1 kernel thread" "$out/threads" "$tiny" 4 3 1
    # With OpenMP teams inside each session: LLVM's Archer tool tells TSan about OpenMP's
    # barriers and tasks (libomp itself is not instrumented).
    run "threads 4x2, 2 kernel threads (Archer)" env OMP_TOOL_LIBRARIES="${LLVM_DIR:-/usr/lib/llvm-19}/lib/libarcher.so" \
        ARCHER_OPTIONS=verbose=0 "$out/threads" "$tiny" 4 2 2
    # Q4_0: the 8-row repacked kernels, their shared work counters, and the repack at load
    run "threads 4x2 on q4_0, 2 kernel threads (Archer)" env OMP_TOOL_LIBRARIES="${LLVM_DIR:-/usr/lib/llvm-19}/lib/libarcher.so" \
        ARCHER_OPTIONS=verbose=0 "$out/threads" "$fixtures/models/tiny-mixtral.q4_0.gguf" 4 2 2
fi
echo "sanitize $mode: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
