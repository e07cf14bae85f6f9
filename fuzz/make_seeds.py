#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora from the test fixtures.

usage: fuzz/make_seeds.py FIXTURES_DIR OUT_DIR

OUT_DIR/gguf: the small quantised fixture models (every architecture, q4_0 and q8_0; and the
IQ4_NL, IQ4_XS and MXFP4 models of Tests/Fixtures/iq4mx/seeds), plus each architecture's q4_0
(or, without one, q8_0) and each of those seeds cut short right after its metadata, in the
middle of its tensor infos and in its data, so
the fuzzer starts from the loader's early exits as well as from complete models.
OUT_DIR/tokenizer: one control byte (vocabulary and flags, see fuzz/TokenizerFuzz.swift)
followed by texts taken from the fixtures' tokenizer cases.
"""
import json
import os
import struct
import sys

fixtures, out = sys.argv[1], sys.argv[2]
gguf_dir = os.path.join(out, "gguf")
tok_dir = os.path.join(out, "tokenizer")
os.makedirs(gguf_dir, exist_ok=True)
os.makedirs(tok_dir, exist_ok=True)


def skip_value(b, off, t):
    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t in fixed:
        return off + fixed[t]
    if t == 8:
        (n,) = struct.unpack_from("<Q", b, off)
        return off + 8 + n
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, off)
        off += 12
        for _ in range(n):
            off = skip_value(b, off, et)
        return off
    raise ValueError(f"value type {t}")


def header_ends(b):
    """Offsets of the end of the metadata and of the tensor infos."""
    _, _, n_tensors, n_kv = struct.unpack_from("<IIQQ", b, 0)
    off = 24
    for _ in range(n_kv):
        (n,) = struct.unpack_from("<Q", b, off)
        off += 8 + n
        (t,) = struct.unpack_from("<I", b, off)
        off = skip_value(b, off + 4, t)
    meta_end = off
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", b, off)
        off += 8 + n
        (nd,) = struct.unpack_from("<I", b, off)
        off += 4 + 8 * nd + 4 + 8
    return meta_end, off


models = os.path.join(fixtures, "models")
# IQ4_NL, IQ4_XS and MXFP4 models quantized by llama.cpp (Tests/Fixtures/tools/make_iq4_mxfp4_refs.py)
iq4mx = os.path.join(fixtures, "iq4mx", "seeds")
sources = [(models, n) for n in sorted(os.listdir(models)) if n.endswith(".q4_0.gguf") or n.endswith(".q8_0.gguf")]
sources += [(iq4mx, n) for n in sorted(os.listdir(iq4mx)) if n.endswith(".gguf")] if os.path.isdir(iq4mx) else []
count = 0
for folder, name in sources:
    data = open(os.path.join(folder, name), "rb").read()
    meta_end, infos_end = header_ends(data)
    stem = name[: -len(".gguf")]
    cuts = {"": len(data), ".meta": meta_end, ".infos": (meta_end + infos_end) // 2,
            ".data": (infos_end + len(data)) // 2}
    for suffix, end in cuts.items():
        if suffix and name.endswith(".q8_0.gguf") and os.path.exists(os.path.join(models, stem[:-5] + ".q4_0.gguf")):
            continue  # one set of cuts per architecture is enough (q4_0, else q8_0)
        with open(os.path.join(gguf_dir, stem + suffix + ".gguf"), "wb") as f:
            f.write(data[:end])
        count += 1

texts = set()
tokdir = os.path.join(fixtures, "tokenizer")
for name in sorted(os.listdir(tokdir)):
    if not name.endswith(".cases.jsonl"):
        continue
    with open(os.path.join(tokdir, name), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 40:
                break
            case = json.loads(line)
            text = case.get("text") if isinstance(case, dict) else None
            if isinstance(text, str) and len(text.encode()) <= 512:
                texts.add(text)
for i, text in enumerate(sorted(texts)):
    for control in (0x00, 0x01, 0x31, 0x20):
        with open(os.path.join(tok_dir, f"case{i:03d}-{control:02x}"), "wb") as f:
            f.write(bytes([control]) + text.encode())
print(f"make_seeds: {count} GGUF seeds, {len(texts) * 4} tokenizer seeds in {out}")
