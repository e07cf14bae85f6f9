#!/usr/bin/env python3
"""Pareto evaluation of routing policies: perplexity vs expert-FLOPs fraction on held-out text.

Drives `adak eval-routing` (llama-perplexity protocol: windows of 512 tokens, second half of each
scored) for static Top-K over K, a calibrated per-layer static K schedule, Top-P / beta-skip /
entropy over their knobs, and Ada-K over a sweep of lambda (one allocator per lambda) and over the
budget knob of one allocator. Results are cached in OUT/results.json (delete to recompute).
Writes OUT/pareto.png, OUT/layers.png, OUT/words.png and OUT/tables.md.

Run in a venv with numpy and matplotlib:
  python3 -m venv scripts/.venv && scripts/.venv/bin/pip install numpy matplotlib
  scripts/.venv/bin/python scripts/pareto.py -m MODEL --eval eval.txt --train train.txt \
      --allocator 0.2=allocators/a.gguf --allocator 0.5=allocators/b.gguf --main 0.2 --out results
"""
import argparse, json, os, re, subprocess, sys

import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_protocol import schedule  # noqa: E402  (the per-layer schedule, one definition)

FUNCTION_WORDS = set("""a an the and or but nor so yet for of in on at by to from with without into onto upon
about above after against along among around as before behind below beneath beside between beyond
during except inside near off out outside over past since through throughout till toward towards
under underneath until up via within i me my mine myself you your yours yourself he him his himself
she her hers herself it its itself we us our ours ourselves they them their theirs themselves this
that these those who whom whose which what whatever whichever whoever is am are was were be been
being have has had having do does did doing will would shall should can could may might must not
no if then than there here when where why how all any both each either neither some such only own
same too very just also else ever""".split())


def run_eval(args, extra, cache, key, windows=None, text=None, tokens_out=None):
    if key in cache and (tokens_out is None or os.path.exists(tokens_out)):
        return cache[key]
    if args.cached_only and tokens_out is None:
        return None
    cmd = [args.adak, "eval-routing", "-m", args.model, "--text", text or args.eval,
           "--windows", str(windows or args.windows), "-t", str(args.threads)] + extra
    if tokens_out:
        cmd += ["--tokens-out", tokens_out]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    cache[key] = r
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(cache, f, indent=1, sort_keys=True)
    print(f"{key:40s} ppl {r['ppl']:.3f}  expert FLOPs {r['expert_fraction']:.3f}  ({r['seconds']:.0f}s)", flush=True)
    return r


def label_order(label):
    """Allocator labels are a lambda, optionally with a suffix ("8.0u40": lambda 8 after 40 updates)."""
    m = re.match(r"[0-9.]+", label)
    return (float(m.group()) if m else float("inf"), label)


def frontier(pts):
    """The Pareto-optimal points of a curve (no other point has both fewer FLOPs and lower ppl),
    sorted by FLOPs, as (FLOPs, log ppl)."""
    xy = sorted((p["expert_fraction"], np.log(p["ppl"])) for p in pts)
    out = []
    for x, y in xy:
        if out and y >= out[-1][1]:
            continue
        while out and x == out[-1][0] and y < out[-1][1]:
            out.pop()
        out.append((x, y))
    return out


def interp_ppl(pts, x, tol=1e-6):
    """ppl of a curve at FLOPs x: log ppl interpolated linearly between its Pareto points (what
    mixing the two settings over tokens achieves); nan outside the measured range."""
    f = frontier(pts)
    if not f or not f[0][0] - tol <= x <= f[-1][0] + tol:
        return float("nan")
    if len(f) == 1:
        return float(np.exp(f[0][1]))
    return float(np.exp(np.interp(x, [a for a, _ in f], [b for _, b in f])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--eval", required=True, help="held-out text")
    ap.add_argument("--train", required=True, help="calibration text for the per-layer schedule")
    ap.add_argument("--allocator", action="append", default=[], help="LAMBDA=PATH (repeatable)")
    ap.add_argument("--main", help="label of the allocator swept over budgets and analysed")
    ap.add_argument("--allocator-prices", action="append", default=[],
                    help="LABEL=MU,MU,... global prices swept for that allocator (repeatable; --main uses --prices)")
    ap.add_argument("--adak", default=".build/release/adak-cli")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--calib-windows", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--native-k", type=int, default=8)
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--out", default="results")
    ap.add_argument("--levels", type=lambda v: [float(x) for x in v.split(",")], default=[0.5, 0.625, 0.75, 0.875, 1.0],
                    help="expert-FLOPs levels of the summary table")
    flist = lambda v: [float(x) for x in v.split(",") if x]
    ap.add_argument("--topk", type=lambda v: [int(x) for x in v.split(",")], default=[4, 5, 6, 7, 8, 9, 10])
    ap.add_argument("--top-p", type=flist, default=[0.5, 0.7, 0.9])
    ap.add_argument("--skip", type=flist, default=[0.6, 0.4, 0.2])
    ap.add_argument("--tau", type=flist, default=[0.3, 0.4, 0.5])
    ap.add_argument("--top-p-e", type=flist, default=[0.7, 0.9, 0.95])
    ap.add_argument("--skip-e", type=flist, default=[0.4, 0.2, 0.1])
    ap.add_argument("--tau-e", type=flist, default=[0.4, 0.6, 0.8])
    ap.add_argument("--prices", type=flist, default=[-0.5, 0.5, 1.0])
    ap.add_argument("--budgets", type=flist, default=[0.5, 0.75, 1.0])
    ap.add_argument("--schedule-budgets", type=flist, default=[0.5, 0.75, 0.875])
    ap.add_argument("--only", default="", help="comma-separated groups to run (default: all)")
    ap.add_argument("--cached-only", action="store_true", help="plot what results.json holds; run nothing new (but the token trace)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cache_path = os.path.join(args.out, "results.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    groups = set(args.only.split(",")) if args.only else None
    want = lambda g: groups is None or g in groups
    K, E, L = args.native_k, args.experts, args.layers

    curves = {}
    if want("topk"):
        curves["static Top-K"] = [run_eval(args, ["--routing", "topk", "--k", str(k)], cache, f"topk k={k}")
                                  for k in args.topk]
    # the threshold policies with their default cap k_max = K (they can only cut) and, for a fair
    # comparison with Ada-K (which may spend up to E), with k_max = E
    for cap, suffix in [(None, ""), (E, f" kmax={E}")]:
        kx = ["--k-max", str(cap)] if cap else []
        if want("top_p"):
            curves["Top-P" + suffix] = [run_eval(args, ["--routing", "top_p", "--top-p-routing", str(p)] + kx, cache,
                                                 f"top_p p={p}{suffix}") for p in (args.top_p_e if cap else args.top_p)]
        if want("skip"):
            curves["β-skip" + suffix] = [run_eval(args, ["--routing", "skip", "--beta", str(b)] + kx, cache,
                                                  f"skip beta={b}{suffix}") for b in (args.skip_e if cap else args.skip)]
        if want("entropy"):
            curves["entropy" + suffix] = [run_eval(args, ["--routing", "entropy", "--tau", str(t)] + kx, cache,
                                                   f"entropy tau={t}{suffix}") for t in (args.tau_e if cap else args.tau)]
    if want("schedule"):
        # calibration on training text: Δnll when one layer drops from K to K−4
        base = run_eval(args, ["--routing", "topk"], cache, "calib topk", windows=args.calib_windows, text=args.train)
        sens = []
        for l in range(L if base else 0):
            ks = [K] * L
            ks[l] = K - 4
            r = run_eval(args, ["--k-schedule", ",".join(map(str, ks))], cache, f"calib layer {l} k={K-4}",
                         windows=args.calib_windows, text=args.train)
            if r is None:
                break
            sens.append(np.log(r["ppl"]) - np.log(base["ppl"]))
        pts = []
        for b in (args.schedule_budgets if len(sens) == L else []):
            cache["calib sensitivity"] = sens
            ks = schedule(sens, K, b)
            r = run_eval(args, ["--k-schedule", ",".join(map(str, ks))], cache, f"schedule budget={b}")
            if r is not None:
                r["schedule"] = ks
                pts.append(r)
        if pts and cache.get(f"topk k={K}"):
            pts.append(cache[f"topk k={K}"])   # budget 1.0: every layer at K
        curves["per-layer static K"] = pts
    allocs = dict(a.split("=", 1) for a in args.allocator)
    if want("adak"):
        # the main allocator's point also writes the per-token trace for the analysis plots
        tok_path = os.path.join(args.out, f"tokens-{args.main}.json")
        pts = [run_eval(args, ["--routing", "adak", "--allocator", p], cache, f"adak lambda={lam}",
                        tokens_out=tok_path if lam == args.main else None)
               for lam, p in sorted(allocs.items(), key=lambda kv: label_order(kv[0]))]
        if any(p is not None for p in pts):
            curves["Ada-K (λ sweep, training snapshots)"] = pts
        # the price sweep of every other allocator that has one
        for spec in args.allocator_prices:
            lam, mus = spec.split("=", 1)
            if lam == args.main or lam not in allocs:
                continue
            curves[f"Ada-K λ={lam} + price μ"] = [cache.get(f"adak lambda={lam}")] + [
                run_eval(args, ["--routing", "adak", "--allocator", allocs[lam], f"--price={mu}"], cache,
                         f"adak lambda={lam} price={mu}") for mu in (float(x) for x in mus.split(",") if x) if mu != 0]
        if args.main and args.main in allocs:
            p = allocs[args.main]
            # a global price per expert (same in every layer): moves along the allocator's own
            # trade-off, spending where its logits say an expert is worth most
            curves[f"Ada-K λ={args.main} + price μ"] = [cache.get(f"adak lambda={args.main}")] + [
                run_eval(args, ["--routing", "adak", "--allocator", p, f"--price={mu}"], cache,
                         f"adak lambda={args.main} price={mu}") for mu in args.prices if mu != 0]
            # the per-layer budget: every layer held at budget·K on average, tokens traded within
            # a layer (the cache's "budget=" entries were made so, before the global budget)
            curves[f"Ada-K λ={args.main} + budget"] = [
                run_eval(args, ["--routing", "adak", "--allocator", p, "--budget", str(b), "--budget-mode", "per_layer"],
                         cache, f"adak lambda={args.main} budget={b}") for b in args.budgets]

    curves = {n: [p for p in pts if p is not None] for n, pts in curves.items()}
    curves = {n: pts for n, pts in curves.items() if pts}

    # Pareto plot
    fig, ax = plt.subplots(figsize=(8, 5.5))
    marks = "os^vDP*Xh"
    for i, (name, pts) in enumerate(curves.items()):
        xs = np.array([p["expert_fraction"] for p in pts]); ys = np.array([p["ppl"] for p in pts])
        o = np.argsort(xs)
        if name.startswith("Ada-K (λ sweep"):
            # many allocators and snapshots: every point as a marker, the line through their Pareto front
            ax.scatter(xs, ys, marker=marks[i % len(marks)], s=14, color=plt.cm.tab20(i % 20), alpha=0.6)
            f = frontier(pts)
            ax.plot([a for a, _ in f], [np.exp(b) for _, b in f], marker=marks[i % len(marks)], label=name + " (Pareto front)",
                    lw=2, color=plt.cm.tab20(i % 20))
            continue
        ax.plot(xs[o], ys[o], marker=marks[i % len(marks)], label=name, lw=2 if "Ada-K" in name else 1,
                ls="--" if "kmax" in name else "-", color=plt.cm.tab20(i % 20))
    top = cache.get(f"topk k={K}")
    if top:
        ax.axhline(top["ppl"], color="gray", ls=":", lw=1)
        ax.axvline(0.75, color="gray", ls=":", lw=1)
    ax.set_xlabel("expert FLOPs / static Top-K (K=%d)" % K)
    ax.set_ylabel("perplexity (held-out, %d windows × 512, second halves)" % args.windows)
    ax.set_xlim(0.45, 1.3)
    if top:
        ax.set_ylim(top["ppl"] * 0.8, top["ppl"] * 2.2)
        ax.set_yscale("log")
    ax.grid(alpha=0.3); ax.legend(fontsize=8)
    fig.tight_layout(); fig.savefig(os.path.join(args.out, "pareto.png"), dpi=120)

    # tables
    # static Top-K interpolated (log ppl linear in expert FLOPs between integer K): the ppl it has
    # at a setting's FLOPs, and the FLOPs it needs for the setting's ppl
    tk = sorted((cache[f"topk k={k}"]["expert_fraction"], np.log(cache[f"topk k={k}"]["ppl"]))
                for k in range(1, E + 1) if f"topk k={k}" in cache)
    def topk_ppl_at(x):
        if len(tk) < 2 or not tk[0][0] <= x <= tk[-1][0]:
            return float("nan")
        return float(np.exp(np.interp(x, [a for a, _ in tk], [b for _, b in tk])))
    def topk_flops_for(ppl):
        ys = [b for _, b in tk][::-1]; xs = [a for a, _ in tk][::-1]
        if len(tk) < 2 or not ys[0] <= np.log(ppl) <= ys[-1]:
            return float("nan")
        return float(np.interp(np.log(ppl), ys, xs))
    lines = ["| setting | expert FLOPs | ppl | ± | mean k | Top-K ppl at these FLOPs | Top-K FLOPs for this ppl |",
             "|---|---|---|---|---|---|---|"]
    seen = set()
    for name, pts in curves.items():
        for key, r in sorted(cache.items()):
            if isinstance(r, dict) and any(r is p for p in pts) and key not in seen:
                seen.add(key)
                lines.append(f"| {key} | {r['expert_fraction']:.3f} | {r['ppl']:.3f} | {r['stderr']:.3f} | {r['mean_k']:.2f} "
                             f"| {topk_ppl_at(r['expert_fraction']):.3f} | {topk_flops_for(r['ppl']):.3f} |")
    # summary per FLOPs level: each family's best ppl there (interpolated along its Pareto points;
    # a family with two curves, e.g. the threshold policies with k_max = K and = E, takes the
    # better); Ada-K = the best over every allocator's price curve and the λ sweep
    fams = {"Ada-K": [n for n in curves if n.startswith("Ada-K") and "budget" not in n],
            "static Top-K": ["static Top-K"], "Top-P": [n for n in curves if n.startswith("Top-P")],
            "β-skip": [n for n in curves if n.startswith("β-skip")],
            "entropy": [n for n in curves if n.startswith("entropy")],
            "per-layer schedule": ["per-layer static K"]}
    def best(names, x):
        vals = [(interp_ppl(curves[n], x), n) for n in names if n in curves]
        vals = [v for v in vals if np.isfinite(v[0])]
        return min(vals) if vals else (float("nan"), "")
    sl = ["| expert FLOPs | " + " | ".join(fams) + " | Ada-K from | Ada-K lowest? |",
          "|---" * (len(fams) + 3) + "|"]
    summary = {}
    for x in args.levels:
        row = {f: best(n, x) for f, n in fams.items()}
        summary[str(x)] = {f: v[0] for f, v in row.items()}
        others = [v[0] for f, v in row.items() if f not in ("Ada-K", "per-layer schedule")]
        a = row["Ada-K"][0]
        verdict = ("yes" if np.isfinite(a) and all(np.isfinite(o) and a < o for o in others) else
                   "no" if np.isfinite(a) and any(np.isfinite(o) and a >= o for o in others) else "n/a")
        sl.append(f"| {x:.3f} | " + " | ".join(f"{v[0]:.2f}" for v in row.values()) +
                  f" | {row['Ada-K'][1]} | {verdict} |")
    cache["summary"] = summary
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("Best ppl per family at each expert-FLOPs level (log ppl interpolated linearly between "
                "a curve's Pareto points; nan: no measured points on both sides). 'Ada-K lowest?' "
                "compares with static Top-K, Top-P, β-skip and entropy (not the schedule).\n\n")
        f.write("\n".join(sl) + "\n\n")
        f.write("\n".join(lines) + "\n")
    json.dump(cache, open(cache_path, "w"), indent=1, sort_keys=True)

    # analysis of the main allocator: mean k per layer, content vs function words
    if args.main and args.main in allocs:
        tok_path = os.path.join(args.out, f"tokens-{args.main}.json")
        r = run_eval(args, ["--routing", "adak", "--allocator", allocs[args.main]], cache, f"adak lambda={args.main}",
                     tokens_out=tok_path)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(range(len(r["mean_k_per_layer"])), r["mean_k_per_layer"], color="tab:blue")
        ax.axhline(K, color="gray", ls=":", lw=1)
        ax.set_xlabel("MoE layer"); ax.set_ylabel("mean k")
        ax.set_title(f"Ada-K (λ={args.main}): mean experts per layer, expert FLOPs {r['expert_fraction']:.2f}")
        fig.tight_layout(); fig.savefig(os.path.join(args.out, "layers.png"), dpi=120)
        t = json.load(open(tok_path))
        cls = {"content": [], "function": [], "punctuation/number": []}
        for piece, mk in zip(t["pieces"], t["mean_k"]):
            w = piece.strip().lower()
            if w.isalpha():
                (cls["function"] if w in FUNCTION_WORDS else cls["content"]).append(mk)
            elif w and not any(c.isalpha() for c in w):
                cls["punctuation/number"].append(mk)
        stats = {c: (float(np.mean(v)) if v else float("nan"), len(v)) for c, v in cls.items()}
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar(list(stats), [s[0] for s in stats.values()], color=["tab:green", "tab:orange", "tab:gray"])
        lo = min(s[0] for s in stats.values())
        ax.set_ylim(lo * 0.95, max(s[0] for s in stats.values()) * 1.02)
        for i, (c, (m, n)) in enumerate(stats.items()):
            ax.text(i, m, f"{m:.2f}\n(n={n})", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("mean k over layers"); ax.set_title(f"Ada-K (λ={args.main}) by token class")
        fig.tight_layout(); fig.savefig(os.path.join(args.out, "words.png"), dpi=120)
        with open(os.path.join(args.out, "tables.md"), "a") as f:
            f.write("\n| token class | mean k | tokens |\n|---|---|---|\n")
            for c, (m, n) in stats.items():
                f.write(f"| {c} | {m:.3f} | {n} |\n")
            f.write("\nmean k per layer: " + " ".join(f"{v:.2f}" for v in r["mean_k_per_layer"]) + "\n")
        cache["word classes"] = stats
        json.dump(cache, open(cache_path, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
