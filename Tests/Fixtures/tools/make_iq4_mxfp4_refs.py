#!/usr/bin/env python3
"""llama.cpp references for the IQ4_NL, IQ4_XS and MXFP4 kernels (Tests/Fixtures/iq4mx/).

usage: make_iq4_mxfp4_refs.py [--cache DIR] [--out DIR] [--only kernels|models]

Needs llama-cpp-python 0.3.36 (built from source; its bundled libggml-*.so) and numpy.
Writes, under --out (default Tests/Fixtures/iq4mx):

  kernels.bin  llama.cpp's own CPU kernels on random blocks, through ggml's type traits:
               per record (little endian) u32 type, u32 n, u32 wbytes, u32 xqbytes, weight row
               (wbytes), activations f32[n], their quantisation by llama.cpp's from_float
               (xqbytes: Q8_0 / Q8_K), vec_dot f32, dequantisation f32[n]. Weight rows have sane
               scales, and some have corrupted ones (NaN / inf fp16 scales, e8m0 0, 1, 254, 255).
  models.json  quantised files (sha256), settings, greedy ids and perplexities.
  SmolLM2-135M-Instruct.TYPE.NAME.{greedy_top32_ids,greedy_top32_logits,top32_ids,top32_logits}.npy
               for TYPE in IQ4_NL, IQ4_XS and the six prompts NAME of smollm2/cases.jsonl: the
               top 32 logits (descending, ties to the lower id) of the 32 incremental greedy
               steps (row 0: the last prompt position) and of one teacher-forced decode of
               prompt + those 32 greedy tokens (every position).
  moe256.TYPE.SEQ.{batch,incremental}.logits.npy  for TYPE in MXFP4_MOE, IQ4_XS: full logits
               [32, 256] of a 32-token sequence decoded in one batch and one token at a time;
               their perplexity (models.json) on kquant/moe256.ppl_tokens.npy, the same protocol.
  seeds/       small models of the new types for the fuzzers (fuzz/make_seeds.py), and copies
               with corrupted scales in fuzz/regress/gguf (replayed by `make test`).

The quantised models are made with llama.cpp's quantizer (llama_model_quantize, no importance
matrix; SmolLM2 from the demo Q4_1 with allow_requantize) at $ADAK_CACHE/quant/<base>.<TYPE>.gguf
unless they exist there already (`adak quantize` / `make quant-models` write the same bytes).
TYPE.pure: the same with llama.cpp's `pure` flag (every matrix in the type, none promoted to a
K-quant; IQ4_XS still falls back to IQ4_NL for rows of 576), which isolates the IQ4 kernels.
llama.cpp settings as Tests/Fixtures/smollm2: n_ctx 2048 (512 for perplexity), 2 threads, KV
cache F32, flash attention off, n_batch = n_ubatch = 512, default CPU repacking on.
"""
import argparse
import ctypes
import json
import os
import sys

import numpy as np

from fixture_files import sha256

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(FIX))

GGML_TYPE = {"Q8_0": 8, "Q8_K": 15, "IQ4_NL": 20, "IQ4_XS": 23, "MXFP4": 39}


# ---------------------------------------------------------------- kernels through ggml's traits

class CpuTraits(ctypes.Structure):
    _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p),
                ("vec_dot_type", ctypes.c_int), ("nrows", ctypes.c_int64)]


class TypeTraits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
TO_FLOAT = FROM_FLOAT
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                           ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def ggml_libs():
    import llama_cpp
    d = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    base = ctypes.CDLL(os.path.join(d, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(d, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    cpu.ggml_cpu_init()
    cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(CpuTraits)
    base.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    return base, cpu


def random_row(rng, tname, n, corrupt):
    """Random quant bytes with sane scales (d ~ 0.001..0.05, e8m0 around 2^-7) or corrupted ones."""
    if tname == "IQ4_NL":
        bs, blk = 18, 32
    elif tname == "MXFP4":
        bs, blk = 17, 32
    else:
        bs, blk = 136, 256
    row = bytearray(rng.integers(0, 256, size=n // blk * bs, dtype=np.uint8).tobytes())
    for b in range(n // blk):
        o = b * bs
        if tname == "MXFP4":
            e = int(rng.integers(115, 130))
            if corrupt:
                e = int(rng.choice([0, 1, 254, 255, e]))
            row[o] = e
        else:
            d = np.float16(rng.uniform(0.001, 0.05) * rng.choice([-1, 1]))
            if corrupt:
                d = rng.choice([np.float16(np.nan), np.float16(np.inf), np.float16(-np.inf), np.float16(65504), d])
            row[o:o + 2] = np.array([d], dtype=np.float16).tobytes()
    return bytes(row)


def random_acts(rng, n):
    x = np.empty(n, dtype=np.float32)
    for b in range(n // 32):
        kind = int(rng.integers(0, 8))
        scale = rng.uniform(0.01, 10)
        if kind == 0:
            x[32 * b:32 * b + 32] = 0
        elif kind == 1:  # exact ties at .5 of the 127 grid
            x[32 * b:32 * b + 32] = rng.integers(-254, 255, size=32) / 2
            x[32 * b + int(rng.integers(0, 32))] = 127
        else:
            x[32 * b:32 * b + 32] = rng.uniform(-1, 1, size=32) * scale
    return x


def make_kernels(out):
    base, cpu = ggml_libs()
    rng = np.random.default_rng(20261206)
    recs = []
    shapes = {"IQ4_NL": [32 * k for k in (1, 2, 3, 5, 9, 18)],
              "MXFP4": [32 * k for k in (1, 2, 3, 5, 9, 18)],
              "IQ4_XS": [256 * k for k in (1, 2, 3, 6)]}
    for tname, ns in shapes.items():
        t = GGML_TYPE[tname]
        tr = cpu.ggml_get_type_traits_cpu(t).contents
        vt = tr.vec_dot_type
        vtr = cpu.ggml_get_type_traits_cpu(vt).contents
        to_float = TO_FLOAT(base.ggml_get_type_traits(t).contents.to_float)
        vec_dot = VEC_DOT(tr.vec_dot)
        from_float = FROM_FLOAT(vtr.from_float)
        vsize = base.ggml_get_type_traits(vt).contents.type_size
        vblk = base.ggml_get_type_traits(vt).contents.blck_size
        for n in ns:
            for rep in range(4):
                corrupt = rep >= 2
                w = random_row(rng, tname, n, corrupt)
                x = random_acts(rng, n)
                xq = ctypes.create_string_buffer(n // vblk * vsize)
                from_float(x.ctypes.data, ctypes.addressof(xq), n)
                wb = ctypes.create_string_buffer(w, len(w))
                s = ctypes.c_float(0)
                vec_dot(n, ctypes.addressof(s), 0, ctypes.addressof(wb), 0, ctypes.addressof(xq), 0, 1)
                deq = np.zeros(n, dtype=np.float32)
                to_float(ctypes.addressof(wb), deq.ctypes.data, n)
                recs.append(np.array([t, n, len(w), len(xq.raw)], dtype="<u4").tobytes() + w + x.tobytes()
                            + xq.raw + np.array([s.value], dtype="<f4").tobytes() + deq.tobytes())
    with open(os.path.join(out, "kernels.bin"), "wb") as f:
        f.write(b"".join(recs))
    print(f"kernels.bin: {len(recs)} records")


# ---------------------------------------------------------------- models through llama.cpp

def quantize(src, dst, ftype_name, pure):
    import llama_cpp as L
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    p = L.llama_model_quantize_default_params()
    p.ftype = getattr(L, "LLAMA_FTYPE_MOSTLY_" + ftype_name)
    p.allow_requantize = True
    p.pure = pure
    p.nthread = 2
    tmp = dst + ".tmp"
    rc = L.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize({src} -> {ftype_name}) failed: {rc}")
    os.replace(tmp, dst)


class Runner:
    def __init__(self, path, n_ctx):
        import llama_cpp as L
        self.L = L
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        assert self.model, path
        cp = L.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = 512
        cp.n_threads = cp.n_threads_batch = 2
        cp.type_k = cp.type_v = 0  # F32
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = L.llama_init_from_model(self.model, cp)
        assert self.ctx
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(512, 0, 1)

    def clear(self):
        self.L.llama_memory_clear(self.L.llama_get_memory(self.ctx), True)

    def decode(self, tokens, pos0, all_logits):
        """One llama_decode of `tokens` at positions pos0...; logits [len or 1, n_vocab]."""
        L, b = self.L, self.batch
        assert len(tokens) <= 512
        b.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = int(t)
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if (all_logits or i == len(tokens) - 1) else 0
        rc = L.llama_decode(self.ctx, b)
        assert rc == 0, rc
        rows = range(len(tokens)) if all_logits else [len(tokens) - 1]
        return np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,)).copy()
                         for i in rows])

    def free(self):
        L = self.L
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


def top32(logits):
    ids = np.argsort(-logits, axis=-1, kind="stable")[..., :32].astype(np.int32)
    return ids, np.take_along_axis(logits, ids, axis=-1).astype(np.float32)


def smollm2_refs(path, tname, out, ppl=True):
    cases = [json.loads(l) for l in open(os.path.join(FIX, "smollm2/cases.jsonl"), encoding="utf-8")]
    r = Runner(path, 2048)
    res = {}
    for c in cases:
        ids = c["ids"]
        r.clear()
        logits = r.decode(ids, 0, False)[0]
        greedy, rows = [], []
        for i in range(32):
            rows.append(logits)
            t = int(np.argmax(logits))  # first maximum: ties to the lower id
            greedy.append(t)
            if i < 31:
                logits = r.decode([t], len(ids) + i, False)[0]
        gi, gl = top32(np.stack(rows))
        r.clear()
        ti, tl = top32(r.decode(ids + greedy, 0, True))
        stem = os.path.join(out, f"SmolLM2-135M-Instruct.{tname}.{c['name']}")
        np.save(stem + ".greedy_top32_ids.npy", gi)
        np.save(stem + ".greedy_top32_logits.npy", gl)
        np.save(stem + ".top32_ids.npy", ti)
        np.save(stem + ".top32_logits.npy", tl)
        res[c["name"]] = greedy
    r.free()
    if not ppl:
        return res, None
    return res, perplexity(path, os.path.join(FIX, "smollm2/ppl_tokens.npy"))


def perplexity(path, tokens_file):
    """The fixture protocol (Tests/Fixtures/README.md section 4): windows of 512, positions
    256..510 scored."""
    tokens = np.load(tokens_file)
    r = Runner(path, 512)
    nll = []
    for w in range(len(tokens) // 512):
        win = tokens[512 * w:512 * (w + 1)].tolist()
        r.clear()
        lg = r.decode(win, 0, True).astype(np.float64)
        for p in range(256, 511):
            row = lg[p]
            m = row.max()
            nll.append(-(row[win[p + 1]] - m - np.log(np.exp(row - m).sum())))
    r.free()
    nll = np.array(nll)
    ppl = float(np.exp(nll.mean()))
    err = ppl * float(np.sqrt(((nll ** 2).mean() - nll.mean() ** 2) / (len(nll) - 1)))
    return {"ppl": ppl, "stderr": err, "scored_tokens": len(nll)}


def moe_sequences():
    a = np.load(os.path.join(FIX, "reference/tiny-qwen3moe.input_ids.npy")).astype(int).tolist()[:32]
    b = [1] + list("Experts in MXFP4 and IQ4_XS, 0123!".encode())[:31]
    return {"ids": a, "text": b}


def moe_refs(path, tname, out):
    r = Runner(path, 256)
    for name, seq in moe_sequences().items():
        r.clear()
        batch = r.decode(seq, 0, True)
        r.clear()
        inc = np.concatenate([r.decode([t], i, False) for i, t in enumerate(seq)])
        stem = os.path.join(out, f"moe256.{tname}.{name}")
        np.save(stem + ".batch.logits.npy", batch.astype(np.float32))
        np.save(stem + ".incremental.logits.npy", inc.astype(np.float32))
    r.free()


# ---------------------------------------------------------------- fuzz seeds

def tensor_data(path):
    """(name, ggml type, absolute offset, bytes) of every tensor."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    return [(t.name, int(t.tensor_type), int(t.data_offset), int(t.n_bytes)) for t in r.tensors]


def corrupt(src, dst, rng):
    """A copy with broken scales in the IQ4_NL / IQ4_XS / MXFP4 tensors: fp16 NaN, inf, -inf,
    65504 or e8m0 0, 1, 254, 255 in a quarter of the blocks."""
    data = bytearray(open(src, "rb").read())
    sizes = {20: 18, 23: 136, 39: 17}
    for name, t, off, n in tensor_data(src):
        if t not in sizes:
            continue
        for b in range(n // sizes[t]):
            if rng.random() >= 0.25:
                continue
            o = off + b * sizes[t]
            if t == 39:
                data[o] = int(rng.choice([0, 1, 254, 255]))
            else:
                data[o:o + 2] = int(rng.choice([0x7e00, 0x7c00, 0xfc00, 0x7bff])).to_bytes(2, "little")
    open(dst, "wb").write(bytes(data))


def make_seeds(out):
    """Small models of the new types (Tests/Fixtures/iq4mx/seeds) and corrupted copies of them
    (fuzz/regress/gguf), quantized by llama.cpp."""
    import subprocess
    import tempfile
    seeds = os.path.join(out, "seeds")
    regress = os.path.join(REPO, "fuzz/regress/gguf")
    os.makedirs(seeds, exist_ok=True)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        # a one-layer qwen3moe with rows of 256 (IQ4_XS needs them)
        f16 = os.path.join(tmp, "tiny256.f16.gguf")
        subprocess.run([sys.executable, os.path.join(HERE, "make_moe_gguf.py"), "--arch", "qwen3moe", "--out", f16,
                        "--tok-src", os.path.join(FIX, "models/tiny-mixtral.f32.gguf"), "--name", "tiny256",
                        "--n-embd", "256", "--n-layer", "1", "--n-head", "4", "--n-head-kv", "2", "--head-dim", "64",
                        "--n-ff", "256", "--n-expert", "2", "--n-expert-used", "1", "--dtype", "f16",
                        "--embd-dtype", "f16", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
        for src, ftype, pure, name in [(os.path.join(FIX, "models/tiny-qwen3moe.f32.gguf"), "IQ4_NL", True, "tiny-qwen3moe.iq4_nl"),
                                       (os.path.join(FIX, "models/tiny-qwen3moe.f32.gguf"), "MXFP4_MOE", False, "tiny-qwen3moe.mxfp4"),
                                       (f16, "IQ4_XS", True, "tiny256.iq4_xs")]:
            dst = os.path.join(seeds, name + ".gguf")
            if os.path.exists(dst):
                os.remove(dst)
            quantize(src, dst, ftype, pure)
            corrupt(dst, os.path.join(regress, name + ".bad-scales.gguf"), rng)
            print("seed", dst, os.path.getsize(dst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=os.environ.get("ADAK_CACHE", os.path.join(REPO, ".cache")))
    ap.add_argument("--out", default=os.path.join(FIX, "iq4mx"))
    ap.add_argument("--only", choices=["kernels", "models", "seeds"])
    ap.add_argument("--models", nargs="*", help="only these (e.g. moe256.IQ4_XS)")
    ap.add_argument("--no-ppl", action="store_true", help="skip the perplexities (slow on a loaded machine)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    import llama_cpp as L
    L.llama_backend_init()
    if a.only in (None, "kernels"):
        make_kernels(a.out)
    if a.only in (None, "seeds"):
        make_seeds(a.out)
    if a.only in ("kernels", "seeds"):
        return
    q = os.path.join(a.cache, "quant")
    smol_src = os.path.join(a.cache, "models/SmolLM2-135M-Instruct.Q4_1.gguf")
    moe_src = os.path.join(FIX, "models/moe256.f16.gguf")
    info = {"llama_cpp_python": L.__version__, "system_info": L.llama_print_system_info().decode().strip(),
            "settings": {"n_ctx": 2048, "n_ctx_perplexity": 512, "n_threads": 2, "type_k": "F32", "type_v": "F32",
                         "flash_attn": False, "n_batch": 512, "n_ubatch": 512, "greedy_steps": 32},
            "models": {}}
    jobs = [("SmolLM2-135M-Instruct", smol_src, "IQ4_NL"), ("SmolLM2-135M-Instruct", smol_src, "IQ4_XS"),
            ("moe256", moe_src, "MXFP4_MOE"), ("moe256", moe_src, "IQ4_XS"),
            ("SmolLM2-135M-Instruct", smol_src, "IQ4_NL.pure"), ("SmolLM2-135M-Instruct", smol_src, "IQ4_XS.pure")]
    path = os.path.join(a.out, "models.json")
    if os.path.exists(path):  # runs of single models add to it
        info["models"] = json.load(open(path))["models"]
    for base, src, tname in jobs:
        if a.models and f"{base}.{tname}" not in a.models:
            continue
        dst = os.path.join(q, f"{base}.{tname}.gguf")
        quantize(src, dst, tname.split(".")[0], tname.endswith(".pure"))
        entry = {"file": f"{base}.{tname}.gguf", "sha256": sha256(dst), "bytes": os.path.getsize(dst),
                 "source": os.path.basename(src), "source_sha256": sha256(src)}
        from gguf import GGUFReader
        census = {}
        for t in GGUFReader(dst).tensors:
            census[t.tensor_type.name] = census.get(t.tensor_type.name, 0) + 1
        entry["tensor_types"] = census
        if base == "moe256":
            moe_refs(dst, tname, a.out)
            entry["sequences"] = moe_sequences()
            if not a.no_ppl:  # kquant/moe256.ppl_tokens.npy: the moe256 K-quant references' input
                entry["perplexity"] = perplexity(dst, os.path.join(FIX, "kquant/moe256.ppl_tokens.npy"))
        else:
            entry["greedy_ids"], p = smollm2_refs(dst, tname, a.out, not a.no_ppl)
            if p:
                entry["perplexity"] = p
            print(base, tname, entry.get("perplexity"))
        info["models"][f"{base}.{tname}"] = entry
        with open(path, "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
