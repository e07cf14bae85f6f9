#!/bin/sh
# Decode/prefill speed of Ada-K at the trained allocator's operating points vs static Top-K, in one
# run (settings interleaved, two passes, so that drift in the machine's load hits all of them).
# usage: scripts/bench-adak.sh MODEL ALLOCATOR OUTDIR [THREADS]
set -e
M=$1; A=$2; OUT=$3; T=${4:-2}
B=${ADAK:-.build/release/adak-cli}
mkdir -p "$OUT"
for pass in 1 2; do
  $B bench -m "$M" -t "$T" --no-probe --rounds 3 --prompt-tokens 128 --gen-tokens 64 --routing topk --json "$OUT/bench-topk-$pass.json"
  $B bench -m "$M" -t "$T" --no-probe --rounds 3 --prompt-tokens 128 --gen-tokens 64 --routing adak --allocator "$A" --json "$OUT/bench-adak-$pass.json"
  $B bench -m "$M" -t "$T" --no-probe --rounds 3 --prompt-tokens 128 --gen-tokens 64 --routing adak --allocator "$A" --budget 0.75 --json "$OUT/bench-adak-b0.75-$pass.json"
  $B bench -m "$M" -t "$T" --no-probe --rounds 3 --prompt-tokens 128 --gen-tokens 64 --routing topk --k 6 --json "$OUT/bench-topk6-$pass.json"
done
