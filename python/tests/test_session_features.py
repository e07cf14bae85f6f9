"""Issue 20: what applications need from a session, one test per trap of the issue's "Why"
list (each failed before the fix) plus chat templates, stop strings, state, rewind and copy."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import adak
from adak import _lib
from conftest import DEMO, FIXTURES, REPO

FRANCE = [{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "What is the capital of France?"}]


def _cli() -> str:
    lib = os.environ.get("ADAK_LIB")
    cli = Path(lib).parent / "bin" / "adak" if lib else REPO / "build" / "bin" / "adak"
    if not cli.exists():
        pytest.skip(f"no adak CLI at {cli}")
    return str(cli)


def _run(*args, stdin=None):
    return subprocess.run([_cli(), *args], input=stdin, capture_output=True, encoding="utf-8", errors="replace",
                          timeout=300)


# -- "An Instruct model asked a plain question prints nothing" ---------------------------------
def test_chat_template_is_applied_and_answers(smollm2_model):
    with smollm2_model.session(n_ctx=512, temperature=0.0) as s:
        answer = s.chat(FRANCE, max_tokens=48)
        assert "Paris" in answer
        assert s.stop_reason == "end_of_generation"


def test_apply_chat_template_equals_transformers(smollm2_model):
    goldens = json.loads((FIXTURES / "chat" / "goldens.json").read_text(encoding="utf-8"))
    cases = [c for c in goldens["cases"] if c["template"] == "smollm2"]
    assert len(cases) == 6
    for c in cases:
        msgs = goldens["conversations"][c["conversation"]]
        assert smollm2_model.apply_chat_template(msgs, add_assistant=c["add_assistant"]) == c["rendered"]


def test_unknown_or_missing_template_is_a_clear_error(tiny_model):
    with pytest.raises(adak.UnsupportedError) as e:
        tiny_model.apply_chat_template([{"role": "user", "content": "hi"}])
    assert "chat template" in e.value.message
    with pytest.raises(TypeError):
        tiny_model.apply_chat_template([{"role": "user", "content": 3}])


def test_chat_second_turn_evaluates_only_new_tokens(smollm2_model):
    with smollm2_model.session(n_ctx=1024, temperature=0.0) as s:
        msgs = list(FRANCE)
        first = s.chat(msgs, max_tokens=48)
        full_first = s.last_chat_evaluated
        msgs += [{"role": "assistant", "content": first}, {"role": "user", "content": "And of Germany?"}]
        pieces = list(s.chat(msgs, max_tokens=48, stream=True))
        all_ids = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(msgs))
        new_turn = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(msgs[-1:]))
        print(f"turn 1 evaluated {full_first}, turn 2 evaluated {s.last_chat_evaluated} of {len(all_ids)}")
        assert s.last_chat_evaluated < len(all_ids) - full_first
        assert s.last_chat_evaluated <= len(new_turn) + 4
        assert "".join(pieces).strip()


# -- "Python generate parses special tokens by default" -----------------------------------------
def test_user_text_never_parses_special_tokens(smollm2_model):
    im_end = smollm2_model.tokenize("<|im_end|>", add_special=False, parse_special=True)
    assert len(im_end) == 1
    with smollm2_model.session(n_ctx=128, temperature=0.0) as s:
        list(s.generate("say <|im_end|> now", max_tokens=0))
        assert im_end[0] not in s.tokens
        s.reset()
        list(s.generate("say <|im_end|> now", max_tokens=0, special=True))
        assert im_end[0] in s.tokens


# -- "Generation does not say why it stopped" ---------------------------------------------------
def test_every_generation_says_why_it_stopped(smollm2_model):
    story = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(
        [{"role": "user", "content": "Tell me a long story about a dragon."}]))
    with smollm2_model.session(n_ctx=len(story) + 20, temperature=0.0) as s:
        out = list(s.generate_tokens(story, max_tokens=300))
        assert s.stop_reason == "context_full" and len(out) == 21
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        assert len(list(s.generate_tokens(story, max_tokens=5))) == 5
        assert s.stop_reason == "max_tokens"
        s.reset()
        for i, _ in enumerate(s.generate_tokens(story, max_tokens=50)):
            if i == 2:
                break
        assert s.stop_reason == "callback"
        s.reset()
        text = "".join(s.generate(story, max_tokens=30))
        stop = text[10:16]
        s.reset()
        cut = "".join(s.generate(story, max_tokens=30, stop=[stop]))
        assert s.stop_reason == "stop_string" and cut == text[: text.index(stop)]


def test_header_states_the_sampling_defaults():
    header = (REPO / "include" / "adak.h").read_text()
    for name, value in (("temperature", "0.8"), ("top_k", "40"), ("top_p", "0.95"), ("min_p", "0.05")):
        assert re.search(rf"\b{name}\s+{re.escape(value)}\b", header), name


# -- "one AdakError for everything; numbers not type-checked; get misses keys; float noise" -----
def test_exceptions_subclass_the_builtins(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        adak.Model(str(tmp_path / "missing.gguf"))
    assert isinstance(e.value, adak.AdakError)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf" * 8)
    with pytest.raises(ValueError):
        adak.Model(str(junk))
    with tiny_model.session(n_ctx=16) as s:
        with pytest.raises(ValueError):
            s.set("top_p", 2.0)
        with pytest.raises(adak.ContextFullError):
            s.evaluate([1] * 17)
        with pytest.raises(ValueError):
            s.truncate(5)


def test_numbers_are_type_checked(tiny_model):
    with tiny_model.session(n_ctx=16) as s:
        for bad in ("0.5", True, "x"):
            with pytest.raises(TypeError):
                s.set_budget(bad)
        with pytest.raises(TypeError):
            s.set("temperature", "hot")
        with pytest.raises(TypeError):
            s.set_logit_bias({1: "up"})
    with pytest.raises(TypeError) as e:
        tiny_model.session(n_ctx="big")
    assert isinstance(e.value, adak.AdakError)


def test_get_and_set_cover_every_key_and_floats_come_back_as_set(tiny_model):
    with tiny_model.session(n_ctx=16) as s:
        assert s.get("flops_budget") is None
        s.set_budget(0.6)
        assert s.budget == 0.6 and s.get("flops_budget") == 0.6
        s.set("temperature", 0.7)
        assert s.get("temperature") == 0.7
        s.set("routing.p", 0.3)
        assert s.get("routing.p") == 0.3 and s.get("p") == 0.3
        s.set("policy", "top_p")
        assert s.get("routing") == "top_p"
        s.set("k_min", 2)
        assert s.get("routing.k_min") == 2
        for key in ("position", "n_ctx", "n_threads", "n_batch", "logit_rows", "seed", "top_k", "beta", "tau",
                    "price", "k", "k_max", "min_p", "top_p", "repeat_penalty", "repeat_last_n"):
            s.get(key)
        s.set("flops_budget", None)
        assert s.budget is None


# -- "Missing: state save/load, KV rewind, stop strings, logit bias" --------------------------
def test_state_save_free_load_continue_is_bit_identical(smollm2_model, tmp_path):
    ids = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(FRANCE))
    with smollm2_model.session(n_ctx=256, seed=5) as a:
        first = [t for t, _ in a.generate_tokens(ids, max_tokens=6)]
        rest = [t for t, _ in a.generate_tokens(None, max_tokens=6)]
        want = a.logits.copy()
    b = smollm2_model.session(n_ctx=256, seed=5)
    assert [t for t, _ in b.generate_tokens(ids, max_tokens=6)] == first
    blob = b.save_state()
    b.save_state(tmp_path / "s.bin")
    b.close()
    for source in (blob, tmp_path / "s.bin"):
        with smollm2_model.session(n_ctx=512, seed=99) as c:
            c.load_state(source)
            assert [t for t, _ in c.generate_tokens(None, max_tokens=6)] == rest
            assert np.array_equal(c.logits.view(np.uint32), want.view(np.uint32))
    with smollm2_model.session(n_ctx=256) as d:
        with pytest.raises(adak.FormatError):
            d.load_state(blob[:-5])
        with pytest.raises(FileNotFoundError):
            d.load_state(tmp_path / "nope.bin")


def test_rewind_and_copy(smollm2_model):
    ids = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(FRANCE))
    x = smollm2_model.tokenize(" Paris", add_special=False)
    y = smollm2_model.tokenize(" Lyon is big", add_special=False)
    with smollm2_model.session(n_ctx=256, temperature=0.0) as a, \
            smollm2_model.session(n_ctx=256, temperature=0.0) as fresh:
        a.evaluate(ids)
        a.evaluate(x)
        a.truncate(len(ids))
        assert a.tokens == ids
        a.evaluate(y)
        fresh.evaluate(ids)
        fresh.evaluate(y)
        assert np.array_equal(a.logits.view(np.uint32), fresh.logits.view(np.uint32))
        a.truncate(len(ids))
        a.evaluate(x[:1])
        b = a.copy()
        b.truncate(len(ids))
        b.evaluate(y)
        assert a.tokens == ids + x[:1] and b.tokens == ids + y
        assert np.array_equal(b.logits.view(np.uint32), fresh.logits.view(np.uint32))
        b.close()


def test_logit_bias_and_logits_processor(smollm2_model):
    ids = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(FRANCE))
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        first = next(s.generate_tokens(ids, max_tokens=1))[0]
        s.reset()
        s.set_logit_bias({first: float("-inf")})
        assert next(s.generate_tokens(ids, max_tokens=1))[0] != first
        s.set_logit_bias({})
        s.reset()
        digits = [smollm2_model.tokenize(str(d), add_special=False)[0] for d in range(10)]
        mask = np.full(smollm2_model.n_vocab, -np.inf, dtype=np.float32)
        mask[digits] = 0

        def only_digits(row):
            row += mask

        s.set_logits_processor(only_digits)
        got = [t for t, _ in s.generate_tokens(ids, max_tokens=8)]
        assert len(got) == 8 and set(got) <= set(digits)
        s.set_logits_processor(None)


# -- "A prompt that starts with '-' ... no -f, no stdin, no --version; --allocator ignored" ----
def test_cli_prompt_starting_with_dash(tmp_path):
    r = _run("generate", "-m", str(FIXTURES / "models" / "tiny-mixtral.f32.gguf"), "-p", "- item one", "-n", "3",
             "--temp", "0")
    assert r.returncode == 0, r.stderr


def test_cli_prompt_from_file_and_stdin(tmp_path):
    model = str(FIXTURES / "models" / "tiny-mixtral.f32.gguf")
    f = tmp_path / "prompt.txt"
    f.write_text("Once upon a time")
    a = _run("generate", "-m", model, "-f", str(f), "-n", "4", "--temp", "0")
    b = _run("generate", "-m", model, "-p", "-", "-n", "4", "--temp", "0", stdin="Once upon a time")
    c = _run("generate", "-m", model, "-p", "Once upon a time", "-n", "4", "--temp", "0")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout == c.stdout


def test_cli_version():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.strip() == adak.version()


def test_cli_budget_minus_one_is_a_value_error():
    r = _run("generate", "-m", str(FIXTURES / "models" / "tiny-mixtral.f32.gguf"), "-p", "x", "--budget", "-1")
    assert r.returncode != 0 and "Missing value" not in r.stderr and "budget" in r.stderr


def test_cli_allocator_implies_adak_and_adak_needs_an_allocator():
    model = str(FIXTURES / "models" / "tiny-mixtral.f32.gguf")
    r = _run("generate", "-m", model, "-p", "x", "-n", "2", "--allocator", "identity", "--stats")
    assert r.returncode == 0, r.stderr
    r2 = _run("generate", "-m", model, "-p", "x", "-n", "2", "--routing", "adak")
    assert r2.returncode != 0 and "allocator" in r2.stderr
    r3 = _run("generate", "-m", model, "-p", "x", "-n", "2", "--routing", "topk", "--allocator", "identity")
    assert r3.returncode != 0 and "allocator" in r3.stderr


def test_cli_notice_when_budget_is_below_k_min():
    model = str(FIXTURES / "models" / "tiny-mixtral.f32.gguf")
    r = _run("generate", "-m", model, "-p", "x", "-n", "2", "--routing", "top_p", "--k-min", "2", "--budget", "0.5")
    assert r.returncode == 0, r.stderr
    assert "below what --k-min 2 allows" in r.stderr


def test_cli_verbose_says_why_generation_stopped():
    r = _run("generate", "-m", str(FIXTURES / "models" / "tiny-mixtral.f32.gguf"), "-p", "x", "-n", "3",
             "--temp", "0", "--verbose")
    assert r.returncode == 0 and "stopped: max_tokens" in r.stderr


def test_cli_chat_answers_and_reuses_the_cache():
    if not DEMO.exists():
        pytest.skip("demo model not fetched")
    r = _run("chat", "-m", str(DEMO), "--temp", "0", "--system", "You are a helpful assistant.", "--verbose",
             "-n", "48", stdin="What is the capital of France?\nAnd of Germany?\n/stats\n")
    assert r.returncode == 0, r.stderr
    print(r.stdout, r.stderr)
    assert "Paris" in r.stdout.splitlines()[0]
    turns = [tuple(map(int, m)) for m in re.findall(r"evaluated (\d+) new tokens, reused (\d+)", r.stderr)]
    assert len(turns) == 2 and turns[1][1] > turns[0][0] and turns[1][0] < 20


# -- "Packaging: adak.hpp not installed; un-normalised .pc paths; pip writes into the tree" -----
def _prefix() -> Path:
    lib = os.environ.get("ADAK_LIB")
    if not lib:
        pytest.skip("not run against an installed prefix")
    return Path(lib).parent


def test_install_has_adak_hpp_and_normalised_pc_paths():
    prefix = _prefix()
    assert (prefix / "include" / "adak.hpp").exists()
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    for flag in ("--cflags", "--libs"):
        out = subprocess.run(["pkg-config", flag, "adak"], capture_output=True, text=True, env=env).stdout
        assert ".." not in out and "/usr/lib/llvm-19" not in out, out


def test_pip_wheel_does_not_write_into_the_source_tree(tmp_path):
    src = REPO / "python"
    before = {p for p in src.rglob("*")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(src)],
                   check=True, capture_output=True)
    after = {p for p in src.rglob("*")}
    assert after == before, sorted(str(p) for p in after - before)


# -- "Missing: constrained (grammar / JSON schema) output" ------------------------------------
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "role": {"enum": ["engineer", "teacher", "farmer"]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 12},
                           "zip": {"type": "integer", "minimum": 10000, "maximum": 99999}},
            "required": ["city", "zip"], "additionalProperties": False,
        },
        # an integer: a JSON number's digits are unbounded, so max_tokens could cut one short
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["name", "age", "role", "address", "score"],
    "additionalProperties": False,
}


def test_json_schema_constrained_generation(smollm2_model):
    structured = pytest.importorskip("adak.structured")
    jsonschema = pytest.importorskip("jsonschema")
    grammar = structured.json_schema(SCHEMA)
    prompt = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(
        [{"role": "user", "content": "Describe a person as JSON with name, age, role, address and score."}]))
    valid = 0
    for seed in range(20):
        with smollm2_model.session(n_ctx=512, seed=seed, temperature=0.8) as s:
            text = structured.generate(s, prompt, grammar, max_tokens=200)
            assert s.stop_reason == "end_of_generation", text
        jsonschema.validate(json.loads(text), SCHEMA)
        valid += 1
    print(f"{valid}/20 generations parse and validate; last: {text}")
    assert valid == 20


def test_regex_choice_constraint(smollm2_model):
    structured = pytest.importorskip("adak.structured")
    prompt = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(
        [{"role": "user", "content": "Is Paris in France? Answer yes or no."}]))
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        assert structured.generate(s, prompt, structured.regex("(yes|no)"), max_tokens=8) in ("yes", "no")


def test_cli_generate_instruct_question_answers_with_chat():
    if not DEMO.exists():
        pytest.skip("demo model not fetched")
    plain = _run("generate", "-m", str(DEMO), "-p", "What is the capital of France?", "--temp", "0", "-n", "16")
    assert plain.returncode == 0
    if not plain.stdout.strip():  # the trap: nothing printed, and nothing said
        assert "--chat" in plain.stderr
    r = _run("generate", "-m", str(DEMO), "--chat", "--system", "You are a helpful assistant.",
             "-p", "What is the capital of France?", "--temp", "0", "-n", "24", "--verbose")
    assert r.returncode == 0 and "Paris" in r.stdout, r.stdout + r.stderr
    assert "stopped: end_of_generation" in r.stderr
