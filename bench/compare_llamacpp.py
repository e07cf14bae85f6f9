"""libadak vs llama.cpp, side by side on the same GGUF files, threads and tokens.

For each row both engines run alternately for several rounds: prefill of a 128-token prompt,
then 128 tokens decoded one at a time (fixed token ids, no sampling, so both do identical work).
llama.cpp runs through llama-cpp-python in its default configuration (`--config default`: f16 KV
cache, flash attention on, as llama.cpp's own tools run; libadak with its f16 cache), or in the
configuration libadak matches numerically (`--config exact`: f32 cache, flash attention off);
k is overridden through `<arch>.expert_used_count`. Prints the host's CPU flags, medians and
ratios (libadak / llama.cpp; > 1 means libadak is faster) and writes JSON.
With --ik-python (a venv's Python that has ik-llama-cpp-python) ik_llama.cpp joins each round as a
third engine, run-time repack and flash attention on (bench/ik_runner.py); rows it cannot load
(e.g. olmoe, which it lacks) leave its columns empty.

Usage: bench/compare.sh [--threads 2] [--rounds 3] [--types q4_0,q4_k_m,...] [--rows all|smollm2|...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import llama_cpp
from gguf import GGUFReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ADAK_CACHE", os.path.join(ROOT, ".cache"))


def token_ids(count, offset, vocab):
    """The same ids as `adak bench` (Bench.tokenIds)."""
    return [100 + ((offset + i) * 7919) % max(vocab - 200, 1) for i in range(count)]


def gguf_info(path):
    r = GGUFReader(path)
    f = r.fields
    arch = bytes(f["general.architecture"].parts[-1]).decode()
    vocab = len(f["tokenizer.ggml.tokens"].data)
    used = f.get(f"{arch}.expert_used_count")
    return arch, vocab, (int(used.parts[-1][0]) if used else 0)


KV_GGML = {"f32": 0, "f16": 1}  # ggml type ids of the cache


CONFIGS = {"default": ("f16", True), "exact": ("f32", False)}  # KV cache type, flash attention


def cpu_flags():
    """The SIMD flags of this host that decide which kernels either engine runs."""
    want = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni")
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    except (OSError, StopIteration):
        return "?", []
    return model, [w for w in want if w in flags]


def run_llamacpp(path, arch, vocab, threads, k, n_prompt, n_gen, llm_cache, config="default"):
    key = (path, k)
    if key not in llm_cache:
        llm_cache.clear()
        kv = {f"{arch}.expert_used_count": k} if k else None
        kv_type, flash = CONFIGS[config]
        llm_cache[key] = llama_cpp.Llama(
            model_path=path, n_ctx=n_prompt + n_gen + 16, n_batch=512, n_ubatch=512,
            n_threads=threads, n_threads_batch=threads, type_k=KV_GGML[kv_type], type_v=KV_GGML[kv_type],
            flash_attn=flash, kv_overrides=kv, verbose=False, logits_all=False)
    llm = llm_cache[key]
    prompt = token_ids(n_prompt, 0, vocab)
    gen = token_ids(n_gen, n_prompt, vocab)
    llm.reset()
    llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else llm._ctx.kv_cache_clear()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    for t in gen:
        llm.eval([t])
    t2 = time.perf_counter()
    return n_prompt / (t1 - t0), n_gen / (t2 - t1)


def run_llamacpp_parallel(path, arch, vocab, threads, k, n_prompt, n_gen, n_seq, config="default"):
    """llama.cpp decoding `n_seq` sequences at once (llama_decode of a batch with distinct
    seq_ids, as llama-server's parallel slots do): each sequence prefills its own prompt, then
    every step decodes one token of each sequence in one llama_decode (logits for every row).
    Returns the aggregate decode tokens/s. Tokens as `adak bench --sessions` (offset 7 per stream)."""
    kv = {f"{arch}.expert_used_count": k} if k else None
    kv_type, flash = CONFIGS[config]
    llm = llama_cpp.Llama(model_path=path, n_ctx=32, n_batch=512, n_ubatch=512, n_threads=threads,
                          n_threads_batch=threads, type_k=KV_GGML[kv_type], type_v=KV_GGML[kv_type],
                          flash_attn=flash, kv_overrides=kv, verbose=False)
    cp = llm.context_params
    cp.n_seq_max = n_seq
    cp.n_batch = cp.n_ubatch = 512  # the Llama above clamped them to its 32-token context
    cp.n_ctx = n_seq * ((n_prompt + n_gen + 16 + 255) // 256 * 256)  # per sequence, as llama.cpp pads it
    ctx = llama_cpp.llama_init_from_model(llm._model.model, cp)
    if not ctx:
        raise RuntimeError("llama.cpp could not create the parallel context")
    batch = llama_cpp.llama_batch_init(max(n_prompt, n_seq), 0, 1)

    def decode(items):  # (token, position, sequence, wants logits)
        batch.n_tokens = len(items)
        for i, (t, p, sq, want) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = t, p, 1, want
            batch.seq_id[i][0] = sq
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    try:
        for sq in range(n_seq):
            prompt = token_ids(n_prompt, sq * 7, vocab)
            decode([(t, i, sq, i == n_prompt - 1) for i, t in enumerate(prompt)])
        gens = [token_ids(n_gen, n_prompt + sq * 7, vocab) for sq in range(n_seq)]
        t0 = time.perf_counter()
        for j in range(n_gen):
            decode([(gens[sq][j], n_prompt + j, sq, True) for sq in range(n_seq)])
        return n_seq * n_gen / (time.perf_counter() - t0)
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
        llm.close()


def run_adak(cli, path, threads, k, n_prompt, n_gen, extra):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [cli, "bench", "-m", path, "-t", str(threads), "--prompt-tokens", str(n_prompt),
           "--gen-tokens", str(n_gen), "--rounds", "1", "--json", out, "--no-probe"] + extra
    if k:
        cmd += ["--routing", "topk", "--k", str(k)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        r = json.load(f)
    os.unlink(out)
    return r.get("prefill_tps"), r["decode_tps"]


class IkEngine:
    """One ik_llama.cpp process per model file (bench/ik_runner.py), kept for the row's rounds."""

    def __init__(self, python, path, threads, n_ctx, k):
        self.proc = subprocess.Popen([python, os.path.join(ROOT, "bench", "ik_runner.py"), path, str(threads),
                                      str(n_ctx), str(k)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        first = json.loads(self.proc.stdout.readline() or '{"error": "ik_runner exited"}')
        self.error = first.get("error")
        if self.error:
            self.close()

    def run(self, prompt, gen):
        self.proc.stdin.write(json.dumps({"prompt": prompt, "gen": gen}) + "\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        return r["prefill_tps"], r["decode_tps"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--config", default="default", choices=sorted(CONFIGS),
                    help="default: llama.cpp's defaults (f16 cache, flash attention); exact: f32 cache, no flash attention")
    ap.add_argument("--types", default="q8_0,q4_0", help="comma list of bench model types (bench/make_models.sh)")
    ap.add_argument("--ks", default="native", help="comma list of k values, or native")
    ap.add_argument("--smollm2", default="Q4_1", help="comma list of SmolLM2-135M file types (dense rows)")
    ap.add_argument("--rows", default="all", help="comma list of row-name prefixes, or all")
    ap.add_argument("--cli", default=os.path.join(ROOT, ".build", "release", "adak-cli"))
    ap.add_argument("--json", default=os.path.join(CACHE, "bench", "compare.json"))
    ap.add_argument("--ik-python", default=os.environ.get("ADAK_IK_PYTHON", ""),
                    help="Python with ik-llama-cpp-python: adds ik_llama.cpp (run-time repack) as a column")
    ap.add_argument("--sessions", default="", help="comma list of N: aggregate decode of N parallel sequences "
                    "(libadak: `bench --sessions N`; llama.cpp: N seq_ids per llama_decode) instead of the usual rows")
    a = ap.parse_args()

    rows = []
    for name in ("mixtral-shaped", "olmoe-shaped", "qwen3-30b-a3b-shaped"):
        for q in a.types.split(","):
            path = os.path.join(CACHE, "bench", f"{name}.{q}.gguf")
            if not os.path.exists(path):
                print(f"skip {path}: run bench/make_models.sh", file=sys.stderr)
                continue
            native = gguf_info(path)[2]
            ks = [native] if a.ks == "native" else sorted({int(x) for x in a.ks.split(",")} | {native})
            for k in ks:
                rows.append((f"{name} {q} k={k}{' (native)' if k == native else ''}", path, 0 if k == native else k))
    for q in a.smollm2.split(","):
        # the demo model, or its requantizations by `make quant-models` / `adak quantize`
        smol = os.path.join(CACHE, "models" if q == "Q4_1" else "quant", f"SmolLM2-135M-Instruct.{q}.gguf")
        if os.path.exists(smol):
            rows.append((f"smollm2-135m {q.lower()} (dense)", smol, 0))
        elif q:
            print(f"skip {smol}: run make quant-models", file=sys.stderr)
    if a.rows != "all":
        keep = a.rows.split(",")
        rows = [r for r in rows if any(r[0].startswith(p) for p in keep)]

    kv_type = CONFIGS[a.config][0]
    model, flags = cpu_flags()
    print(f"CPU {model}; flags {' '.join(flags)}; ADAK_CPU={os.environ.get('ADAK_CPU', '(auto)')}")
    print(f"threads {a.threads}, prompt {a.prompt}, decode {a.gen}{' per stream' if a.sessions else ''}, "
          f"rounds {a.rounds}, llama.cpp {llama_cpp.__version__} config {a.config} (KV {kv_type}, "
          f"flash attention {CONFIGS[a.config][1]})\n")
    if a.sessions:
        return main_sessions(a, rows, [int(n) for n in a.sessions.split(",")], kv_type, model)
    results = []
    cache = {}
    ik = bool(a.ik_python)
    if ik:
        print("ik_llama.cpp: run-time repack on, flash attention on (ik columns; ratios are libadak / ik_llama.cpp)\n")
        print("| row | prefill adak | llama.cpp | ratio | ik_llama.cpp | ratio | decode adak | llama.cpp | ratio | ik_llama.cpp | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        print("| row | prefill adak | prefill llama.cpp | ratio | decode adak | decode llama.cpp | ratio |")
        print("|---|---|---|---|---|---|---|")
    for label, path, k in rows:
        arch, vocab, _ = gguf_info(path)
        ours_p, ours_d, ref_p, ref_d, ik_p, ik_d = [], [], [], [], [], []
        eng = IkEngine(a.ik_python, path, a.threads, a.prompt + a.gen + 16, k) if ik else None
        for _ in range(a.rounds):
            p, d = run_adak(a.cli, path, a.threads, k, a.prompt, a.gen, ["--kv-type", kv_type])
            ours_p.append(p)
            ours_d.append(d)
            p, d = run_llamacpp(path, arch, vocab, a.threads, k, a.prompt, a.gen, cache, a.config)
            ref_p.append(p)
            ref_d.append(d)
            if eng and not eng.error:
                p, d = eng.run(token_ids(a.prompt, 0, vocab), token_ids(a.gen, a.prompt, vocab))
                ik_p.append(p)
                ik_d.append(d)
        if eng:
            eng.close()
        r = {"row": label, "path": path, "k": k,
             "prefill_adak": statistics.median(ours_p), "prefill_llamacpp": statistics.median(ref_p),
             "decode_adak": statistics.median(ours_d), "decode_llamacpp": statistics.median(ref_d),
             "runs": {"prefill_adak": ours_p, "prefill_llamacpp": ref_p,
                      "decode_adak": ours_d, "decode_llamacpp": ref_d}}
        r["prefill_ratio"] = r["prefill_adak"] / r["prefill_llamacpp"]
        r["decode_ratio"] = r["decode_adak"] / r["decode_llamacpp"]
        if ik_p:
            r.update(prefill_ik=statistics.median(ik_p), decode_ik=statistics.median(ik_d))
            r["runs"].update(prefill_ik=ik_p, decode_ik=ik_d)
            r["prefill_ratio_ik"] = r["prefill_adak"] / r["prefill_ik"]
            r["decode_ratio_ik"] = r["decode_adak"] / r["decode_ik"]
        elif eng:
            r["ik_error"] = eng.error
        results.append(r)
        if ik:
            ikp = f"{r['prefill_ik']:.1f} | {r['prefill_ratio_ik']:.2f}" if ik_p else "— | —"
            ikd = f"{r['decode_ik']:.2f} | {r['decode_ratio_ik']:.2f}" if ik_p else "— | —"
            print(f"| {label} | {r['prefill_adak']:.1f} | {r['prefill_llamacpp']:.1f} | {r['prefill_ratio']:.2f} | {ikp} "
                  f"| {r['decode_adak']:.2f} | {r['decode_llamacpp']:.2f} | {r['decode_ratio']:.2f} | {ikd} |", flush=True)
        else:
            print(f"| {label} | {r['prefill_adak']:.1f} | {r['prefill_llamacpp']:.1f} | {r['prefill_ratio']:.2f} "
                  f"| {r['decode_adak']:.2f} | {r['decode_llamacpp']:.2f} | {r['decode_ratio']:.2f} |", flush=True)
    cache.clear()
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"threads": a.threads, "rounds": a.rounds, "prompt": a.prompt, "gen": a.gen, "config": a.config,
                   "kv_type": kv_type, "cpu": model, "cpu_flags": flags, "adak_cpu": os.environ.get("ADAK_CPU"),
                   "llama_cpp": llama_cpp.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "rows": results}, f, indent=1)
    print(f"\nwrote {a.json}")


def main_sessions(a, rows, counts, kv_type, model):
    """Aggregate decode tok/s with N concurrent streams, both engines alternately per round."""
    print("| row | N | decode adak (aggregate) | per stream | decode llama.cpp (aggregate) | ratio |")
    print("|---|---|---|---|---|---|")
    results = []
    for label, path, k in rows:
        arch, vocab, _ = gguf_info(path)
        for n in counts:
            ours, ref = [], []
            for _ in range(a.rounds):
                ours.append(run_adak(a.cli, path, a.threads, k, a.prompt, a.gen,
                                     ["--kv-type", kv_type, "--sessions", str(n)])[1])
                ref.append(run_llamacpp_parallel(path, arch, vocab, a.threads, k, a.prompt, a.gen, n, a.config))
            r = {"row": label, "sessions": n, "decode_adak": statistics.median(ours),
                 "decode_llamacpp": statistics.median(ref), "runs": {"adak": ours, "llamacpp": ref}}
            r["ratio"] = r["decode_adak"] / r["decode_llamacpp"]
            results.append(r)
            print(f"| {label} | {n} | {r['decode_adak']:.2f} | {r['decode_adak'] / n:.2f} | "
                  f"{r['decode_llamacpp']:.2f} | {r['ratio']:.2f} |", flush=True)
    out = a.json.replace(".json", "-sessions.json")
    with open(out, "w") as f:
        json.dump({"threads": a.threads, "rounds": a.rounds, "prompt": a.prompt, "gen": a.gen, "config": a.config,
                   "cpu": model, "llama_cpp": llama_cpp.__version__,
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": results}, f, indent=1)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
