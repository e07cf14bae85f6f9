#!/usr/bin/env python3
"""The schedule-anchored Ada-K experiment (issue 19), on validation only: the frozen choices'
allocator with each layer's spend taken from the frozen per-layer schedule (`--budget-mode
schedule --layer-targets`, or the global price within `--layer-band` of it), against the schedule
and the global price, with paired per-window differences as eval_protocol.py computes them.

Reads OUT/data/valid.txt (eval_protocol.py split) and OUT/choices.json (or --choices); never a
test text. Runs are cached in OUT/valid-schedule-mode-results.json.

  python3 scripts/schedule_mode_valid.py --out build/protocol -m MODEL --choices docs/protocol/choices.json
"""
import argparse, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_protocol import Runner, key, paired, ppl_se

REPLICATION = "assets/allocators/smollm2-e16s25-lambda8.0-e0.05-g0.9-u98-seed1.gguf"


def settings_at(b, c):
    """{name: flags} of every setting tried at budget b, in the order they were tried."""
    alloc = c["allocators"][c["allocator"]]
    t = ["--layer-targets", ",".join(map(str, c["schedule"][str(b)]))]
    ada = ["--routing", "adak", "--allocator", alloc]
    sched = ["--budget-mode", "schedule"] + t
    return {
        "per-layer schedule": ["--k-schedule", t[1]],
        f"Ada-K {c['allocator']} global price": ada + ["--budget", str(b)],
        "schedule mode, kmax=16": ada + sched,
        "schedule mode, kmax=8": ada + sched + ["--k-max", "8"],
        "control: entropy, schedule mode, kmax=8": ["--routing", "entropy"] + sched + ["--k-max", "8"],
        "replication C/s1: schedule mode, kmax=8": ["--routing", "adak", "--allocator", REPLICATION] + sched + ["--k-max", "8"],
        "replication C/s1: global price": ["--routing", "adak", "--allocator", REPLICATION, "--budget", str(b)],
        "global price within ±1 of the schedule, kmax=8": ada + ["--budget", str(b)] + t + ["--layer-band", "1", "--k-max", "8"],
        "global price within ±2 of the schedule, kmax=8": ada + ["--budget", str(b)] + t + ["--layer-band", "2", "--k-max", "8"],
        "schedule mode within ±2, kmax=8": ada + sched + ["--layer-band", "2", "--k-max", "8"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--choices", help="frozen choices (default: OUT/choices.json)")
    ap.add_argument("--adak", default="build/bin/adak")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--budgets", default="0.5,0.625,0.75")
    args = ap.parse_args()
    c = json.load(open(args.choices or os.path.join(args.out, "choices.json")))
    valid = os.path.join(args.out, "data", "valid.txt")
    budgets = [float(b) for b in args.budgets.split(",")]
    runner = Runner(args, "valid-schedule-mode")
    jobs = [(key("valid", n, b), valid, args.windows, f) for b in budgets for n, f in settings_at(b, c).items()]
    r = runner.run_all(jobs)
    names = list(settings_at(budgets[0], c))
    print("| setting | " + " | ".join(f"B = {b}: ppl ± (FLOPs)" for b in budgets) + " |")
    print("|---" * (len(budgets) + 1) + "|")
    for n in names:
        cells = []
        for b in budgets:
            v = r[key("valid", n, b)]
            p, e = ppl_se(v["window_nll"])
            cells.append(f"{p:.2f} ± {e:.2f} ({v['expert_fraction']:.3f})")
        print(f"| {n} | " + " | ".join(cells) + " |")
    for ref in ["per-layer schedule", f"Ada-K {c['allocator']} global price"]:
        print(f"\nrelative to {ref} (paired over the windows; negative: lower ppl)\n")
        print("| setting | " + " | ".join(f"B = {b}" for b in budgets) + " |")
        print("|---" * (len(budgets) + 1) + "|")
        for n in names:
            if n == ref:
                continue
            cells = []
            for b in budgets:
                d, e = paired(r[key("valid", n, b)]["window_nll"], r[key("valid", ref, b)]["window_nll"])
                cells.append(f"{100 * d:+.1f}% ± {100 * e:.1f}")
            print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
