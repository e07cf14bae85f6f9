

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
        "score": {"type": "number", "minimum": 0, "maximum": 1},
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
            text = structured.generate(s, prompt, grammar, max_tokens=160)
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
