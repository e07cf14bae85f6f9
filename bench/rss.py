"""Peak resident memory of `adak bench` on GGUF files against the file and its KV cache.

For each file: `/usr/bin/time -v adak-cli bench` (prefill 128, decode 128, f16 KV cache, no
bandwidth probe, one round), then peak RSS / (file bytes + KV cache bytes). The issue's bound is
1.1: nothing copied that is used as it is stored, repacked copies only in place of the original.
usage: python3 bench/rss.py FILE.gguf... [--threads 2] [--cli .build/release/adak-cli]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", default=os.path.join(ROOT, ".build", "release", "adak-cli"))
    a = ap.parse_args()
    print("| file | file MB | KV MB | peak RSS MB | RSS / (file + KV) |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for path in a.files:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        cmd = ["/usr/bin/time", "-v", a.cli, "bench", "-m", path, "-t", str(a.threads), "--rounds", "1",
               "--no-probe", "--kv-type", "f16", "--json", out]
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            print(f"| {os.path.basename(path)} | failed: {p.stderr.strip().splitlines()[-1:]} | | | |")
            continue
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) * 1024
        with open(out) as f:
            kv = json.load(f)["kv_cache_bytes"]
        os.unlink(out)
        size = os.path.getsize(path)
        ratio = rss / (size + kv)
        worst = max(worst, ratio)
        print(f"| {os.path.basename(path)} | {size / 1e6:.0f} | {kv / 1e6:.1f} | {rss / 1e6:.0f} | {ratio:.3f} |", flush=True)
    print(f"\nworst ratio {worst:.3f} (bound 1.1)")
    sys.exit(0 if worst <= 1.1 else 1)


if __name__ == "__main__":
    main()
