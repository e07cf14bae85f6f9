#!/usr/bin/env python3
"""Writes Tests/Fixtures/text/ood-jargon.txt: an out-of-domain test text of another kind than
train.txt (kernel docs) and eval.txt (Python docs): the Jargon File 4.4.7 (public domain), hacker
slang essays and a humorous lexicon, from the Debian 12 package `jargon-text` (4.4.7-4.1).

Extraction: `usr/share/doc/jargon-text/jargon.txt.gz` from Chapter 1 to the end, without the two
tables of contents (the front matter and the glossary's list of headwords, i.e. everything between
"Part II. The Jargon Lexicon" and the first entry ":...:"); lines of a paragraph joined by one
space, paragraphs separated by a blank line, paragraphs of box-drawing characters only dropped;
the first MAX_BYTES bytes, cut at a paragraph break. Deterministic for the package version.

  cd /tmp && apt-get download jargon-text=4.4.7-4.1
  python3 Tests/Fixtures/tools/make_ood_text.py /tmp/jargon-text_4.4.7-4.1_all.deb
"""
import gzip, hashlib, json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_files import sha256

MEMBER = "usr/share/doc/jargon-text/jargon.txt.gz"
MAX_BYTES = 400_000
TEXT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "text")


def read_member(deb):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-x", deb, d], check=True)
        raw = open(os.path.join(d, MEMBER), "rb").read()
    return raw, gzip.decompress(raw).decode("utf-8")


def extract(text):
    lines = text.split("\n")
    plain = [l.replace("\u00a0", " ") for l in lines]  # headings use no-break spaces
    start = next(i for i, l in enumerate(plain) if l.startswith("Chapter 1. "))
    part2 = next(i for i, l in enumerate(plain) if l.strip() == "Part II. The Jargon Lexicon")
    first_entry = next(i for i, l in enumerate(plain) if i > part2 and l.startswith("   :") and l.rstrip().count(":") >= 2)
    body = lines[start:part2] + lines[first_entry:]
    paras, cur = [], []
    for l in body + [""]:
        if l.strip():
            cur.append(l.strip())
        elif cur:
            p = " ".join(cur)
            cur = []
            if any(c.isalnum() for c in p):
                paras.append(p)
    out = ""
    for p in paras:
        if len((out + p + "\n\n").encode("utf-8")) > MAX_BYTES:
            break
        out += p + "\n\n"
    return out


def main():
    deb = sys.argv[1]
    raw, text = read_member(deb)
    out = extract(text)
    path = os.path.join(TEXT_DIR, "ood-jargon.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(out)
    info_path = os.path.join(TEXT_DIR, "info.json")
    info = json.load(open(info_path))
    info["ood-jargon.txt"] = {
        "bytes": os.path.getsize(path),
        "lines": out.count("\n"),
        "sha256": sha256(path),
        "source": f"Debian jargon-text 4.4.7-4.1, {MEMBER} (sha256 {hashlib.sha256(raw).hexdigest()}), "
                  f"Chapter 1 to the end without the tables of contents, first {MAX_BYTES} bytes at a paragraph break",
    }
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1, sort_keys=False)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
