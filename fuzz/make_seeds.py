#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora from the test fixtures.

usage: fuzz/make_seeds.py FIXTURES_DIR OUT_DIR

OUT_DIR/gguf: the small quantised fixture models (every architecture, q4_0 and q8_0; and the
IQ4_NL, IQ4_XS and MXFP4 models of Tests/Fixtures/iq4mx/seeds), plus each architecture's q4_0
(or, without one, q8_0) and each of those seeds cut short right after its metadata, in the
middle of its tensor infos and in its data, so
the fuzzer starts from the loader's early exits as well as from complete models; and moe256
with its matrices retyped to Q5_0/Q5_1/Q2_K..Q6_K (random blocks; one seed with NaN/inf scales).
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

# K-quant / Q5_x seeds: moe256.f16.gguf (rows of 256) with its matrices retyped to the natively
# multiplied block types (one type per seed, and one mixed seed), random quants with sane fp16
# scales, plus a mixed seed with some NaN/inf/huge scales (the loader must reject it cleanly).
KQUANT = {6: (22, [0]), 7: (24, [0, 2]), 10: (84, [80, 82]), 11: (110, [108]), 12: (144, [0, 2]),
          13: (176, [0, 2]), 14: (210, [208])}  # ggml type: (block bytes, fp16 scale offsets)


def retyped(data, pick, bad_scales, seed):
    import random
    rnd = random.Random(seed)
    meta_end, infos_end = header_ends(data)
    _, _, n_tensors, _ = struct.unpack_from("<IIQQ", data, 0)
    off, infos = meta_end, []
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", data, off)
        name = data[off + 8: off + 8 + n]
        off += 8 + n
        (nd,) = struct.unpack_from("<I", data, off)
        dims = struct.unpack_from("<%dQ" % nd, data, off + 4)
        ttype, toff = struct.unpack_from("<IQ", data, off + 4 + 8 * nd)
        off += 4 + 8 * nd + 12
        infos.append([name, dims, ttype, toff])
    align = lambda x: (x + 31) // 32 * 32
    out_infos, blobs, pos = b"", [], 0
    for i, (name, dims, ttype, toff) in enumerate(infos):
        elems = 1
        for d in dims:
            elems *= d
        if ttype == 1 and len(dims) >= 2 and dims[0] % 256 == 0:
            t = pick(i)
            bb, offs = KQUANT[t]
            nb = elems // (32 if t in (6, 7) else 256)
            blob = bytearray(rnd.getrandbits(8) for _ in range(nb * bb))
            for b in range(nb):
                for o in offs:
                    h = 0x2000 + rnd.randrange(0x0c00)  # ~0.008 .. 0.03
                    if bad_scales and rnd.random() < 0.01:
                        h = rnd.choice([0x7e00, 0x7c00, 0xfc00, 0x7bff])
                    struct.pack_into("<H", blob, b * bb + o, h)
            ttype = t
        else:
            size = elems * (2 if ttype == 1 else 4)
            blob = data[align(infos_end) + toff: align(infos_end) + toff + size]
        out_infos += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        out_infos += struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", ttype, pos)
        blobs.append(bytes(blob))
        pos = align(pos + len(blob))
    head = data[:meta_end] + out_infos
    body = b""
    for blob in blobs:
        body += blob + b"\0" * (align(len(blob)) - len(blob))
    return head + b"\0" * (align(len(head)) - len(head)) + body


moe = open(os.path.join(models, "moe256.f16.gguf"), "rb").read()
types = sorted(KQUANT)
for t in types:
    with open(os.path.join(gguf_dir, "moe256.type%d.gguf" % t), "wb") as f:
        f.write(retyped(moe, lambda i, t=t: t, False, t))
    count += 1
for name, bad in (("mixed", False), ("badscales", True)):
    with open(os.path.join(gguf_dir, "moe256.%s.gguf" % name), "wb") as f:
        f.write(retyped(moe, lambda i: types[i % len(types)], bad, 99))
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
