"""ik_llama.cpp side of bench/compare_llamacpp.py, run with the Python of a venv that has
ik-llama-cpp-python (a separate venv: its ctypes layer and library clash with llama-cpp-python's).

Loads one GGUF with ik_llama.cpp's run-time repack on (`repack_tensors`, the library side of
`-rtr`; repacking needs the weights in memory, so mmap is off as `-rtr` turns it off) and flash
attention on, then answers one JSON line per line read from stdin:
    {"prompt": [ids...], "gen": [ids...]}  ->  {"prefill_tps": x, "decode_tps": y}
The work is the same as the other engines': one decode of the prompt, then one token per decode.
A first line {"error": "..."} means the file could not be loaded (e.g. an architecture ik_llama.cpp
lacks), and the caller leaves the column empty.
usage: python ik_runner.py MODEL THREADS N_CTX [EXPERT_USED_COUNT]
"""
import ctypes
import importlib.util
import json
import os
import sys
import time

# The wheel's libllama.so has no run path to the libggml.so beside it: load that one first,
# globally, so the dynamic linker finds its symbols.
_pkg = os.path.dirname(importlib.util.find_spec("ik_llama_cpp").origin)
ctypes.CDLL(os.path.join(_pkg, "lib", "libggml.so"), mode=ctypes.RTLD_GLOBAL)

from ik_llama_cpp import _ctypes_api as C  # noqa: E402
from ik_llama_cpp._internals import make_batch_range, make_batch_single  # noqa: E402


def load(path, threads, n_ctx):
    C.llama_backend_init()
    mp = C.llama_model_default_params()
    mp.use_mmap = False
    mp.repack_tensors = True
    model = C.llama_model_load_from_file(path.encode(), mp)
    if not model:
        return None, None
    cp = C.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = cp.n_ubatch = 512
    cp.n_threads = cp.n_threads_batch = threads
    cp.flash_attn = True
    ctx = C.llama_init_from_model(model, cp)
    return model, ctx


def run(ctx, prompt, gen):
    C.llama_kv_cache_clear(ctx)
    batch = make_batch_range(prompt)
    t0 = time.perf_counter()
    if C.llama_decode(ctx, batch) != 0:
        raise RuntimeError("llama_decode failed on the prompt")
    t1 = time.perf_counter()
    C.llama_batch_free(batch)
    for i, t in enumerate(gen):
        b = make_batch_single(t, len(prompt) + i)
        if C.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed")
        C.llama_batch_free(b)
    t2 = time.perf_counter()
    return len(prompt) / (t1 - t0), len(gen) / (t2 - t1)


def main():
    path, threads, n_ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if len(sys.argv) > 4 and int(sys.argv[4]) > 0:
        print(json.dumps({"error": "expert-count override is not wired for ik_llama.cpp"}), flush=True)
        return
    model, ctx = load(path, threads, n_ctx)
    if not ctx:
        print(json.dumps({"error": f"ik_llama.cpp could not load {path}"}), flush=True)
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        p, d = run(ctx, req["prompt"], req["gen"])
        print(json.dumps({"prefill_tps": p, "decode_tps": d}), flush=True)
    C.llama_free(ctx)
    C.llama_free_model(model)


if __name__ == "__main__":
    main()
