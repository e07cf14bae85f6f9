"""The demo model (SmolLM2-135M-Instruct, real weights) through the binding, against
llama.cpp's reference outputs in ../shared/fixtures/smollm2. Skipped when not fetched."""

import adak


def test_prompt_ids_match_llama_cpp(smollm2_model, smollm2_cases):
    for case in smollm2_cases:
        ids = smollm2_model.tokenize(case["prompt"], add_special=case["add_bos"],
                                     parse_special=case["special"])
        assert ids == case["ids"], case["name"]


def test_greedy_start_matches_llama_cpp(smollm2_model, smollm2_cases):
    case = next(c for c in smollm2_cases if c["name"] == "capital")
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        got = [t for t, _ in s.generate_tokens(case["ids"], max_tokens=8)]
    assert got == case["greedy_ids"][:8]


def test_generate_text(smollm2_model):
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        text = "".join(s.generate("The capital of France is", max_tokens=4))
    assert "Paris" in text
    assert isinstance(adak.Session, type)
