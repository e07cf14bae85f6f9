"""The demo model (SmolLM2-135M-Instruct, real weights) through the binding, against
llama.cpp's reference outputs in Tests/Fixtures/smollm2. Skipped when not fetched."""

import adak


def test_prompt_ids_match_llama_cpp(smollm2_model, smollm2_cases):
    for case in smollm2_cases:
        ids = smollm2_model.tokenize(case["prompt"], add_special=case["add_bos"],
                                     parse_special=case["special"])
        assert ids == case["ids"], case["name"]


def test_greedy_start_matches_llama_cpp(smollm2_model, smollm2_cases):
    # The first tokens have clear margins; later ones may be near-ties on which Q4_1
    # implementations legitimately differ (the engine's own tests compare further).
    case = next(c for c in smollm2_cases if c["name"] == "capital")
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        got = [t for t, _ in s.generate_tokens(case["ids"], max_tokens=4)]
    assert got == case["greedy_ids"][:4]


def test_generate_equals_evaluate_sample_loop(smollm2_model, smollm2_cases):
    case = next(c for c in smollm2_cases if c["name"] == "story")
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        streamed = [t for t, _ in s.generate_tokens(case["ids"], max_tokens=12)]
    manual = []
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        s.evaluate(case["ids"])
        for _ in range(12):
            t = s.sample()
            if smollm2_model.is_eog(t):
                break
            manual.append(t)
            s.evaluate([t])
    assert streamed == manual


def test_generate_text(smollm2_model):
    with smollm2_model.session(n_ctx=256, temperature=0.0) as s:
        text = "".join(s.generate("The capital of France is", max_tokens=4))
    assert "Paris" in text
    assert isinstance(adak.Session, type)
