#!/usr/bin/env python3
"""llama.cpp references for the native K-quant / Q5_x kernels (Tests/Fixtures/kquant/).

usage: make_kquant_refs.py [--cache DIR] [--only NAME[,NAME...]] [--quantize-only]

1. Quantizes with llama.cpp's quantizer (llama_model_quantize, allow_requantize, no imatrix):
   SmolLM2-135M-Instruct.Q4_1.gguf -> Q4_K_M, Q5_K_M, Q6_K, Q3_K_M, Q2_K and
   Tests/Fixtures/models/moe256.f16.gguf -> Q4_K_M and Q2_K (the only file with Q2_K tensors), written to CACHE/quant/<base>.<TYPE>.gguf
   (the paths `make quant-models` / `adak quantize` produce; the tests read them there).
2. Per model, with llama.cpp's CPU backend (2 threads, KV cache F32, flash attention off,
   n_batch = n_ubatch = 512), for each prompt of smollm2/cases.jsonl:
   - greedy: the prompt in one decode, then 32 times argmax (ties -> lowest id) of the newest
     logits -> decode that token alone (logits of the last token only);
     NAME.greedy_top32_{ids,logits}.npy [32, 32]: top 32 of the logits that chose each token;
   - teacher forcing: one decode of prompt + the 32 greedy ids with logits at every position;
     NAME.top32_{ids,logits}.npy [len+32, 32];
   - perplexity (smollm2/ppl.json's protocol: windows of 512 from an empty cache, score positions
     256..510) on smollm2/ppl_tokens.npy (SmolLM2: 32 windows) or, for moe256 (a 256-token byte
     vocabulary), on the first 4 windows of text/eval.txt tokenized by llama.cpp
     (moe256.ppl_tokens.npy).
   Top 32: descending logit, ties -> lower id. Output: kquant/<base>.<TYPE>/ with info.json (ids,
   greedy ids, perplexity, sha256 of the model, versions, settings).
Runs with /work/venvs/llama-avx2/bin/python: llama-cpp-python 0.3.36 built from source with
GGML_NATIVE=OFF GGML_AVX2=ON (the AVX2 build whose arithmetic libadak follows, see the fixtures
README), and numpy.
"""
import argparse
import json
import os
import sys

import numpy as np
import llama_cpp

from fixture_files import sha256

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(FIX))

SMOL_TYPES = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K"]
MOE_TYPES = ["Q4_K_M", "Q2_K"]
GREEDY = 32
WINDOW = 512


def quantize(src, dst, type_name):
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + type_name)
    p.allow_requantize = True
    p.nthread = 2
    tmp = dst + ".tmp"
    rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), p)
    if rc != 0:
        sys.exit(f"llama_model_quantize({src} -> {type_name}) failed: {rc}")
    os.replace(tmp, dst)


def load(path, logits_all, n_ctx):
    return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=2,
                           n_threads_batch=2, type_k=0, type_v=0, flash_attn=False,
                           logits_all=logits_all, verbose=False, seed=0)


def top32(row):
    order = np.lexsort((np.arange(row.size), -row.astype(np.float64)))[:32]
    return order.astype(np.int32), row[order].astype(np.float32)


def last_logits(llm):
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def greedy(llm, ids):
    llm.reset()
    llm.eval(ids)
    out, tids, tl = [], [], []
    for _ in range(GREEDY):
        row = last_logits(llm)
        t = int(np.argmax(row))
        i, l = top32(row)
        tids.append(i)
        tl.append(l)
        out.append(t)
        llm.eval([t])
    return out, np.stack(tids), np.stack(tl)


def teacher(llm, ids):
    llm.reset()
    llm.eval(ids)
    rows = np.array(llm.scores[: len(ids)], dtype=np.float32)
    pairs = [top32(r) for r in rows]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def perplexity(llm, tokens):
    nlls, per_chunk = [], []
    for c in range(len(tokens) // WINDOW):
        w = [int(t) for t in tokens[c * WINDOW:(c + 1) * WINDOW]]
        llm.reset()
        llm.eval(w)
        logits = np.array(llm.scores[:WINDOW], dtype=np.float32).astype(np.float64)
        chunk = []
        for pos in range(WINDOW // 2, WINDOW - 1):
            row = logits[pos]
            m = row.max()
            lse = np.log(np.exp(row - m).sum()) + m
            chunk.append(-(row[w[pos + 1]] - lse))
        nlls += chunk
        per_chunk.append(float(np.mean(chunk)))
    nll = np.array(nlls)
    mean = nll.mean()
    ppl = float(np.exp(mean))
    var = (nll ** 2).mean() - mean ** 2
    return {"ppl": ppl, "ppl_stderr": float(ppl * np.sqrt(max(var, 0) / (len(nll) - 1))),
            "scored_tokens": len(nll), "chunk_mean_nll": per_chunk}


def references(model, base, type_name, out_dir, cases):
    os.makedirs(out_dir, exist_ok=True)
    inc = load(model, logits_all=False, n_ctx=2048)
    tf = load(model, logits_all=True, n_ctx=2048)
    info = {"model": os.path.basename(model), "model_sha256": sha256(model), "type": type_name,
            "llama_cpp_python": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "settings": {"n_ctx": 2048, "n_threads": 2, "n_threads_batch": 2, "type_k": "F32",
                         "type_v": "F32", "flash_attn": False, "n_batch": 512, "n_ubatch": 512,
                         "greedy_tokens": GREEDY, "topk_saved": 32, "ppl_window": WINDOW},
            "cases": []}
    for c in cases:
        if base == "moe256":  # its own byte vocabulary: tokenize the prompt text with it
            ids = inc.tokenize(c["prompt"].encode(), add_bos=False, special=c["special"])
        else:
            ids = c["ids"]
        g, gi, gl = greedy(inc, ids)
        ti, tl = teacher(tf, ids + g)
        n = c["name"]
        np.save(os.path.join(out_dir, f"{n}.greedy_top32_ids.npy"), gi)
        np.save(os.path.join(out_dir, f"{n}.greedy_top32_logits.npy"), gl)
        np.save(os.path.join(out_dir, f"{n}.top32_ids.npy"), ti)
        np.save(os.path.join(out_dir, f"{n}.top32_logits.npy"), tl)
        info["cases"].append({"name": n, "ids": [int(i) for i in ids], "greedy_ids": g})
        print(f"{base}.{type_name} {n}: greedy {inc.detokenize(g)!r}", flush=True)
    del inc, tf
    pl = load(model, logits_all=True, n_ctx=WINDOW)
    if base == "moe256":
        text = open(os.path.join(FIX, "text", "eval.txt"), encoding="utf-8").read()
        toks = pl.tokenize(text[:200000].encode(), add_bos=False, special=False)[: 4 * WINDOW]
        np.save(os.path.join(os.path.dirname(out_dir), "moe256.ppl_tokens.npy"), np.array(toks, dtype=np.int32))
        info["ppl_tokens"] = "moe256.ppl_tokens.npy (first 4 windows of text/eval.txt, llama_tokenize add_special=false)"
    else:
        toks = np.load(os.path.join(FIX, "smollm2", "ppl_tokens.npy"))
        info["ppl_tokens"] = "../smollm2/ppl_tokens.npy"
    info["perplexity"] = perplexity(pl, toks)
    print(f"{base}.{type_name}: ppl {info['perplexity']['ppl']:.6f}", flush=True)
    with open(os.path.join(out_dir, "info.json"), "w") as f:
        json.dump(info, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.environ.get("ADAK_CACHE", os.path.join(ROOT, ".cache")))
    ap.add_argument("--only", default="")
    ap.add_argument("--quantize-only", action="store_true")
    a = ap.parse_args()
    smol = os.path.join(a.cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    moe = os.path.join(FIX, "models", "moe256.f16.gguf")
    jobs = [("SmolLM2-135M-Instruct", smol, t) for t in SMOL_TYPES] + [("moe256", moe, t) for t in MOE_TYPES]
    only = set(filter(None, a.only.split(",")))
    cases = [json.loads(l) for l in open(os.path.join(FIX, "smollm2", "cases.jsonl"))]
    for base, src, t in jobs:
        name = f"{base}.{t}"
        if only and name not in only:
            continue
        dst = os.path.join(a.cache, "quant", f"{name}.gguf")
        quantize(src, dst, t)
        if not a.quantize_only:
            references(dst, base, t, os.path.join(FIX, "kquant", name), cases)


if __name__ == "__main__":
    main()
