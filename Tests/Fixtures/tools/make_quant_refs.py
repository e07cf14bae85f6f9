#!/usr/bin/env python3
"""Record what llama.cpp's quantizer writes, as references for `adak quantize`.

Run with the venv that has llama-cpp-python (its bundled llama.cpp is the reference), numpy and gguf:

  /work/venvs/llama/bin/python Tests/Fixtures/tools/make_quant_refs.py \
      --model Tests/Fixtures/models/moe256.f16.gguf --base moe256 \
      --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf --base SmolLM2-135M-Instruct \
      --out Tests/Fixtures/quant

For every input file and file type it calls llama_model_quantize (default parameters, no importance
matrix, allow_requantize = true, 2 threads) and writes <out>/<base>.json:
  {"source_sha256", "llama_cpp_python", "types": {TYPE: {"file_sha256", "size", "seconds",
   "tensors": {name: "<ggml type name> <first 16 hex digits of the SHA-256 of its bytes>"}}}}
It also writes <out>/rows.json: random and edge-case rows quantised one by one with ggml's
ggml_quantize_chunk (+ ggml_validate_row_data), for the per-row unit tests, and records that
llama.cpp refuses an input whose F32 weights hold a NaN ("nan_input").
"""
import argparse
import ctypes
import hashlib
import json
import os
import struct
import sys
import tempfile
import time

import numpy as np
from gguf import GGUFReader, GGUFWriter

import llama_cpp

from fixture_files import sha256

FTYPES = {  # llama_ftype numbers (llama.h)
    "F16": 1, "Q3_K_S": 11, "Q3_K_L": 13, "Q4_K_S": 14, "Q5_K_S": 16, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_M": 12, "Q4_K_M": 15,
    "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "MXFP4_MOE": 38,
}
ROW_TYPES = {  # ggml type numbers
    "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11,
    "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ4_NL": 20, "IQ4_XS": 23, "MXFP4": 39,
}


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 2
    p.allow_requantize = True
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    return rc, time.perf_counter() - t0


def tensor_hashes(path):
    r = GGUFReader(path)
    out = {}
    for t in r.tensors:
        out[t.name] = "%s %s" % (t.tensor_type.name, hashlib.sha256(bytes(t.data.tobytes())).hexdigest()[:16])
    return out


def file_refs(model, tmp):
    types = {}
    for name, ftype in FTYPES.items():
        dst = os.path.join(tmp, "out.%s.gguf" % name)
        rc, secs = quantize(model, dst, ftype)
        if rc != 0:
            sys.exit("llama_model_quantize(%s, %s) failed" % (model, name))
        types[name] = {"file_sha256": sha256(dst), "size": os.path.getsize(dst),
                       "seconds": round(secs, 3), "tensors": tensor_hashes(dst)}
        os.unlink(dst)
        print("%s %s %.2fs" % (os.path.basename(model), name, secs), file=sys.stderr)
    return {"source_sha256": sha256(model), "llama_cpp_python": llama_cpp.__version__, "types": types}


def ggml_lib():
    d = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    lib = ctypes.CDLL(os.path.join(d, "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_validate_row_data.restype = ctypes.c_bool
    lib.ggml_validate_row_data.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    return lib


def test_rows():
    """Rows of 512 (two K super-blocks): random, all zero, one huge value, tiny, mixed signs, NaN."""
    rng = np.random.default_rng(20261206)
    n = 512
    rows = {
        "gauss": rng.normal(0, 0.05, n),
        "zeros": np.zeros(n),
        "one_huge": np.where(np.arange(n) == 77, 3.0e4, rng.normal(0, 0.01, n)),
        "tiny": rng.normal(0, 1e-6, n),
        "positive": rng.uniform(0.5, 1.0, n),
        "half_zero": np.where(np.arange(n) < 256, 0.0, rng.normal(0, 1.0, n)),
        "steps": np.round(rng.normal(0, 2.0, n)) * 0.125,
        "overflow": np.where(np.arange(n) == 3, 1.0e30, rng.normal(0, 1.0, n)),
        "nan": np.where(np.arange(n) == 100, np.nan, rng.normal(0, 1.0, n)),
    }
    lib = ggml_lib()
    out = {"n": n, "rows": {}, "refs": {}}
    for name, v in rows.items():
        x = np.ascontiguousarray(v, dtype=np.float32)
        out["rows"][name] = x.tobytes().hex()
        for tname, t in ROW_TYPES.items():
            size = lib.ggml_row_size(t, n)
            buf = ctypes.create_string_buffer(size)
            lib.ggml_quantize_chunk(t, x.ctypes.data, buf, 0, 1, n, None)
            ok = bool(lib.ggml_validate_row_data(t, buf, size))
            out["refs"].setdefault(tname, {})[name] = {"valid": ok, "bytes": buf.raw.hex() if ok else None}
    return out


def nan_input_refused(tmp):
    """llama.cpp checks tensor data while loading: an F32 weight holding a NaN is refused."""
    path = os.path.join(tmp, "nan.gguf")
    w = GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(64)
    w.add_feed_forward_length(64)
    w.add_head_count(1)
    w.add_layer_norm_rms_eps(1e-5)
    a = np.ones((64, 64), dtype=np.float32)
    a[3, 5] = np.nan
    w.add_tensor("blk.0.attn_q.weight", a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    rc, _ = quantize(path, os.path.join(tmp, "nan.out.gguf"), FTYPES["Q8_0"])
    return {"llama_model_quantize_rc": rc}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--base", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--skip-files", action="store_true", help="only rows.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = test_rows()
        rows["nan_input"] = nan_input_refused(tmp)
        with open(os.path.join(a.out, "rows.json"), "w") as f:
            json.dump(rows, f, indent=0, sort_keys=True)
        if a.skip_files:
            return
        for model, base in zip(a.model, a.base):
            refs = file_refs(model, tmp)
            with open(os.path.join(a.out, base + ".json"), "w") as f:
                json.dump(refs, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
