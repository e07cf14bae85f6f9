"""Batched decoding through the C ABI (adak.batch_decode → adak_batch_decode): each session's
logits in a batch equal those of the same tokens evaluated alone, with different routing
policies, allocators and budgets in one batch and a newcomer's prompt chunks beside the streams."""

import numpy as np
import pytest

import adak
from adak import _lib

# (policy, knobs, budget, identity allocator) of the sessions of one batch
ROUTINGS = [("topk", {}, None, False), ("topk", {}, 0.5, False), ("top_p", {"p": 0.6}, 0.7, False),
            ("skip", {"beta": 0.3}, None, False), ("adak", {"price": 0.05}, 0.6, True)]


def make_session(model, i, moe):
    s = model.session(n_ctx=128, n_threads=2, temperature=0.0)
    if moe:
        policy, knobs, budget, identity = ROUTINGS[i % len(ROUTINGS)]
        if identity:
            s.set_allocator(model.identity_allocator())
        s.set_routing(policy, **knobs)
        s.set_budget(budget)
    return s


def batched_versus_alone(model, prompts, decode, chunk):
    """Streams decode one token per step; newcomers' prompts take up to `chunk` tokens per step
    (one newcomer joins every other step). Returns the largest |Δ| against replaying each
    session's steps alone."""
    moe = bool(model.moe_layers)
    sessions = [make_session(model, i, moe) for i in range(len(prompts))]
    fed = [[] for _ in prompts]
    seen = [[] for _ in prompts]
    left = [list(p) for p in prompts]
    made = [0] * len(prompts)
    step = 0
    try:
        while any(m < decode for m in made):
            entries = []
            for i, s in enumerate(sessions):
                if not left[i] and made[i] < decode:
                    entries.append((i, [s.sample()]))
                    made[i] += 1
            budget = chunk
            for i in range(len(prompts)):
                if left[i] and i <= step // 2 and budget > 0:
                    part, left[i] = left[i][:budget], left[i][budget:]
                    entries.append((i, part))
                    budget -= len(part)
            step += 1
            if not entries:
                continue
            adak.batch_decode([sessions[i] for i, _ in entries], [t for _, t in entries])
            for i, toks in entries:
                fed[i].append(toks)
                seen[i].append(sessions[i].logits[-1].copy())
        worst = 0.0
        for i in range(len(prompts)):
            with make_session(model, i, moe) as alone:
                for toks, want in zip(fed[i], seen[i]):
                    alone.evaluate(toks)
                    worst = max(worst, float(np.max(np.abs(alone.logits[-1] - want))))
                if moe:
                    assert alone.stats.expert_flops == sessions[i].stats.expert_flops
        return worst
    finally:
        for s in sessions:
            s.close()


def test_batch_equals_alone_tiny_moe_mixed_routing(tiny_model):
    prompts = [tiny_model.tokenize(t) for t in ("Once upon a time", "Hello", "The quick brown fox jumps over the lazy dog",
                                                 "1 2 3")]
    assert batched_versus_alone(tiny_model, prompts, decode=6, chunk=5) == 0.0


def test_batch_equals_alone_smollm2(smollm2_model):
    prompts = [smollm2_model.tokenize(t) for t in ("The capital of France is", "def fibonacci(n):",
                                                    "Once upon a time, in a small village by the sea, there lived")]
    assert batched_versus_alone(smollm2_model, prompts, decode=6, chunk=8) == 0.0


def test_batch_errors_leave_sessions_unchanged(tiny_model):
    with tiny_model.session(n_ctx=16, n_batch=4) as a, tiny_model.session(n_ctx=16) as b:
        with pytest.raises(adak.InvalidArgumentError):
            adak.batch_decode([a, a], [[1], [2]])
        with pytest.raises(adak.InvalidArgumentError):
            adak.batch_decode([a, b], [[1], [2, 3, 4, 5]])       # 5 tokens > a's n_batch 4
        with pytest.raises(adak.InvalidArgumentError):
            adak.batch_decode([a, b], [[1], [tiny_model.n_vocab]])
        with pytest.raises(adak.ContextFullError):
            adak.batch_decode([b, a], [[1], [1] * 17])
        with pytest.raises(adak.InvalidArgumentError):
            adak.batch_decode([a], [[1], [2]])
        assert a.position == 0 and b.position == 0
        adak.batch_decode([a, b], [[1, 2], [3]])
        assert (a.position, b.position) == (2, 1)
        assert a.logits.shape == (1, tiny_model.n_vocab)
    assert adak._C.adak_batch_decode(None, 1, None, None) == _lib.ERR_INVALID_ARGUMENT
