"""`adak convert` output in llama.cpp: each tiny HF fixture folder is converted with the adak CLI,
loaded by llama.cpp (llama-cpp-python) and run on the fixture's 64 input ids; the logits are
compared with reference/tiny-*.llamacpp.f32.logits.npy (llama.cpp on llama.cpp's own conversion).

Settings as in Tests/Fixtures/README.md §2: one decode of all 64 tokens (n_batch = n_ubatch = 128),
logits for every position, F32 KV cache, flash attention off, 1 thread, CPU only.

Usage: /work/llvenv/bin/python scripts/check_convert_llamacpp.py [--cli .build/debug/adak-cli]
Exit status 0 when every model is within --tol (default 1e-4).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
MODELS = ["tiny-mixtral", "tiny-olmoe", "tiny-qwen2moe", "tiny-qwen3moe"]


def llamacpp_logits(path, ids):
    llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_batch=128, n_ubatch=128, n_threads=1,
                          n_threads_batch=1, type_k=0, type_v=0, flash_attn=False, logits_all=True,
                          n_gpu_layers=0, verbose=False)
    llm.eval(ids)
    out = np.array(llm.scores[: len(ids)], dtype=np.float32)
    llm.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, ".build", "debug", "adak-cli"))
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            out = os.path.join(tmp, name + ".gguf")
            subprocess.run([args.cli, "convert", os.path.join(FIXTURES, "models", name), out],
                           check=True, stdout=subprocess.DEVNULL)
            ids = np.load(os.path.join(FIXTURES, "reference", name + ".input_ids.npy")).tolist()
            ours = llamacpp_logits(out, ids)
            ref = np.load(os.path.join(FIXTURES, "reference", name + ".llamacpp.f32.logits.npy"))
            hf = np.load(os.path.join(FIXTURES, "reference", name + ".hf.logits.npy"))
            # The same llama.cpp build on llama.cpp's own conversion: separates file differences
            # from build differences between this llama-cpp-python and the one behind the reference.
            theirs = llamacpp_logits(os.path.join(FIXTURES, "models", name + ".f32.gguf"), ids)
            same = bool(np.array_equal(ours, theirs))
            d_ref = float(np.abs(ours - ref).max())
            d_hf = float(np.abs(ours - hf).max())
            good = ours.shape == ref.shape and d_ref <= args.tol and same
            ok &= good
            print(f"{name}: llama.cpp on adak-converted GGUF vs llama.cpp f32 reference: max |Δ| = {d_ref:.3g}"
                  f"; vs transformers: {d_hf:.3g}; bit-identical to this llama.cpp on the fixture's"
                  f" own f32.gguf: {same} (that file vs reference: {float(np.abs(theirs - ref).max()):.3g})"
                  f"  {'OK' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
