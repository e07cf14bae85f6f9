"""Session.set_regex (adak_session_set_regex): answers match the pattern as a whole, checked
with Python's own `re`; malformed patterns raise ValueError, unsupported features UnsupportedError."""

import re

import pytest

import adak

TINY_CASES = [r"[0-9]{3}-[a-c]+(x|yz)?", r"(?:ab|cd)*e\.", r"\d{1,2}:\d\d (am|pm)", r"[^a-z\n\x00]{2,4}",
              r"(é|ü|日本)+!"]


def _answer(session, prompt, max_tokens):
    return b"".join(piece for _, piece in session.generate_tokens(prompt, max_tokens=max_tokens)).decode()


@pytest.mark.parametrize("pattern", TINY_CASES)
def test_random_answers_match_the_pattern(tiny_model, pattern):
    for seed in range(1, 6):
        with tiny_model.session(n_ctx=128, seed=seed, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0) as s:
            s.set_regex(pattern)
            text = _answer(s, [72, 105, 33], 48)
            assert s.stop_reason == "end_of_generation", text
            assert re.fullmatch(pattern, text), (pattern, text)


def test_regex_on_smollm2(smollm2_model):
    prompt = smollm2_model.tokenize_chat(smollm2_model.apply_chat_template(
        [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "What is the capital of France? Answer with one city."}]))
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        s.set_regex(r"(The answer is )?[A-Z][a-z]+( \(France\))?\.")
        text = _answer(s, prompt, 24)
        assert re.fullmatch(r"(The answer is )?[A-Z][a-z]+( \(France\))?\.", text) and "Paris" in text, text
        s.set_regex(None)
        s.set_choices(["yes", "no"])
        s.set_regex(r"\d{4}")  # replaces the choices
        text = _answer(s, prompt, 16)
        assert re.fullmatch(r"\d{4}", text) and s.stop_reason == "end_of_generation", text


@pytest.mark.parametrize("pattern", ["(ab", "ab)", "[z-a]", "a{3,2}", "*a", "\\q", "[^\\x00-\\u{10FFFF}]", "a\0b"])
def test_malformed_patterns_are_value_errors(tiny_model, pattern):
    with tiny_model.session(n_ctx=32) as s:
        with pytest.raises(adak.InvalidArgumentError):
            s.set_regex(pattern)


@pytest.mark.parametrize("pattern", ["a(?=b)", "(a)\\1", "\\bword", "\\p{L}+", "(?i)abc"])
def test_unsupported_features_say_so(tiny_model, pattern):
    with tiny_model.session(n_ctx=32) as s:
        with pytest.raises(adak.UnsupportedError, match="not supported"):
            s.set_regex(pattern)
        with pytest.raises(ValueError):
            s.set_regex(pattern)


def test_pattern_type_is_checked(tiny_model):
    with tiny_model.session(n_ctx=32) as s:
        with pytest.raises(TypeError):
            s.set_regex(5)
        s.set_regex(b"[ab]+")
        s.set_regex(None)
