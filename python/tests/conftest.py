"""Fixtures for the binding's tests: the tiny fixture model from Tests/Fixtures (committed with
the repository) and the SmolLM2 demo model when `make model` fetched it."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("ADAK_FIXTURES", REPO / "Tests" / "Fixtures"))
CACHE = Path(os.environ.get("ADAK_CACHE", REPO / ".cache"))
DEMO = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def tiny_path() -> str:
    path = FIXTURES / "models" / "tiny-mixtral.f32.gguf"
    if not path.exists():
        pytest.fail(f"fixture model {path} is missing")
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tiny_path):
    import adak

    with adak.Model(tiny_path) as model:
        yield model


@pytest.fixture(scope="session")
def smollm2_model():
    import adak

    if not DEMO.exists():
        pytest.skip(f"demo model not fetched ({DEMO}); run `make model`")
    with adak.Model(str(DEMO)) as model:
        yield model


@pytest.fixture(scope="session")
def smollm2_cases():
    path = FIXTURES / "smollm2" / "cases.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
