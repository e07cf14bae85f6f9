#!/usr/bin/env bash
# Builds the synthetic benchmark models (never committed) with the fixture generator and
# llama.cpp's quantiser, into ${ADAK_CACHE:-.cache}/bench/NAME.TYPE.gguf:
#   mixtral-shaped: d 1024, 16 layers, 16 heads / 4 kv heads, 8 experts of FFN 3584, top-2
#                   (experts ~89% of the bytes a token reads, as in Mixtral-8x7B)
#   olmoe-shaped:   d 1024, 16 layers, 16 heads, 64 experts of FFN 512, top-8
#                   (experts ~75% of the bytes a token reads, as in OLMoE-1B-7B)
#   qwen3-30b-a3b-shaped: d 2048, 8 of Qwen3-30B-A3B's 48 layers, 32 heads / 4 kv heads of dim
#                   128, 128 experts of FFN 768, top-8
# usage: bench/make_models.sh [TYPES] [NAMES]   (TYPES default "q8_0 q4_0", llama.cpp file types
# in lower case, e.g. "q4_k_m q6_k iq4_xs mxfp4_moe"; NAMES default all three shapes)
# Needs python3 with a venv (bench/.venv, made on first use; ADAK_BENCH_VENV overrides).
# The tokenizer is the tiny fixtures' 256-token byte vocabulary: with SmolLM2's 49152 tokens the
# LM head alone would be ~20% of the bytes a token reads at d = 1024, far from the real models'
# proportions (Mixtral-8x7B: 32000 × 4096 against 45B expert weights).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fixtures=$root/Tests/Fixtures
out=${ADAK_CACHE:-$root/.cache}/bench
types=${1:-q8_0 q4_0}
names=${2:-mixtral-shaped olmoe-shaped qwen3-30b-a3b-shaped}
mkdir -p "$out"
. "$here/venv.sh"

make_one() {  # name arch extra-args...
    local name=$1 arch=$2; shift 2
    case " $names " in *" $name "*) ;; *) return 0 ;; esac
    local missing=()
    for q in $types; do [ -f "$out/$name.$q.gguf" ] || missing+=("$q"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ ! -f "$out/$name.f16.gguf" ]; then
        echo "== $name: generating f16 weights"
        "$PY" "$fixtures/tools/make_moe_gguf.py" --arch "$arch" --out "$out/$name.f16.gguf.tmp" \
            --tok-src "$fixtures/models/tiny-mixtral.f32.gguf" --dtype f16 --embd-dtype f16 --seed 1 --name "$name" "$@"
        mv "$out/$name.f16.gguf.tmp" "$out/$name.f16.gguf"
    fi
    for q in "${missing[@]}"; do
        echo "== $name: quantising to $q"
        "$PY" "$here/quantize.py" "$out/$name.f16.gguf" "$out/$name.$q.gguf.tmp" "$q"
        mv "$out/$name.$q.gguf.tmp" "$out/$name.$q.gguf"
    done
}

make_one mixtral-shaped llama --n-embd 1024 --n-layer 16 --n-head 16 --n-head-kv 4 --n-ff 3584 \
    --n-expert 8 --n-expert-used 2
make_one olmoe-shaped olmoe --n-embd 1024 --n-layer 16 --n-head 16 --n-head-kv 16 --n-ff 512 \
    --n-expert 64 --n-expert-used 8
make_one qwen3-30b-a3b-shaped qwen3moe --n-embd 2048 --n-layer 8 --n-head 32 --n-head-kv 4 --head-dim 128 \
    --n-ff 768 --n-expert 128 --n-expert-used 8
ls -la "$out"
