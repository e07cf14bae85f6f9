"""adak.quantize against llama.cpp's quantizer: the whole-file SHA-256 recorded by
Tests/Fixtures/tools/make_quant_refs.py (Tests/Fixtures/quant/<base>.json)."""

import hashlib
import json

import pytest

import adak
from conftest import DEMO, FIXTURES

MOE = FIXTURES / "models" / "moe256.f16.gguf"


def refs(base):
    return json.loads((FIXTURES / "quant" / f"{base}.json").read_text())


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("qtype", ["Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_NL", "IQ4_XS",
                                   "MXFP4_MOE", "Q8_0", "Q4_0", "Q5_1"])
def test_moe256_same_bytes_as_llama_cpp(tmp_path, qtype):
    out = tmp_path / f"moe256.{qtype}.gguf"
    assert adak.quantize(str(MOE), str(out), qtype, threads=2) == str(out)
    assert sha256(out) == refs("moe256")["types"][qtype]["file_sha256"]


def test_smollm2_q4_k_m_same_bytes_as_llama_cpp(tmp_path):
    if not DEMO.exists():
        pytest.skip(f"demo model not fetched ({DEMO}); run `make model`")
    out = tmp_path / "smollm2.Q4_K_M.gguf"
    adak.quantize(str(DEMO), str(out), "q4_k_m")
    assert sha256(out) == refs("SmolLM2-135M-Instruct")["types"]["Q4_K_M"]["file_sha256"]


def test_errors(tmp_path):
    out = tmp_path / "out.gguf"
    with pytest.raises(adak.AdakError) as e:
        adak.quantize(str(MOE), str(out), "Q7_K")
    assert e.value.status == -1 and "Q4_K_M" in e.value.message
    with pytest.raises(adak.AdakError) as e:
        adak.quantize(str(tmp_path / "missing.gguf"), str(out), "Q8_0")
    assert e.value.status == -2
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(MOE.read_bytes()[:100000])
    with pytest.raises(adak.AdakError) as e:
        adak.quantize(str(bad), str(out), "Q8_0")
    assert e.value.status == -3
    with pytest.raises(adak.AdakError) as e:
        adak.quantize(str(FIXTURES / "models" / "tiny-mixtral.q8_0.gguf"), str(out), "Q4_0", allow_requantize=False)
    assert e.value.status == -4 and "requantizing" in e.value.message
    assert not out.exists()
    assert set(adak.QUANT_TYPES) >= {"Q8_0", "Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "MXFP4_MOE"}
