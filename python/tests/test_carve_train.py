"""Carving and allocator training through the binding (C API 0.3): adak.carve on the SmolLM2
demo model restricted to one layer and a small calibration, adak.train_allocator on the tiny
MoE fixture for a few updates; progress reports, cancellation, resume and bad settings."""

import math
import os

import pytest

import adak
from adak import _lib

from conftest import DEMO, FIXTURES

TEXT = (
    "The river runs past the old mill and under the stone bridge, where children throw\n"
    "pebbles into the water and count the rings. In the evening the light turns gold and\n"
    "the swallows fly low over the meadow, catching insects above the tall grass.\n"
    "A farmer walks his dog along the path, and the dog chases a rabbit into the hedge.\n"
) * 2

SMALL = dict(window=16, rollout_tokens=30, minibatch=16, epochs=2, threads=2, seed=1, checkpoint_every=0)


def test_version_is_0_3_or_later():
    assert adak.version_number() >= 300


def test_train_allocator_reports_progress_and_returns_an_allocator(tiny_model, tmp_path):
    out = tmp_path / "alloc.gguf"
    reports = []
    alloc = adak.train_allocator(tiny_model, str(out), text=TEXT, lambda_=0.5, updates=2,
                                 progress=reports.append, **SMALL)
    with alloc:
        assert isinstance(alloc, adak.Allocator)
        assert [r.update for r in reports] == [1, 2] and all(r.updates == 2 for r in reports)
        n_moe = len(tiny_model.moe_layers)
        for r in reports:
            assert r.tokens > 0 and 0 < r.cost_fraction and math.isfinite(r.mean_reward)
            assert math.isfinite(r.greedy_log_prob)  # greedy baseline by default
            assert r.mean_k_per_layer and all(1 <= k <= tiny_model.get_int("n_expert") for k in r.mean_k_per_layer)
            assert len(r.mean_k_per_layer) == n_moe
        with tiny_model.session() as s:
            s.set_allocator(alloc)
            s.set_routing("adak")
            s.evaluate(tiny_model.tokenize("Hello there"))
    assert os.path.exists(str(out) + ".optim")


def test_train_from_tokens_and_path_result(tiny_model, tmp_path):
    tokens = tiny_model.tokenize(TEXT)
    path = adak.train_allocator(tiny_model, str(tmp_path / "a.gguf"), tokens=tokens, updates=1,
                                baseline="mean", load=False, **SMALL)
    assert path == str(tmp_path / "a.gguf") and os.path.exists(path)


def test_train_cancel_then_resume(tiny_model, tmp_path):
    out = str(tmp_path / "alloc.gguf")
    with pytest.raises(adak.AdakError) as e:
        adak.train_allocator(tiny_model, out, text=TEXT, updates=3, progress=lambda r: False, **SMALL)
    assert e.value.status == _lib.ERR_CANCELLED
    assert os.path.exists(out)
    seen = []
    with adak.train_allocator(tiny_model, out, text=TEXT, updates=3, resume=True,
                              progress=lambda r: seen.append(r.update), **SMALL):
        pass
    assert seen == [2, 3]


def test_train_progress_exception_is_reraised(tiny_model, tmp_path):
    def boom(_report):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        adak.train_allocator(tiny_model, str(tmp_path / "a.gguf"), text=TEXT, updates=2, progress=boom, **SMALL)


@pytest.mark.parametrize("bad", [
    dict(lambda_=float("nan")), dict(clip=1.5), dict(window=1), dict(k_max=1000), dict(baseline="value"),
    dict(gamma=0.9), dict(epochs=1.5), dict(seed=-1),
])
def test_bad_training_settings_raise(tiny_model, tmp_path, bad):
    settings = dict(SMALL, **{k: v for k, v in bad.items() if k != "lambda_"})
    with pytest.raises(adak.AdakError) as e:
        adak.train_allocator(tiny_model, str(tmp_path / "a.gguf"), text=TEXT,
                             lambda_=bad.get("lambda_"), updates=1, **settings)
    assert e.value.status == _lib.ERR_INVALID_ARGUMENT
    assert not (tmp_path / "a.gguf").exists()


def test_training_data_must_be_text_or_tokens(tiny_model, tmp_path):
    with pytest.raises(adak.AdakError):
        adak.train_allocator(tiny_model, str(tmp_path / "a.gguf"))
    with pytest.raises(adak.AdakError) as e:
        adak.train_allocator(tiny_model, str(tmp_path / "a.gguf"), tokens=[1, 2, 3], **SMALL)
    assert e.value.status == _lib.ERR_INVALID_ARGUMENT and "window" in e.value.message


def test_carve_refuses_a_moe_and_bad_settings(tiny_path, tmp_path):
    out = tmp_path / "moe.gguf"
    with pytest.raises(adak.AdakError) as e:
        adak.carve(tiny_path, str(out), calib_text=TEXT)
    assert e.value.status == _lib.ERR_UNSUPPORTED
    with pytest.raises(adak.AdakError) as e:
        adak.carve(tiny_path, str(out))  # no calibration text
    assert e.value.status == _lib.ERR_INVALID_ARGUMENT and "calib" in e.value.message
    for bad in (dict(experts=1), dict(shared_fraction=float("nan")), dict(expert_type="q5_k"),
                dict(layers="1,x"), dict(kmeans=3)):
        with pytest.raises(adak.AdakError) as e:
            adak.carve(tiny_path, str(out), calib_text=TEXT, **bad)
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT
    assert not out.exists()


@pytest.fixture(scope="module")
def dense_path():
    if not DEMO.exists():
        pytest.skip(f"demo model not fetched ({DEMO}); run `make model`")
    return str(DEMO)


CARVE = dict(experts=8, top_k=2, layers=[0], calib_tokens=64, window=32, kmeans_iterations=3, threads=2)


def test_carve_one_layer_of_smollm2(dense_path, tmp_path):
    out, plan = tmp_path / "carved.gguf", tmp_path / "plan.gguf"
    stages = []
    result = adak.carve(dense_path, str(out), calib_path=str(FIXTURES / "text" / "train.txt"),
                        plan_out=str(plan), progress=lambda s, d, t: stages.append((s, d, t)), **CARVE)
    assert result == str(out) and out.exists() and plan.exists()
    assert [s for s, _, _ in stages][0] == "calibrating" and {s for s, _, _ in stages} == {
        "calibrating", "clustering", "writing"}
    assert all(1 <= d <= t for _, d, t in stages)
    with adak.Model(str(out)) as m:
        assert m.get_int("n_expert") == 8 and m.get_int("n_expert_used") == 2
        with m.session(temperature=0) as s:
            s.evaluate(m.tokenize("The capital of France is"))
    # rebuilt from the plan alone
    again = tmp_path / "again.gguf"
    adak.carve(dense_path, str(again), plan_in=str(plan))
    assert again.exists()


def test_carve_cancel_writes_nothing(dense_path, tmp_path):
    out = tmp_path / "carved.gguf"
    with pytest.raises(adak.AdakError) as e:
        adak.carve(dense_path, str(out), calib_text=TEXT * 4, progress=lambda s, d, t: False, **CARVE)
    assert e.value.status == _lib.ERR_CANCELLED
    assert not out.exists()


def test_train_under_the_global_price_with_every_training_key(tiny_model, tmp_path):
    # every key of adak_train_params reaches the C API; budgets may come before lambda
    alloc = adak.train_allocator(tiny_model, str(tmp_path / "g.gguf"), text=TEXT, train_budgets=[0.5, 0.75],
                                 lambda_=0, updates=2, sample_window=1, lambda_memory=0.5, future_discount=0.5,
                                 cost_credit="layer", **SMALL)
    with alloc:
        assert isinstance(alloc, adak.Allocator)
    with pytest.raises(adak.AdakError) as e:  # budgets with a fixed price
        adak.train_allocator(tiny_model, str(tmp_path / "h.gguf"), text=TEXT, train_budgets="0.5", lambda_=0.3,
                             updates=1, **SMALL)
    assert e.value.status == _lib.ERR_INVALID_ARGUMENT
    for bad in ("0.5,x", "0.5,,0.75", "0", "17"):
        with pytest.raises(adak.AdakError):
            adak.train_allocator(tiny_model, str(tmp_path / "i.gguf"), text=TEXT, train_budgets=bad, lambda_=0,
                                 updates=1, **SMALL)
