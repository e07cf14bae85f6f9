#!/usr/bin/env bash
# Fuzzes the GGUF loader (through the C ABI) and the tokenizers with libFuzzer under
# AddressSanitizer (with LeakSanitizer), for SECONDS in total: two thirds on the loader, one
# third on the tokenizers. Starts from the seed corpus built from the fixtures plus the
# committed regression corpus (fuzz/regress/), and keeps what it learns in build/fuzz/corpus-*.
# A crash, hang (> 10 s per input), leak or sanitizer report stops the run with a nonzero status
# and leaves the input in build/fuzz/artifacts/; copy it to fuzz/regress/<harness>/ once fixed,
# so that `make test` replays it forever after.
#
# usage: scripts/fuzz.sh SECONDS [gguf|tokenizer|both]    (default: both)
#        ADAK_FUZZ_RUNS=N scripts/fuzz.sh 0 gguf           (N executions instead of a time limit)
# Environment: FIXTURES (default Tests/Fixtures), FUZZ_ARGS (extra libFuzzer flags),
# FUZZ_JOBS=N: N fuzzer processes sharing the corpus (each does ADAK_FUZZ_RUNS / N runs; logs in
# build/fuzz/job-*.log).
set -euo pipefail

seconds=${1:?usage: scripts/fuzz.sh SECONDS [gguf|tokenizer|both]}
which=${2:-both}
repo=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${FIXTURES:-$repo/Tests/Fixtures}
out=$repo/build/fuzz
inst=$repo/build/inst-fuzz

"$repo/scripts/build-instrumented.sh" "$inst" fuzz
mapfile -t link < "$inst/link-flags"
swift_bin=$(dirname "$(readlink -f "$(command -v swiftc)")")
mkdir -p "$out/artifacts"

if [ ! -x "$out/fuzz-gguf" ] || [ "$repo/fuzz/gguf_loader.c" -nt "$out/fuzz-gguf" ] || [ "$inst/.stamp-fuzz" -nt "$out/fuzz-gguf" ]; then
    "$swift_bin/clang" -c -g -O1 -fsanitize=fuzzer-no-link,address -I "$repo/include" \
        "$repo/fuzz/gguf_loader.c" -o "$out/gguf_loader.o"
    swiftc "${link[@]}" "$inst"/obj/*.o "$out/gguf_loader.o" -o "$out/fuzz-gguf"
fi
if [ ! -x "$out/fuzz-tokenizer" ] || [ "$repo/fuzz/TokenizerFuzz.swift" -nt "$out/fuzz-tokenizer" ] || [ "$inst/.stamp-fuzz" -nt "$out/fuzz-tokenizer" ]; then
    swiftc -parse-as-library -module-name TokenizerFuzz -O -g -I "$inst/mod" \
        -Xcc -fmodule-map-file="$inst/include/module.modulemap" \
        "${link[@]}" "$repo/fuzz/TokenizerFuzz.swift" "$inst"/obj/kernels-*.o "$inst/obj/AdaK.o" -o "$out/fuzz-tokenizer"
fi

python3 "$repo/fuzz/make_seeds.py" "$fixtures" "$out/seeds"
mkdir -p "$out/corpus-gguf" "$out/corpus-tokenizer"
cd "$out"  # -jobs mode writes fuzz-N.log into the working directory
export OMP_NUM_THREADS=1
# Swift's backtracer trips ASan when a harness check fails (fatalError); libFuzzer's own report
# and the saved input are what matter.
export SWIFT_BACKTRACE=enable=no
export ADAK_FUZZ_VOCABS=$fixtures/tokenizer/smollm2.vocab.gguf:$fixtures/tokenizer/gemma3.vocab.gguf
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}

run() {
    local name=$1 secs=$2 maxlen=$3
    local jobs=${FUZZ_JOBS:-1}
    local limit=(-max_total_time="$secs")
    if [ -n "${ADAK_FUZZ_RUNS:-}" ]; then limit=(-runs="$(( (ADAK_FUZZ_RUNS + jobs - 1) / jobs ))"); fi
    if [ "$jobs" -gt 1 ]; then limit+=(-jobs="$jobs" -workers="$jobs"); fi
    echo "fuzz: $name for ${ADAK_FUZZ_RUNS:-$secs s}${ADAK_FUZZ_RUNS:+ runs} ($jobs process(es))"
    # shellcheck disable=SC2086
    "$out/fuzz-$name" "${limit[@]}" -timeout=10 -rss_limit_mb=4096 -max_len="$maxlen" \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" ${FUZZ_ARGS:-} \
        "$out/corpus-$name" "$out/seeds/$name" "$repo/fuzz/regress/$name"
    if [ "$jobs" -gt 1 ]; then
        # -jobs mode: each process logs to fuzz-N.log and reports its own totals.
        local total=0 failed=0 log
        for log in fuzz-*.log; do
            tail -3 "$log" | sed "s/^/$log: /"
            total=$((total + $(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)))
            grep -q "^Done [0-9]* runs" "$log" || failed=1
            mv "$log" "$out/job-$name-$log"
        done
        echo "fuzz: $name: $total executions in total"
        [ "$failed" -eq 0 ]
    fi
}

case $which in
    gguf) run gguf "$seconds" 140000 ;;
    tokenizer) run tokenizer "$seconds" 4096 ;;
    both) run gguf $((seconds * 2 / 3 > 0 ? seconds * 2 / 3 : 1)) 140000
          run tokenizer $((seconds / 3 > 0 ? seconds / 3 : 1)) 4096 ;;
    *) echo "fuzz.sh: unknown harness '$which' (gguf, tokenizer, both)" >&2; exit 2 ;;
esac
