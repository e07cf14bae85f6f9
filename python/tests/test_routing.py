"""Routing through the binding: policies and knobs, the FLOPs budget, statistics, allocators,
errors, and the log and progress callbacks, on the tiny MoE fixture models."""

import threading

import pytest

import adak
from adak import _lib


def decode(session, n_tokens: int, prompt: str = "Once upon a time") -> int:
    """Samples ``n_tokens`` tokens one at a time (continuing across end-of-generation tokens,
    which a tiny random model emits now and then) and returns how many were decoded."""
    session.evaluate(session.model.tokenize(prompt))
    done = 0
    while done < n_tokens:
        session.evaluate([session.sample()])
        done += 1
    return done


def test_routing_defaults_and_knobs(tiny_model):
    with tiny_model.session(n_ctx=64) as s:
        r = s.routing
        assert r["policy"] == "topk" and r["k"] == 0 and r["k_min"] == 1 and r["k_max"] == 0
        assert r["p"] == pytest.approx(0.5)
        s.set_routing("top_p", p=0.8, k_max=4)
        r = s.routing
        assert (r["policy"], r["k_max"]) == ("top_p", 4) and r["p"] == pytest.approx(0.8)
        s.set_routing(beta=0.25)  # keeps the policy
        assert s.routing["policy"] == "top_p" and s.routing["beta"] == pytest.approx(0.25)
        for policy in ("skip", "entropy", "topk"):
            s.set_routing(policy)
            assert s.routing["policy"] == policy
        assert set(adak.ROUTING_POLICIES) == {"topk", "adak", "top_p", "skip", "entropy"}


@pytest.mark.parametrize("bad", [
    dict(policy="top-p"), dict(policy="adak"), dict(p=float("nan")), dict(p=0.0), dict(p=1.5),
    dict(beta=-0.1), dict(tau=float("inf")), dict(k=0.5), dict(k=10**6), dict(k_min=0),
    dict(k_min=2, k_max=1), dict(policy="top_p", p=0.7, k_max=99),
])
def test_bad_routing_raises_and_changes_nothing(tiny_model, bad):
    with tiny_model.session(n_ctx=64) as s:
        s.set_routing("skip", beta=0.3, k_max=2)
        before = s.routing
        with pytest.raises(adak.AdakError) as e:
            s.set_routing(**bad)
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT and e.value.message
        assert s.routing == before


def test_unknown_policy_names_the_known_ones(tiny_model):
    with tiny_model.session(n_ctx=64) as s, pytest.raises(adak.AdakError) as e:
        s.set_routing("fastest")
    assert "fastest" in e.value.message and "top_p" in e.value.message  # lists the known names


def test_set_routing_is_one_library_call_with_its_message(tiny_model):
    """A refused value is reported by adak_session_set_routing itself (no rollback in Python)."""
    with tiny_model.session(n_ctx=64) as s:
        with pytest.raises(adak.AdakError) as e:
            s.set_routing("top_p", p=0.9, k_min=3, k_max=2)
        assert "adak_session_set_routing" in e.value.message and "k_max" in e.value.message
        assert s.routing["policy"] == "topk"


@pytest.mark.parametrize("bad", [dict(k=True), dict(k="2"), dict(p="0.5"), dict(k=2**40), dict(price="x")])
def test_routing_values_are_type_checked(tiny_model, bad):
    with tiny_model.session(n_ctx=64) as s, pytest.raises(adak.AdakError):
        s.set_routing(**bad)


def test_sampling_is_one_unit(tiny_model):
    with tiny_model.session(n_ctx=64, temperature=0.0, top_k=5) as s:
        d = s.sampling
        assert d["temperature"] == 0.0 and d["top_k"] == 5 and d["top_p"] == pytest.approx(0.95)
        with pytest.raises(adak.AdakError) as e:
            s.set_sampling(top_k=7, top_p=2.0)
        assert "adak_session_set_sampling" in e.value.message
        assert s.sampling == d  # nothing applied
        s.set_sampling(top_k=7, min_p=0.0)
        assert s.get("top_k") == 7 and s.get("min_p") == 0.0


@pytest.mark.parametrize("fraction", [float("nan"), float("inf"), -float("inf"), 0.0, -0.5, 17.0])
def test_bad_budget_raises_and_keeps_the_old_one(tiny_model, fraction):
    with tiny_model.session(n_ctx=64) as s:
        s.set_budget(0.8)
        with pytest.raises(adak.AdakError) as e:
            s.set_budget(fraction)
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT
        assert "adak_session_set_flops_budget" in e.value.message
        assert s.budget == pytest.approx(0.8)
        s.set_budget(None)
        assert s.budget is None


@pytest.mark.parametrize("policy", ["adak", "top_p"])
@pytest.mark.parametrize("target", [0.5, 0.75, 1.0])
def test_budget_is_met_while_decoding(tiny_model, policy, target):
    """Over a few hundred sampled tokens the achieved expert-FLOPs fraction is within a few
    percent of the target."""
    with tiny_model.session(n_ctx=512, temperature=1.0, seed=7) as s:
        if policy == "adak":
            with tiny_model.identity_allocator() as alloc:
                s.set_allocator(alloc)
        s.set_routing(policy, k_max=0 if policy == "adak" else 4)
        s.set_budget(target)
        s.evaluate(tiny_model.tokenize("The"))
        s.reset_stats()  # measure decoding only
        for _ in range(300):
            s.evaluate([s.sample()])
        st = s.stats
    assert st.tokens == 300
    assert st.expert_fraction == pytest.approx(target, abs=0.02 * target + 0.005), st


@pytest.mark.parametrize("mode", ["global", "per_layer"])
def test_budget_mode_round_trips_and_meets_a_prompt_batch(tiny_model, mode):
    """budget_mode is one of the routing settings; either mode meets the budget over a prompt
    batch (global: measured, then solved for the whole model) and then while decoding."""
    with tiny_model.session(n_ctx=1024, temperature=1.0, seed=7) as s:
        with tiny_model.identity_allocator() as alloc:
            s.set_allocator(alloc)
        assert s.routing["budget_mode"] == "global"
        s.set_routing("adak", budget_mode=mode)
        s.set_budget(0.5)
        assert s.routing["budget_mode"] == mode and s.get("budget_mode") == mode
        s.evaluate(tiny_model.tokenize("The quick brown fox jumps over the lazy dog. " * 4))
        assert s.stats.expert_fraction == pytest.approx(0.5, abs=0.01), s.stats
        s.reset_stats()
        for _ in range(300):
            s.evaluate([s.sample()])
        assert s.stats.expert_fraction == pytest.approx(0.5, abs=0.01), s.stats
        with pytest.raises(adak.AdakError) as e:
            s.set_routing(budget_mode="layerwise")
        assert "layerwise" in e.value.message and "per_layer" in e.value.message
        assert s.routing["budget_mode"] == mode


def test_stats_are_consistent(tiny_model):
    with tiny_model.session(n_ctx=256, temperature=0.9, seed=3) as s:
        empty = s.stats
        assert empty.tokens == 0 and empty.expert_fraction == 1.0 and sum(empty.k_histogram) == 0
        s.set_routing("top_p", p=0.6, k_max=4)
        n = decode(s, 40)
        st = s.stats
        n_moe = len(tiny_model.moe_layers)
        assert n_moe == len(st.mean_k_per_layer) == len(st.moe_layers) > 0
        assert st.tokens == n + len(tiny_model.tokenize("Once upon a time"))
        assert st.n_expert == tiny_model.get_int("n_expert") == len(st.k_histogram)
        assert st.k_native == tiny_model.get_int("n_expert_used")
        assert sum(st.k_histogram) == st.tokens * n_moe
        by_hist = sum((i + 1) * c for i, c in enumerate(st.k_histogram)) / (st.tokens * n_moe)
        assert st.mean_k == pytest.approx(by_hist)
        assert st.mean_k == pytest.approx(sum(st.mean_k_per_layer) / n_moe)
        assert st.expert_fraction == pytest.approx(st.mean_k / st.k_native)
        assert st.expert_fraction == pytest.approx(st.expert_flops / st.expert_flops_topk)
        assert st.total_fraction == pytest.approx(st.total_flops / st.total_flops_topk)
        assert st.total_flops > st.expert_flops > 0
        assert all(1 <= k <= 4 for k in st.mean_k_per_layer)
        s.reset_stats()
        assert s.stats.tokens == 0


def test_static_topk_stats(tiny_model):
    with tiny_model.session(n_ctx=64) as s:
        s.evaluate(tiny_model.tokenize("Hello there"))
        st = s.stats
        assert st.mean_k == st.k_native and st.expert_fraction == 1.0 and st.total_fraction == 1.0
        assert st.k_histogram[st.k_native - 1] == sum(st.k_histogram)


def test_identity_allocator_reproduces_topk(tiny_model):
    tokens = tiny_model.tokenize("The quick brown fox")
    with tiny_model.session(n_ctx=64) as a, tiny_model.session(n_ctx=64) as b:
        a.evaluate(tokens)
        with tiny_model.identity_allocator() as alloc:
            b.set_allocator(alloc)
        b.set_routing("adak")  # the allocator handle is closed: the session kept a reference
        b.evaluate(tokens)
        assert (a.logits == b.logits).all()
        assert b.stats.mean_k == a.stats.mean_k


def test_allocator_round_trip_and_refusal(tiny_model, tmp_path):
    path = tmp_path / "identity.gguf"
    with tiny_model.identity_allocator() as alloc:
        alloc.save(str(path))
    assert path.stat().st_size > 0
    with adak.load_allocator(tiny_model, str(path)) as again, tiny_model.session(n_ctx=64) as s:
        s.set_allocator(again)
        s.set_routing("adak")
        with pytest.raises(adak.AdakError) as e:
            s.set_allocator(None)  # refused while "adak" is active
        assert "adak" in e.value.message
    other = tiny_model.path.replace("tiny-mixtral", "tiny-olmoe")
    with adak.Model(other) as olmoe:
        with pytest.raises(adak.AdakError) as e:
            adak.load_allocator(olmoe, str(path))
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT and "different model" in e.value.message
        with tiny_model.identity_allocator() as alloc, olmoe.session(n_ctx=32) as s:
            with pytest.raises(adak.AdakError) as e:
                s.set_allocator(alloc)
            assert "adak_session_set_allocator" in e.value.message
    with pytest.raises(adak.AdakError) as e:
        adak.load_allocator(tiny_model, tiny_model.path)  # a model is not an allocator
    assert e.value.status == _lib.ERR_FORMAT
    closed = tiny_model.identity_allocator()
    closed.close()
    closed.close()
    with pytest.raises(adak.AdakError):
        closed.save(str(path))


def test_allocators_are_freed():
    """Many create/free cycles of allocators must not leak handles or memory."""
    import resource

    path = str(__import__("conftest").FIXTURES / "models" / "tiny-mixtral.f32.gguf")
    with adak.Model(path) as model:
        for _ in range(50):
            model.identity_allocator().close()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(1000):
            with model.identity_allocator():
                pass
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 20_000  # KiB


def test_log_callback(tiny_path):
    got = []
    lock = threading.Lock()

    def on_log(level, message):
        with lock:
            got.append((level, message))

    adak.set_log_callback(on_log)
    try:
        with adak.Model(tiny_path) as m, m.session(n_ctx=32) as s:
            with pytest.raises(adak.AdakError) as e:
                s.set_budget(float("nan"))
    finally:
        adak.set_log_callback(None)
    assert any(level == adak.LOG_INFO and "layers" in msg for level, msg in got)
    assert (adak.LOG_DEBUG, f"invalid argument: {e.value.message}") in got
    n = len(got)
    with adak.Model(tiny_path):
        pass
    assert len(got) == n  # removed


def test_progress_callback_and_cancel(tiny_path):
    seen = []
    with adak.Model(tiny_path, progress=seen.append):
        pass
    assert len(seen) >= 3 and seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    with pytest.raises(adak.AdakError) as e:
        adak.Model(tiny_path, progress=lambda f: f < 0.5)
    assert e.value.status == _lib.ERR_CANCELLED and "cancelled" in e.value.message

    def boom(fraction):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        adak.Model(tiny_path, progress=boom)
