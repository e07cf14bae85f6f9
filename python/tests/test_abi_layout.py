"""The binding's ctypes structs against the C compiler's layout of include/adak.h (size, field
names in order, offsets and sizes), as scripts/abi-layout.py reports it: a field added to the
header and not to python/adak/_lib.py (or vice versa) fails here."""

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adak import _lib

REPO = Path(__file__).resolve().parents[2]

STRUCTS = {
    "adak_model_params": _lib.ModelParams,
    "adak_session_params": _lib.SessionParams,
    "adak_sampling_params": _lib.SamplingParams,
    "adak_routing_params": _lib.RoutingParams,
    "adak_stats": _lib.Stats,
    "adak_quantize_params": _lib.QuantizeParams,
    "adak_chat_message": _lib.ChatMessage,
}


@pytest.fixture(scope="module")
def c_layouts():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "abi-layout.py"), str(REPO / "include" / "adak.h")],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_every_header_struct_has_a_ctypes_twin(c_layouts):
    assert set(c_layouts) == set(STRUCTS)


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_ctypes_layout_equals_the_c_compilers(c_layouts, name):
    cls, c = STRUCTS[name], c_layouts[name]
    assert ctypes.sizeof(cls) == c["size"]
    py = [(f, getattr(cls, f).offset, getattr(cls, f).size) for f, _ in cls._fields_]
    assert py == [tuple(row) for row in c["fields"]]


def _header_constants():
    text = (REPO / "include" / "adak.h").read_text()
    import re
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"\bADAK_([A-Z0-9_]+)\s*=\s*(-?\d+)", text)}


def test_binding_constants_equal_the_headers():
    h = _header_constants()
    flat = {name: getattr(_lib, name) for name in dir(_lib) if name.isupper() and isinstance(getattr(_lib, name), int)}
    for name, value in flat.items():
        if name in h:
            assert value == h[name], name
    assert {k: h[f"ROUTING_{k.upper()}"] for k in _lib.ROUTING_POLICIES} == _lib.ROUTING_POLICIES
    assert {k: h[f"BUDGET_{k.upper()}"] for k in _lib.BUDGET_MODES} == _lib.BUDGET_MODES
    assert {k: h[f"KV_{k.upper()}"] for k in _lib.KV_TYPES} == _lib.KV_TYPES
    assert {k: h[f"WEIGHT_{k.upper()}"] for k in _lib.WEIGHT_TYPES} == _lib.WEIGHT_TYPES
    assert {k: v for k, v in h.items() if k.startswith("ERR_")} == {k: v for k, v in flat.items() if k.startswith("ERR_")}


def test_binding_pyproject_version_is_the_headers():
    text = (REPO / "include" / "adak.h").read_text()
    import re
    header = ".".join(re.search(rf"#define ADAK_VERSION_{p} (\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH"))
    assert f'version = "{header}"' in (REPO / "python" / "pyproject.toml").read_text()
