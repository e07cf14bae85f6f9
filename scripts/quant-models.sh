#!/usr/bin/env bash
# Writes the quantized models other tests read, $QUANT_DIR/<base>.<TYPE>.gguf, with
# `adak quantize`, and checks each against the SHA-256 of llama.cpp's quantizer output recorded in
# Tests/Fixtures/quant/<base>.json (made by Tests/Fixtures/tools/make_quant_refs.py). A file already
# present with the right hash is kept; a mismatch is an error (the file is left as *.mismatch).
# usage: scripts/quant-models.sh ADAK_CLI QUANT_DIR FIXTURES DEMO_MODEL
set -euo pipefail

adak=$1 dir=$2 fixtures=$3 demo=$4
mkdir -p "$dir"

expected() { # base type -> sha256 from the reference JSON
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["types"][sys.argv[2]]["file_sha256"])' \
        "$fixtures/quant/$1.json" "$2"
}

status=0
build() { # base input type
    local base=$1 input=$2 type=$3
    local out="$dir/$base.$type.gguf" want
    want=$(expected "$base" "$type")
    if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want" ]; then
        return 0
    fi
    local t0=$SECONDS
    "$adak" quantize "$input" "$out" "$type" > /dev/null
    if [ "$(sha256sum "$out" | cut -d' ' -f1)" != "$want" ]; then
        mv "$out" "$out.mismatch"
        echo "quant-models: $base $type differs from llama.cpp's output (kept as $out.mismatch)" >&2
        status=1
        return 0
    fi
    echo "quant-models: $base.$type.gguf ($((SECONDS - t0)) s)"
}

for type in Q4_K_M MXFP4_MOE IQ4_XS Q6_K Q2_K; do
    build moe256 "$fixtures/models/moe256.f16.gguf" "$type"
done
for type in Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K IQ4_NL IQ4_XS; do
    build SmolLM2-135M-Instruct "$demo" "$type"
done
exit $status
