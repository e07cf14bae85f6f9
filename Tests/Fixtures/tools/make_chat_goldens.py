#!/usr/bin/env python3
"""Chat-template goldens rendered by Hugging Face transformers.

Copies real chat-template texts (llama.cpp's models/templates/*.jinja and
tests/test-chat-template.cpp, plus the template inside the SmolLM2 vocab GGUF) into
Tests/Fixtures/chat/templates/, then renders three conversations per template, with and without
the assistant prefix, with transformers' own `render_jinja_template` (what
`tokenizer.apply_chat_template(..., tokenize=False)` calls) into Tests/Fixtures/chat/goldens.json.
A template that refuses a conversation (Gemma: no system role) is recorded with its error.
Templates that print today's date get a fixed one (transformers' `strftime_now` reads a pinned
clock; libadak's tests pass the same date).

    make_chat_goldens.py LLAMA_CPP_SRC [OUT_DIR]
LLAMA_CPP_SRC: llama.cpp's source tree (e.g. the one vendored in the llama-cpp-python 0.3.36 sdist).
Needs transformers (+ jinja2) and gguf.
"""
import ast, datetime, json, os, re, sys

import gguf
import transformers
import transformers.utils.chat_template_utils as ctu
from transformers.utils.chat_template_utils import render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.dirname(HERE)
FIXED_DATE = datetime.datetime(2026, 3, 7, 12, 0, 0)


class _FixedClock(datetime.datetime):
    """transformers' `strftime_now` reads `datetime.now()` of its own module: pin it."""
    @classmethod
    def now(cls, tz=None):
        return FIXED_DATE


ctu.datetime = _FixedClock

# name -> (source, family, bos, eos). source: ("file", llama.cpp models/templates name) |
# ("test", test-chat-template.cpp entry name) | ("gguf", path under Tests/Fixtures)
TEMPLATES = {
    "chatml-openhermes": (("test", "teknium/OpenHermes-2.5-Mistral-7B"), "chatml", "<s>", "<|im_end|>"),
    "smollm2": (("gguf", "tokenizer/smollm2.vocab.gguf"), "chatml", "<|im_start|>", "<|im_end|>"),
    "qwen2.5": (("file", "Qwen-Qwen2.5-7B-Instruct.jinja"), "chatml", "", "<|im_end|>"),
    "llama3": (("test", "Llama-3"), "llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1": (("file", "meta-llama-Llama-3.1-8B-Instruct.jinja"), "llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "llama2-vigogne": (("test", "bofenghuang/vigogne-2-70b-chat"), "llama2", "<s>", "</s>"),
    "mistral-v1": (("test", "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"), "mistral", "<s>", "</s>"),
    "mistral-v7": (("test", "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)"), "mistral", "<s>", "</s>"),
    "gemma": (("test", "google/gemma-7b-it"), "gemma", "<bos>", "<eos>"),
    "gemma2": (("file", "google-gemma-2-2b-it.jinja"), "gemma", "<bos>", "<eos>"),
    "phi3-mini": (("test", "Phi-3-mini"), "phi3", "<s>", "<|endoftext|>"),
    "phi3.5": (("file", "microsoft-Phi-3.5-mini-instruct.jinja"), "phi3", "<s>", "<|endoftext|>"),
    "deepseek-v2": (("test", "DeepSeek-V2"), "deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-r1-distill": (("file", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), "deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "gpt-oss": (("file", "openai-gpt-oss-120b.jinja"), "gpt-oss", "<|startoftext|>", "<|return|>"),
    "granite-3.0": (("test", "ibm-granite/granite-3.0-8b-instruct"), "granite", "<|end_of_text|>", "<|end_of_text|>"),
    "granite-3.3": (("file", "ibm-granite-granite-3.3-2B-Instruct.jinja"), "granite", "<|end_of_text|>", "<|end_of_text|>"),
}

CONVERSATIONS = {
    "system_user": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "user_only": [
        {"role": "user", "content": "Hello! Who are you?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": " Seven is prime.\n"},
        {"role": "user", "content": "  And an even one? "},
    ],
}


def test_templates(src):
    text = open(os.path.join(src, "tests", "test-chat-template.cpp"), encoding="utf-8").read()
    out = {}
    pat = re.compile(r'/\* \.name= \*/ "((?:[^"\\]|\\.)*)",.*?/\* \.template_str= ?\*/ (?:U8C\()?("(?:[^"\\]|\\.)*")', re.S)
    for m in pat.finditer(text):
        out[ast.literal_eval('"' + m.group(1) + '"')] = ast.literal_eval(m.group(2))
    return out


def load_template(src, source, tests):
    kind, name = source
    if kind == "file":
        return open(os.path.join(src, "models", "templates", name), encoding="utf-8").read()
    if kind == "test":
        return tests[name]
    reader = gguf.GGUFReader(os.path.join(FIX, name))
    f = reader.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


def main():
    src = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(FIX, "chat")
    os.makedirs(os.path.join(out_dir, "templates"), exist_ok=True)
    tests = test_templates(src)
    cases = []
    for name, (source, family, bos, eos) in TEMPLATES.items():
        tmpl = load_template(src, source, tests)
        with open(os.path.join(out_dir, "templates", name + ".jinja"), "w", encoding="utf-8") as f:
            f.write(tmpl)
        for conv_name, messages in CONVERSATIONS.items():
            for add in (True, False):
                case = {"template": name, "family": family, "conversation": conv_name,
                        "add_assistant": add, "bos_token": bos, "eos_token": eos}
                try:
                    rendered, _ = render_jinja_template(
                        conversations=[messages], chat_template=tmpl, add_generation_prompt=add,
                        bos_token=bos, eos_token=eos)
                    case["rendered"] = rendered[0]
                except Exception as e:  # the template's own raise_exception
                    case["error"] = str(e)
                cases.append(case)
    doc = {"generator": "Tests/Fixtures/tools/make_chat_goldens.py",
           "transformers": transformers.__version__, "jinja2": __import__("jinja2").__version__,
           "date": FIXED_DATE.strftime("%Y-%m-%d"),
           "conversations": CONVERSATIONS, "cases": cases}
    with open(os.path.join(out_dir, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(TEMPLATES)} templates, {len(cases)} cases, "
          f"{sum('error' in c for c in cases)} refused -> {out_dir}")


if __name__ == "__main__":
    main()
