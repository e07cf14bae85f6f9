"""Tests of the ctypes binding against the real library and the tiny fixture model."""

import gc
import os
import threading

import numpy as np
import pytest

import adak
from adak import _lib


def test_version_matches_binding():
    assert adak.version_number() // 10000 == _lib.API_MAJOR
    major, minor, patch = (int(x) for x in adak.version().split("."))
    assert adak.version_number() == major * 10000 + minor * 100 + patch
    assert os.path.exists(adak.library_path) or adak.library_path.startswith("libadak")


def test_model_info(tiny_model):
    info = tiny_model.info
    assert info["arch"] == tiny_model.arch and info["arch"]
    for key in ("n_layer", "n_embd", "n_vocab", "n_ctx_train"):
        assert info[key] > 0
    assert info["n_expert"] >= info["n_expert_used"] >= 0
    assert tiny_model.n_vocab == info["n_vocab"]
    assert "tiny" in repr(tiny_model) or info["arch"] in repr(tiny_model)


def test_tokenize_detokenize(tiny_model):
    text = "Hello world, hello adak."
    ids = tiny_model.tokenize(text, add_special=False)
    assert ids and all(0 <= t < tiny_model.n_vocab for t in ids)
    assert tiny_model.tokenize("", add_special=False) == []
    back = tiny_model.detokenize(ids)
    assert back.strip() == text.strip()
    pieces = b"".join(tiny_model.token_to_piece(t) for t in ids)
    assert pieces.decode("utf-8", "replace").strip() == text.strip()
    with_special = tiny_model.tokenize(text, add_special=True)
    if tiny_model.bos is not None and tiny_model.get_int("add_bos"):
        assert with_special[0] == tiny_model.bos


def test_errors_carry_the_library_message(tiny_model, tmp_path):
    with pytest.raises(adak.AdakError) as e:
        adak.Model(str(tmp_path / "missing.gguf"))
    assert e.value.status == _lib.ERR_IO
    assert "missing.gguf" in e.value.message
    assert e.value.status_name == "input/output error"

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"definitely not a gguf file" * 4)
    with pytest.raises(adak.AdakError) as e:
        adak.Model(str(junk))
    assert e.value.status == _lib.ERR_FORMAT

    with pytest.raises(adak.AdakError) as e:
        tiny_model.token_to_piece(tiny_model.n_vocab)
    assert e.value.status == _lib.ERR_INVALID_ARGUMENT and "token" in e.value.message
    with pytest.raises(adak.AdakError):
        tiny_model.detokenize([-1])
    with pytest.raises(adak.AdakError) as e:
        tiny_model.get_int("no_such_key")
    assert "no_such_key" in e.value.message

    with tiny_model.session(n_ctx=32) as s:
        with pytest.raises(adak.AdakError) as e:
            s.set("temperature", float("nan"))
        assert "temperature" in e.value.message
        with pytest.raises(adak.AdakError):
            s.set("top_p", 2.0)
        with pytest.raises(adak.AdakError):
            s.set("bogus", 1)
        with pytest.raises(adak.AdakError) as e:
            s.evaluate([0, tiny_model.n_vocab])
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT
        with pytest.raises(adak.AdakError) as e:
            s.sample()
        assert "evaluated" in e.value.message
        with pytest.raises(adak.AdakError) as e:
            s.evaluate([1] * 33)
        assert e.value.status == _lib.ERR_CONTEXT_FULL
        assert s.position == 0
    with pytest.raises(adak.AdakError) as e:
        s.position
    assert "closed" in e.value.message


def test_settings_roundtrip(tiny_model):
    with tiny_model.session(n_ctx=64, seed=7, temperature=0.5, top_k=3) as s:
        assert s.get("temperature") == pytest.approx(0.5)
        assert s.get("top_k") == 3
        assert s.get("seed") == 7
        assert s.n_ctx == 64
        s.set("min_p", 0.0)
        assert s.get("min_p") == 0.0
        with pytest.raises(adak.AdakError):
            s.set("position", 3)


def test_logits_are_a_view(tiny_model):
    ids = tiny_model.tokenize("The quick brown fox", add_special=True)
    with tiny_model.session(n_ctx=64, temperature=0.0) as s:
        s.evaluate(ids, all_logits=True)
        logits = s.logits
        assert logits.shape == (len(ids), tiny_model.n_vocab)
        assert logits.dtype == np.float32
        assert not logits.flags.owndata and not logits.flags.writeable
        assert np.isfinite(logits).all()
        assert s.sample() == int(np.argmax(logits[-1]))
        assert s.get("logit_rows") == len(ids)
        assert s.position == len(ids)


def test_generate_greedy_is_deterministic(tiny_model):
    prompt = tiny_model.tokenize("Once upon a time", add_special=True)
    runs = []
    for _ in range(2):
        with tiny_model.session(n_ctx=128, temperature=0.0) as s:
            pairs = list(s.generate_tokens(prompt, max_tokens=12))
            runs.append([t for t, _ in pairs])
            assert len(pairs) <= 12
            assert all(not tiny_model.is_eog(t) for t, _ in pairs)
    assert runs[0] == runs[1]


def test_generate_text_pieces_and_continue(tiny_model):
    with tiny_model.session(n_ctx=128, temperature=0.0) as s:
        first = list(s.generate("Hello", max_tokens=5))
        assert all(isinstance(p, str) for p in first)
        before = s.position
        more = list(s.generate(None, max_tokens=3))
        assert all(isinstance(p, str) for p in more)
        assert s.position >= before
        s.reset()
        assert s.position == 0


def test_generate_stops_at_full_context(tiny_model):
    prompt = tiny_model.tokenize("a b c", add_special=False)
    with tiny_model.session(n_ctx=len(prompt) + 4, temperature=0.0) as s:
        out = list(s.generate_tokens(prompt, max_tokens=50))
        assert len(out) <= 5
        assert s.position <= s.n_ctx


def test_sessions_on_threads(tiny_model):
    prompt = tiny_model.tokenize("threads", add_special=True)
    results = {}

    def work(i):
        with tiny_model.session(n_ctx=64, n_threads=1, temperature=0.0) as s:
            results[i] = [t for t, _ in s.generate_tokens(prompt, max_tokens=6)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and results[0] == results[1] == results[2]


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_no_leak_over_1000_create_free_cycles(tiny_path):
    model = adak.Model(tiny_path)
    token = model.tokenize("x", add_special=False)[:1] or [0]

    def cycle(n):
        for _ in range(n):
            with model.session(n_ctx=16, n_threads=1) as s:
                s.evaluate(token)

    cycle(50)  # warm up allocator pools
    gc.collect()
    before = _rss_kib()
    cycle(1000)
    gc.collect()
    grown = _rss_kib() - before
    model.close()
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 1000 session create/free cycles"

    gc.collect()
    before = _rss_kib()
    for _ in range(200):
        adak.Model(tiny_path).close()
    gc.collect()
    grown = _rss_kib() - before
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 200 model load/free cycles"


def test_session_outlives_closed_model(tiny_path):
    model = adak.Model(tiny_path)
    ids = model.tokenize("hi", add_special=True)
    s = model.session(n_ctx=32, temperature=0.0)
    model.close()
    s.evaluate(ids)
    assert s.position == len(ids)
    s.close()
    s.close()
    model.close()


def test_major_version_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(_lib, "API_MAJOR", _lib.API_MAJOR + 1)
    with pytest.raises(ImportError, match="major version"):
        _lib.load_library()


def test_missing_library_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAK_LIB", str(tmp_path / "nowhere" / "libadak.so.0"))
    with pytest.raises(ImportError, match="ADAK_LIB"):
        _lib.load_library()


def test_q4_0_repacking_is_a_load_option():
    """Q4_0 matrices are repacked into 8-row groups by default; repack_q4_0=False keeps the
    file's layout. Both give llama.cpp's logits within its tolerance, not bit-identical ones."""
    from conftest import FIXTURES
    path = FIXTURES / "models" / "tiny-mixtral.q4_0.gguf"
    ref = np.load(FIXTURES / "reference" / "tiny-mixtral.llamacpp.q4_0.logits.npy")
    ref32 = np.load(FIXTURES / "reference" / "tiny-mixtral.llamacpp.f32.logits.npy")
    ids = np.load(FIXTURES / "reference" / "tiny-mixtral.input_ids.npy").astype(np.int64).ravel().tolist()
    runs = []
    for repack in (True, False):
        with adak.Model(str(path), repack_q4_0=repack) as m, m.session(n_ctx=128) as s:
            s.evaluate(ids, all_logits=True)
            runs.append(np.array(s.logits, copy=True).reshape(ref.shape))
    for got in runs:
        assert np.abs(got - ref).mean() <= np.abs(ref - ref32).mean() / 4
    assert not np.array_equal(runs[0], runs[1])


def test_f16_kv_cache(tiny_model):
    """kv_type="f16" halves the cache and stays close to the f32 cache's logits."""
    ids = tiny_model.tokenize("The quick brown fox jumps over the lazy dog", add_special=True)
    out = {}
    for kv in ("f32", "f16"):
        with tiny_model.session(n_ctx=64, kv_type=kv) as s:
            s.evaluate(ids, all_logits=True)
            out[kv] = np.array(s.logits, copy=True)
    d = np.abs(out["f32"] - out["f16"])
    assert 0 < d.max() < 5e-3
    with pytest.raises(adak.AdakError):
        tiny_model.session(kv_type="q8_0")
