#!/usr/bin/env python3
"""Decode speed under a FLOPs budget against static Top-K, side by side (issue 19, acceptance 3).

One model, one session per setting, decoding in alternating blocks of tokens (A B C, B C A, ...)
so a shared, drifting host loads every setting alike. Settings: static Top-K (native K), the
budget (the identity allocator with `--budget`, the global price; or a threshold policy), and
static Top-K at the k the budget reaches (what the engine does at that k with no budget
machinery). Prints tokens/s per setting (total time over all blocks) and the ratios; the
bytes-bound ratio is MB/token of Top-K over MB/token at the budget's mean k, as `adak bench`
prints them (pass them with --bytes).

usage: ADAK_LIB=build/lib python3 bench/budget_speed.py MODEL.gguf [--budget 0.5] [--threads 2]
           [--blocks 12] [--block 16] [--policy adak|top_p] [--kv-type f16|f32] [--bytes 228.7,129.6]

The bytes-bound ratio counts the KV cache a token reads, so --bytes must come from `adak bench
--kv-type` with this run's cache type, at the positions this script decodes at (`--prompt-tokens
16 --gen-tokens 192`, `--k 2` and `--k 1`; mixtral-shaped Q4_0: f16 228.7,129.6; f32 230.5,131.5).
"""
import argparse
import time

import adak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=12, help="blocks per setting")
    ap.add_argument("--block", type=int, default=16, help="tokens per block")
    ap.add_argument("--policy", default="adak", choices=["adak", "top_p"])
    ap.add_argument("--kv-type", default="f16", choices=["f16", "f32"],
                    help="KV cache of every session (f16: llama.cpp's default and the benchmarks'); "
                         "--bytes must be adak bench's MB/token with the same --kv-type")
    ap.add_argument("--bytes", help="MB/token of Top-K and at the budget's k (adak bench), comma-separated")
    a = ap.parse_args()

    m = adak.Model(a.model)
    n_ctx = a.blocks * a.block + 64
    settings = {}
    s = m.session(n_ctx=n_ctx, n_threads=a.threads, temperature=0.0, kv_type=a.kv_type)
    settings["topk"] = s
    s = m.session(n_ctx=n_ctx, n_threads=a.threads, temperature=0.0, kv_type=a.kv_type)
    if a.policy == "adak":
        with m.identity_allocator() as alloc:
            s.set_allocator(alloc)
        s.set_routing("adak")
    else:
        s.set_routing("top_p", p=0.9)
    s.set_budget(a.budget)
    settings["budget"] = s
    prompt = [(i * 7919) % m.n_vocab for i in range(16)]
    for s in settings.values():
        s.evaluate(prompt)
        s.reset_stats()
    # static Top-K at the budget's k, once that k is known from a first block
    b = settings["budget"]
    for _ in range(a.block):
        b.evaluate([b.sample()])
    k_budget = round(b.stats.mean_k)
    s = m.session(n_ctx=n_ctx, n_threads=a.threads, temperature=0.0, kv_type=a.kv_type)
    s.set_routing("topk", k=k_budget)
    s.evaluate(prompt)
    settings[f"topk k={k_budget}"] = s
    b.reset_stats()

    secs = {name: 0.0 for name in settings}
    names = list(settings)
    for i in range(a.blocks):
        for name in names[i % len(names):] + names[:i % len(names)]:   # rotated: no setting always first
            s = settings[name]
            t0 = time.perf_counter()
            for _ in range(a.block):
                s.evaluate([s.sample()])
            secs[name] += time.perf_counter() - t0
    n = a.blocks * a.block
    tps = {name: n / secs[name] for name in settings}
    print(f"model {a.model}, threads {a.threads}, {a.kv_type} KV cache, {a.blocks} blocks x {a.block} tokens per setting, interleaved")
    for name, s in settings.items():
        st = s.stats
        print(f"  {name:12s} {tps[name]:7.2f} tok/s  mean k {st.mean_k:.3f}  expert FLOPs {st.expert_fraction:.3f}")
    speed = tps["budget"] / tps["topk"]
    print(f"speed ratio budget / topk: {speed:.3f}")
    print(f"speed ratio budget / topk k={k_budget}: {tps['budget'] / tps[f'topk k={k_budget}']:.3f}")
    if a.bytes:
        full, low = (float(x) for x in a.bytes.split(","))
        print(f"bytes-bound ratio: {full / low:.3f}; budget reaches {100 * speed / (full / low):.1f}% of it")


if __name__ == "__main__":
    main()
