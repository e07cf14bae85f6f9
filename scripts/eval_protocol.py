#!/usr/bin/env python3
"""An evaluation protocol for routing policies that cannot select on its test texts (issue 19).

Stages (each a subcommand; OUT holds every file they write):
  split     train.txt -> OUT/data/train-part.txt (the allocators' training text) and
            OUT/data/valid.txt (the last VALID_BYTES of train.txt from a paragraph break on).
  validate  on valid.txt only: calibrates the per-layer schedule, runs every candidate (each
            allocator, each threshold policy with k_max = K and = E) at each budget, and freezes
            every choice in OUT/choices.json (with its sha256 in OUT/choices.sha256).
  test      refuses to start unless OUT/choices.json is frozen and unchanged; then runs the fixed
            choices once on each test text (eval.txt, the out-of-domain text) and writes
            OUT/tables.json, OUT/tables.md and a Pareto plot per test text. Test texts are opened
            only here.

Every setting runs at each expert-FLOPs budget B with `--budget B` (one price for the whole
model, solved over each 512-token window): Ada-K and the threshold policies move their shared
knob, static Top-K dithers k (mixing k and k+1 over tokens), the schedule is static with
Σk = B·L·K. So every family spends the same FLOPs; the tables show the achieved fraction.

  python3 scripts/eval_protocol.py split --out OUT
  python3 scripts/eval_protocol.py validate --out OUT -m MODEL --allocator RECIPE/SEED=PATH ...
  python3 scripts/eval_protocol.py test --out OUT -m MODEL --test eval=PATH --test ood=PATH
"""
import argparse, hashlib, json, math, os, subprocess, sys

TRAIN_TEXT = "Tests/Fixtures/text/train.txt"
VALID_BYTES = 400_000
BUDGETS = [0.5, 0.625, 0.75]
THRESHOLD_FAMILIES = {"top_p": "Top-P", "skip": "β-skip", "entropy": "entropy"}


# ---------------------------------------------------------------------------------------------
# the split

def split_text(data, valid_bytes=VALID_BYTES):
    """(train, valid): valid starts at the first paragraph break at or after len − valid_bytes
    (the break's blank line stays with train), so the two parts are disjoint and cover the text."""
    if len(data) <= valid_bytes:
        raise ValueError(f"text of {len(data)} bytes is too short for a validation part of {valid_bytes}")
    cut = data.find(b"\n\n", len(data) - valid_bytes)
    if cut < 0:
        raise ValueError("no paragraph break in the validation range")
    return data[:cut + 2], data[cut + 2:]


def cmd_split(args):
    data = open(args.train_text, "rb").read()
    train, valid = split_text(data, args.valid_bytes)
    d = os.path.join(args.out, "data")
    os.makedirs(d, exist_ok=True)
    for name, part in [("train-part.txt", train), ("valid.txt", valid)]:
        with open(os.path.join(d, name), "wb") as f:
            f.write(part)
        print(f"{name}: {len(part)} bytes, sha256 {hashlib.sha256(part).hexdigest()}")


# ---------------------------------------------------------------------------------------------
# the per-layer schedule (also used by scripts/pareto.py)

def schedule(sens, K, budget, kmin=1):
    """One static K per layer: the total of k is round(budget·L·K); the layers whose perplexity
    suffers least lose experts first, with a quadratic loss model s_l·((K−k)/4)² per layer."""
    L = len(sens)
    ks = [K] * L
    target = int(round(budget * L * K))
    s = [max(v, 1e-6) for v in sens]
    while sum(ks) > target:
        cost = [s[l] * ((K - ks[l] + 1) ** 2 - (K - ks[l]) ** 2) if ks[l] > kmin else math.inf for l in range(L)]
        l = min(range(L), key=lambda i: cost[i])
        if math.isinf(cost[l]):
            break
        ks[l] -= 1
    return ks


# ---------------------------------------------------------------------------------------------
# statistics over windows (every setting scores the same windows, so differences are paired)

def mean_se(xs):
    n = len(xs)
    m = sum(xs) / n
    var = sum((x - m) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return m, math.sqrt(var / n)


def ppl_se(window_nll):
    """(ppl, ±): exp of the mean window nll, its standard error over windows (delta method)."""
    m, se = mean_se(window_nll)
    return math.exp(m), math.exp(m) * se


def paired(a, b):
    """(relative ppl difference of a vs b, ±): exp(mean(a_i − b_i)) − 1 over the paired windows."""
    m, se = mean_se([x - y for x, y in zip(a, b)])
    return math.exp(m) - 1, math.exp(m) * se


# ---------------------------------------------------------------------------------------------
# running settings

class Runner:
    """Runs `adak eval-routing` (cached in OUT/<role>-results.json). Test texts may only be read
    once the choices are frozen: `allow_test()` is called by the test stage after the check."""

    def __init__(self, args, role):
        self.args, self.role = args, role
        self.path = os.path.join(args.out, f"{role}-results.json")
        self.cache = json.load(open(self.path)) if os.path.exists(self.path) else {}
        self.test_allowed = False

    def allow_test(self):
        self.test_allowed = True

    def run_all(self, jobs):
        """jobs: [(key, text, windows, extra args)]; runs the uncached ones, `--jobs` at a time."""
        if self.role == "test" and not self.test_allowed:
            raise SystemExit("refusing to read test text: the choices are not frozen (run validate first)")
        todo = [j for j in jobs if j[0] not in self.cache]
        from concurrent.futures import ThreadPoolExecutor
        import threading
        lock = threading.Lock()

        def one(job):
            key, text, windows, extra = job
            cmd = ["nice", "-n", str(self.args.nice), self.args.adak, "eval-routing", "-m", self.args.model,
                   "--text", text, "--windows", str(windows), "-t", str(self.args.threads)] + extra
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["command"] = " ".join(cmd[3:])
            with lock:
                self.cache[key] = r
                with open(self.path, "w") as f:
                    json.dump(self.cache, f, indent=1, sort_keys=True)
                print(f"{self.role:5s} {key:45s} ppl {r['ppl']:8.3f}  FLOPs {r['expert_fraction']:.4f}  ({r['seconds']:.0f}s)",
                      flush=True)

        with ThreadPoolExecutor(max_workers=self.args.jobs) as ex:
            list(ex.map(one, todo))
        return {j[0]: self.cache[j[0]] for j in jobs}


def sha256_file(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def family_flags(family, cap=None):
    """The flags of a threshold family (cap: its k_max; None: the policy's default, K)."""
    return ["--routing", family] + (["--k-max", str(cap)] if cap else [])


def settings_at(b, choices):
    """{name: flags} of every family at budget b under frozen (or candidate) choices:
    choices = {"thresholds": {family: [caps]}, "allocators": {label: path}, "schedule": {b: ks}}."""
    out = {"static Top-K": ["--routing", "topk", "--budget", str(b)]}
    for fam, caps in choices["thresholds"].items():
        for cap in caps:
            out[f"{fam} kmax={cap}"] = family_flags(fam, cap) + ["--budget", str(b)]
    if str(b) in choices.get("schedule", {}):
        out["per-layer schedule"] = ["--k-schedule", ",".join(map(str, choices["schedule"][str(b)]))]
    for label, path in choices["allocators"].items():
        out[f"Ada-K {label}"] = ["--routing", "adak", "--allocator", path, "--budget", str(b)]
    return out


def key(text_label, name, b):
    return f"{text_label} | {name} | B={b}"


# ---------------------------------------------------------------------------------------------
# validate: every choice on valid.txt

def calibrate(runner, args, valid):
    """Δ log ppl when one layer alone drops from K to K−4, on the first calib-windows of valid."""
    K, L = args.native_k, args.layers
    jobs = [("calib | topk k=K", valid, args.calib_windows, ["--routing", "topk"])]
    for l in range(L):
        ks = [K] * L
        ks[l] = K - 4
        jobs.append((f"calib | layer {l} k={K - 4}", valid, args.calib_windows, ["--k-schedule", ",".join(map(str, ks))]))
    r = runner.run_all(jobs)
    base = math.log(r[jobs[0][0]]["ppl"])
    return [math.log(r[j[0]]["ppl"]) - base for j in jobs[1:]]


def valid_mean_logppl(results, name, budgets):
    """Mean log ppl of a setting over the validation runs at the given budgets."""
    return sum(math.log(results[key("valid", name, b)]["ppl"]) for b in budgets) / len(budgets)


def valid_caps(results, budgets, candidates):
    """Each threshold family's k_max: of the candidate caps (K, E), the lowest mean log ppl on validation."""
    return {f: min(candidates, key=lambda c: valid_mean_logppl(results, f"{f} kmax={c}", budgets))
            for f in THRESHOLD_FAMILIES}


def cmd_validate(args):
    valid = os.path.join(args.out, "data", "valid.txt")
    if not os.path.exists(valid):
        raise SystemExit(f"{valid} missing: run the split stage first")
    vh = sha256_file(valid)
    for t in args.forbid:
        if os.path.exists(t) and sha256_file(t) == vh:
            raise SystemExit(f"the validation text is the test text {t}")
    runner = Runner(args, "valid")
    K, E = args.native_k, args.experts
    sens = calibrate(runner, args, valid)
    allocs = dict(a.split("=", 1) for a in args.allocator)
    cand = {"thresholds": {f: [K, E] for f in THRESHOLD_FAMILIES}, "allocators": allocs,
            "schedule": {str(b): schedule(sens, K, b) for b in BUDGETS}}
    chosen_on = args.choose_budgets or BUDGETS
    jobs = [(key("valid", n, b), valid, args.windows, flags) for b in chosen_on for n, flags in settings_at(b, cand).items()]
    r = runner.run_all(jobs)
    if args.run_only:
        return
    mean_logppl = lambda name: valid_mean_logppl(r, name, chosen_on)
    caps = valid_caps(r, chosen_on, [K, E])
    # the threshold families run on test: the best --test-thresholds of them on validation
    kept = sorted(THRESHOLD_FAMILIES, key=lambda f: mean_logppl(f"{f} kmax={caps[f]}"))[:args.test_thresholds]
    recipes = {}
    for label in allocs:
        recipes.setdefault(label.split("/")[0], []).append(label)
    recipe_score = {rc: sum(mean_logppl(f"Ada-K {l}") for l in ls) / len(ls) for rc, ls in recipes.items()}
    recipe = min(recipe_score, key=recipe_score.get)
    best = min(recipes[recipe], key=lambda l: mean_logppl(f"Ada-K {l}"))
    choices = {
        "protocol": "scripts/eval_protocol.py", "budgets": BUDGETS, "windows": args.windows,
        "valid_sha256": vh, "model_sha256": sha256_file(args.model),
        "calibration": {"windows": args.calib_windows, "sensitivity": sens},
        "schedule": cand["schedule"],
        "thresholds": {f: [caps[f]] for f in kept}, "chosen_on_budgets": chosen_on,
        "recipe": recipe, "recipe_valid_mean_log_ppl": recipe_score,
        "allocator": best,
        # every seed of the chosen recipe is reported on test; `allocator` is the one committed
        "allocators": {l: allocs[l] for l in sorted(recipes[recipe])},
        "allocator_sha256": {l: sha256_file(allocs[l]) for l in recipes[recipe]},
        "valid": {n: {"ppl": v["ppl"], "expert_fraction": v["expert_fraction"]} for n, v in r.items()},
    }
    blob = json.dumps(choices, indent=1, sort_keys=True).encode()
    with open(os.path.join(args.out, "choices.json"), "wb") as f:
        f.write(blob)
    with open(os.path.join(args.out, "choices.sha256"), "w") as f:
        f.write(hashlib.sha256(blob).hexdigest() + "\n")
    print(f"frozen: recipe {recipe} (allocator {best}), caps {caps}")


def load_frozen(out):
    """The frozen choices, or an exit when they are missing or were edited after freezing."""
    p, h = os.path.join(out, "choices.json"), os.path.join(out, "choices.sha256")
    if not (os.path.exists(p) and os.path.exists(h)):
        raise SystemExit("refusing to read test text: no frozen choices (run validate first)")
    blob = open(p, "rb").read()
    if hashlib.sha256(blob).hexdigest() != open(h).read().strip():
        raise SystemExit("refusing to read test text: choices.json changed after it was frozen")
    c = json.loads(blob)
    for label, path in c["allocators"].items():
        if sha256_file(path) != c["allocator_sha256"][label]:
            raise SystemExit(f"refusing to read test text: allocator {path} changed after the choices were frozen")
    return c


# ---------------------------------------------------------------------------------------------
# test: the frozen choices, once, on each test text

def cmd_test(args):
    c = load_frozen(args.out)
    if sha256_file(args.model) != c["model_sha256"]:
        raise SystemExit("the model differs from the one the choices were made with")
    # more seeds of the chosen recipe, trained after the freeze: reported next to the chosen
    # allocator as replications, never chosen from
    reps = dict(r.split("=", 1) for r in args.replicate)
    for label in reps:
        if label.split("/")[0] != c["recipe"] or label in c["allocators"]:
            raise SystemExit(f"--replicate {label}: only new seeds of the chosen recipe '{c['recipe']}' may be added")
    c = dict(c, allocators={**c["allocators"], **reps}, replications=sorted(reps))
    if args.all_thresholds:
        # the families validation did not send to test, as reported baselines: each at the cap its
        # own validation runs chose (the same rule as the freeze); nothing is chosen from them
        caps = valid_caps(c["valid"], c["chosen_on_budgets"], [args.native_k, args.experts])
        added = {f: [caps[f]] for f in THRESHOLD_FAMILIES if f not in c["thresholds"]}
        c = dict(c, thresholds={**c["thresholds"], **added}, added_thresholds=sorted(added))
    runner = Runner(args, "test")
    runner.allow_test()
    tests = dict(t.split("=", 1) for t in args.test)
    jobs = []
    for label, path in tests.items():
        jobs.append((key(label, "static Top-K k=K", 1.0), path, c["windows"], ["--routing", "topk"]))
        for b in c["budgets"]:
            jobs += [(key(label, n, b), path, c["windows"], flags) for n, flags in settings_at(b, c).items()]
    # the most important first (a stopped run leaves the comparisons that matter most): the chosen
    # allocator, the schedule and Top-K, then the threshold policies, then replication seeds
    tier = lambda j: (0 if not any(f" {f} " in j[0] for f in THRESHOLD_FAMILIES) and not any(f"Ada-K {l} " in j[0] for l in reps)
                      else 1 if not any(f"Ada-K {l} " in j[0] for l in reps) else 2)
    if args.only_replications:
        jobs = [j for j in jobs if tier(j) == 2]
    r = runner.run_all(sorted(jobs, key=tier))
    if args.only_replications:
        return
    tables = make_tables(c, r, list(tests))
    with open(os.path.join(args.out, "tables.json"), "w") as f:
        json.dump(tables, f, indent=1, sort_keys=True)
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write(tables_md(c, tables) + valid_md(c))
    if not args.no_plots:
        plots(c, r, list(tests), args.out)
    print(open(os.path.join(args.out, "tables.md")).read())


def make_tables(c, r, labels):
    """Per test text and budget: each family's ppl ± (over windows), achieved FLOPs, and the chosen
    allocator's paired relative difference to it."""
    main = f"Ada-K {c['allocator']}"
    out = {"allocator": c["allocator"], "replications": c.get("replications", [])}
    for t in labels:
        rows = {}
        for b in c["budgets"]:
            names = [n for n in settings_at(b, c)]
            a = r[key(t, main, b)]["window_nll"]
            row = {}
            for n in names:
                v = r[key(t, n, b)]
                p, pe = ppl_se(v["window_nll"])
                d, de = paired(a, v["window_nll"]) if n != main else (0.0, 0.0)
                row[n] = {"ppl": p, "se": pe, "expert_fraction": v["expert_fraction"],
                          "adak_vs": d, "adak_vs_se": de, "mean_k_per_layer": v["mean_k_per_layer"]}
            rows[str(b)] = row
        top = r[key(t, "static Top-K k=K", 1.0)]
        p, pe = ppl_se(top["window_nll"])
        out[t] = {"budgets": rows, "topk_native": {"ppl": p, "se": pe}}
    return out


def family_of(name):
    for f, title in THRESHOLD_FAMILIES.items():
        if name.startswith(f + " "):
            return title + name[len(f):]
    return name


def tables_md(c, tables):
    main = f"Ada-K {c['allocator']}"
    lines = []
    reps = tables.get("replications", [])
    for t, tab in tables.items():
        if not isinstance(tab, dict) or "budgets" not in tab:
            continue
        lines.append(f"### {t}\n")
        lines.append(f"static Top-K k = {8}: ppl {tab['topk_native']['ppl']:.2f} ± {tab['topk_native']['se']:.2f}\n")
        budgets = list(tab["budgets"])
        names = list(tab["budgets"][budgets[0]])
        lines.append("| setting | " + " | ".join(f"B = {b}: ppl ± (FLOPs)" for b in budgets) + " |")
        lines.append("|---" * (len(budgets) + 1) + "|")
        for n in names:
            cells = []
            for b in budgets:
                v = tab["budgets"][b][n]
                cells.append(f"{v['ppl']:.2f} ± {v['se']:.2f} ({v['expert_fraction']:.3f})")
            name = f"**{n}** (chosen)" if n == main else family_of(n)
            if n[len("Ada-K "):] in reps:
                name += " (replication seed, trained after the freeze)"
            if n.split(" kmax=")[0] in c.get("added_thresholds", []):
                name += " (not sent to test by validation; its cap from validation)"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(f"{main} relative to each setting (paired over windows; negative: Ada-K lower):\n")
        lines.append("| vs | " + " | ".join(f"B = {b}" for b in budgets) + " |")
        lines.append("|---" * (len(budgets) + 1) + "|")
        for n in names:
            if n == main:
                continue
            cells = []
            for b in budgets:
                v = tab["budgets"][b][n]
                cells.append(f"{100 * v['adak_vs']:+.1f}% ± {100 * v['adak_vs_se']:.1f}")
            lines.append(f"| {family_of(n)} | " + " | ".join(cells) + " |")
        lines.append("")
        baselines = [family_of(n).split(" kmax")[0] for n in names if not n.startswith("Ada-K") and n != "per-layer schedule"]
        lines.append(f"| B | Ada-K lowest of {' / '.join(baselines)}? | ≥ 5% lower than the schedule? |")
        lines.append("|---|---|---|")
        for b in budgets:
            row = tab["budgets"][b]
            a = row[main]["ppl"]
            others = [v["ppl"] for n, v in row.items() if n != main and not n.startswith("Ada-K") and n != "per-layer schedule"]
            s = row["per-layer schedule"]
            lowest = "yes" if all(a < o for o in others) else "no"
            five = "yes" if s["adak_vs"] <= -0.05 else "no"
            lines.append(f"| {b} | {lowest} | {five} ({100 * s['adak_vs']:+.1f}% ± {100 * s['adak_vs_se']:.1f}) |")
        lines.append("")
    return "\n".join(lines) + "\n"


def valid_md(c):
    """The validation runs the choices were made from (ppl, achieved FLOPs) as a table."""
    rows = {}
    for k, v in c["valid"].items():
        _, name, b = [x.strip() for x in k.split("|")]
        rows.setdefault(name, {})[b[2:]] = v
    budgets = [str(b) for b in c["chosen_on_budgets"]]
    lines = ["### validation (the choices' basis)\n", "| setting | " + " | ".join(f"B = {b}" for b in budgets) + " |",
             "|---" * (len(budgets) + 1) + "|"]
    for name, v in sorted(rows.items()):
        lines.append(f"| {family_of(name)} | " + " | ".join(
            f"{v[b]['ppl']:.2f} ({v[b]['expert_fraction']:.3f})" if b in v else "" for b in budgets) + " |")
    return "\n".join(lines) + "\n"


def plots(c, r, labels, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    main = f"Ada-K {c['allocator']}"
    for t in labels:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        names = list(settings_at(c["budgets"][0], c))
        for i, n in enumerate(names):
            pts = [r[key(t, n, b)] for b in c["budgets"]]
            xs = [p["expert_fraction"] for p in pts]
            ys, es = zip(*(ppl_se(p["window_nll"]) for p in pts))
            ax.errorbar(xs, ys, yerr=es, marker="os^vDP*Xh"[i % 9], capsize=3, label=family_of(n),
                        lw=2.5 if n == main else 1.2, ls="--" if n.startswith("Ada-K") and n != main else "-")
        top = r[key(t, "static Top-K k=K", 1.0)]
        ax.axhline(top["ppl"], color="gray", ls=":", lw=1, label="static Top-K k = 8 (FLOPs 1.0)")
        ax.set_xlabel("expert FLOPs / static Top-K (k = 8), achieved")
        ax.set_ylabel(f"perplexity ({c['windows']} windows × 512, ± s.e. over windows)")
        ax.set_title(f"test text: {t} (every choice made on validation)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"pareto-{t}.png"), dpi=110)
        plt.close(fig)
    # the chosen allocator's mean k per layer under each budget, per test text
    rows = [(f"{t} B={b}", r[key(t, main, b)]["mean_k_per_layer"]) for t in labels for b in c["budgets"]]
    rows += [(f"schedule B={b}", c["schedule"][str(b)]) for b in c["budgets"]]   # for comparison
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    im = ax.imshow([v for _, v in rows], aspect="auto", cmap="viridis", vmin=0, vmax=16)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([n for n, _ in rows])
    ax.set_xticks(range(len(rows[0][1])))
    ax.set_xlabel("MoE layer")
    for i, (_, v) in enumerate(rows):
        for j, k in enumerate(v):
            ax.text(j, i, f"{k:.0f}" if abs(k - round(k)) < 0.05 else f"{k:.1f}", ha="center", va="center", fontsize=6,
                    color="white" if k < 8 else "black")
    fig.colorbar(im, ax=ax, label="mean k")
    ax.set_title(f"{main}: mean k per layer under the global budget (last rows: the validation-calibrated schedule)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "layers-heatmap.png"), dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="stage", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True)
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("-m", "--model", required=True)
    run.add_argument("--adak", default="build/bin/adak")
    run.add_argument("--threads", type=int, default=1, help="threads per run")
    run.add_argument("--jobs", type=int, default=2, help="runs at a time")
    run.add_argument("--nice", type=int, default=5)
    run.add_argument("--native-k", type=int, default=8)
    run.add_argument("--experts", type=int, default=16)
    run.add_argument("--layers", type=int, default=30)
    p = sub.add_parser("split", parents=[common])
    p.add_argument("--train-text", default=TRAIN_TEXT)
    p.add_argument("--valid-bytes", type=int, default=VALID_BYTES)
    p = sub.add_parser("validate", parents=[common, run])
    p.add_argument("--allocator", action="append", default=[], help="RECIPE/SEED=PATH (repeatable)")
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--calib-windows", type=int, default=2)
    p.add_argument("--forbid", action="append", default=[], help="test texts the validation text must not be")
    p.add_argument("--run-only", action="store_true", help="run and cache, freeze nothing (more candidates to come)")
    p.add_argument("--choose-budgets", type=lambda v: [float(x) for x in v.split(",")],
                   help="the budgets whose validation runs make the choices (default: all)")
    p.add_argument("--test-thresholds", type=int, default=len(THRESHOLD_FAMILIES),
                   help="how many threshold families (the best on validation) run on test")
    p = sub.add_parser("test", parents=[common, run])
    p.add_argument("--test", action="append", required=True, help="LABEL=PATH of a test text (repeatable)")
    p.add_argument("--replicate", action="append", default=[],
                   help="RECIPE/SEED=PATH: another seed of the chosen recipe, reported, not chosen from")
    p.add_argument("--all-thresholds", action="store_true",
                   help="also run the threshold families validation left out, at their validation caps (reported, never chosen from)")
    p.add_argument("--only-replications", action="store_true",
                   help="run the replication seeds only (e.g. into another OUT while the main test runs), no tables")
    p.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)
    {"split": cmd_split, "validate": cmd_validate, "test": cmd_test}[args.stage](args)


if __name__ == "__main__":
    main()
