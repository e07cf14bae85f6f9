#!/usr/bin/env python3
"""Tiny random-weight fixtures for granitemoe, deepseek2 (V2 with/without q_lora, V3 sigmoid/group
routing) and gpt-oss, with their references from transformers and llama.cpp (Tests/Fixtures/README.md §7).

Stages (each run with the interpreter that has its libraries):
  hf     /work/venvs/hf/bin/python    build each model with transformers' own class, save the HF folder,
                                      convert it with llama.cpp's convert_hf_to_gguf.py (f32), write the
                                      transformers references (native, forced-k, top-p)
  llama  /work/venvs/llama/bin/python quantize to Q8_0 with llama.cpp, write llama.cpp's logits (f32, Q8_0)
                                      and 32 greedy tokens on 4 prompts
  all    runs both stages with the interpreters given by --hf-python / --llama-python

    python Tests/Fixtures/tools/make_arch_fixtures.py all --llama-src /work/src/llama-cpp-python-0.3.36/vendor/llama.cpp

Deterministic: seed 0 per model; the same versions write the same bytes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]          # Tests/Fixtures
MODELS = ROOT / "models"
REF = ROOT / "reference"
TOK_SRC = MODELS / "tiny-mixtral"                    # the 256-token byte tokenizer (README §1)
INPUT_TEXT = "Ada-K routing: every token picks 1..4 experts. Grüße, 世界 ✓ 0123456789"
PROMPTS = ["The quick brown fox", "Ada-K: ", "0123456789", "Grüße, 世界"]
N_GREEDY = 32
KMAX = 4

# the deepseek2 variants share their shape: d 128, 3 layers (layer 0 dense), MLA 64/32/16/32, 8 experts
DEEPSEEK = dict(vocab_size=256, hidden_size=128, intermediate_size=64, moe_intermediate_size=32,
                num_hidden_layers=3, first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=4,
                kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=8,
                num_experts_per_tok=2, max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=False,
                initializer_range=0.1, bos_token_id=1, eos_token_id=2, pad_token_id=None)
YARN = dict(rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=128,
            beta_fast=32.0, beta_slow=1.0)

# name -> HF class, GGUF arch, config kwargs
SPECS = {
    "tiny-granitemoe": dict(
        cls="GraniteMoeForCausalLM", arch="granitemoe",
        config=dict(vocab_size=256, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2,
                    max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
                    embedding_multiplier=2.0, attention_multiplier=0.2, residual_multiplier=0.5,
                    logits_scaling=1.5, tie_word_embeddings=False, initializer_range=0.1,
                    bos_token_id=1, eos_token_id=2, pad_token_id=None)),
    "tiny-deepseek2": dict(
        cls="DeepseekV2ForCausalLM", arch="deepseek2",
        config=dict(DEEPSEEK, q_lora_rank=None, n_shared_experts=1, topk_method="greedy", n_group=1, topk_group=1,
                    norm_topk_prob=False, routed_scaling_factor=1.5,
                    rope_parameters=dict(YARN, mscale=0.707, mscale_all_dim=0.707))),
    "tiny-deepseek2-qlora": dict(
        cls="DeepseekV2ForCausalLM", arch="deepseek2",
        config=dict(DEEPSEEK, q_lora_rank=64, n_shared_experts=2, topk_method="greedy", n_group=1, topk_group=1,
                    norm_topk_prob=False, routed_scaling_factor=1.0,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0))),
    "tiny-deepseek3": dict(
        cls="DeepseekV3ForCausalLM", arch="deepseek2",
        # scoring_func / topk_method as DeepSeek-V3's own config.json states them (transformers'
        # class implies them but does not save them; the converter needs scoring_func)
        config=dict(DEEPSEEK, q_lora_rank=64, n_shared_experts=1, n_group=4, topk_group=2, scoring_func="sigmoid",
                    topk_method="noaux_tc", norm_topk_prob=True, routed_scaling_factor=2.5,
                    rope_parameters=dict(YARN, mscale=1.0, mscale_all_dim=1.0))),
    "tiny-gptoss": dict(
        cls="GptOssForCausalLM", arch="gpt-oss",
        config=dict(vocab_size=256, hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=8,
                    num_experts_per_tok=2, sliding_window=8, max_position_embeddings=512, rms_norm_eps=1e-5,
                    rope_parameters=dict(YARN, truncate=True),
                    swiglu_limit=7.0, tie_word_embeddings=False, initializer_range=0.1, bos_token_id=1,
                    eos_token_id=2, pad_token_id=None)),
}


def input_ids():
    return [1] + list(INPUT_TEXT.encode("utf-8"))[:63]


def forced_k(n_layers, T=64):
    return [[1 + ((3 * l + 5 * t) % 4) for t in range(T)] for l in range(n_layers)]


# ----------------------------------------------------------------------------------------------
# stage hf
# ----------------------------------------------------------------------------------------------

def build_model(name, spec):
    import torch
    import transformers
    torch.manual_seed(0)
    cls = getattr(transformers, spec["cls"])
    config = cls.config_class(**spec["config"])
    config._attn_implementation = "eager"
    model = cls(config).float().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname and p.dim() == 1:        # every RMSNorm: 1 + 0.2·N(0,1)
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif pname.endswith("bias") or pname.endswith("sinks"):   # biases and sinks: 0.1·N(0,1)
                p.copy_(0.1 * torch.randn(p.shape, generator=g) * (10 if pname.endswith("sinks") else 1))
        for mname, buf in model.named_buffers():
            if mname.endswith("e_score_correction_bias"):             # V3 selection bias: 0.1·N(0,1)
                buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
        if spec["arch"] == "gpt-oss":
            # make the SwiGLU clamp (limit 7) bite: gate/up pre-activations of std ~5
            for layer in model.model.layers:
                layer.mlp.experts.gate_up_proj.mul_(6.0)
    return model


def sorted_distribution(arch, spec, router, h):
    """Router scores of one layer for hidden rows h: (logits, ranking order [T, E], the policy
    distribution in ranking order [T, E], raw weights in ranking order [T, E], eligible count)."""
    import torch
    cfg = spec["config"]
    w = router.weight.float()
    logits = h.float() @ w.t()
    if getattr(router, "bias", None) is not None and spec["arch"] == "gpt-oss":
        logits = logits + router.bias.float()
    if spec["cls"] == "DeepseekV3ForCausalLM":
        s = logits.sigmoid()
        key = s + router.e_score_correction_bias.float()
        G = cfg["n_group"]
        per = s.shape[1] // G
        gs = key.view(-1, G, per).topk(2, dim=-1)[0].sum(-1)
        # top groups, ties to the lower group (stable)
        gorder = torch.sort(gs, dim=-1, descending=True, stable=True).indices[:, :cfg["topk_group"]]
        gmask = torch.zeros_like(gs).scatter_(1, gorder, 1).bool()
        emask = gmask.unsqueeze(-1).expand(-1, G, per).reshape(-1, s.shape[1])
        key = key.masked_fill(~emask, float("-inf"))
        sm = s.masked_fill(~emask, 0.0)
        dist = sm / sm.sum(-1, keepdim=True)
        order = torch.sort(key, dim=-1, descending=True, stable=True).indices
        eligible = cfg["topk_group"] * per
        return logits, order, dist.gather(1, order), s.gather(1, order), eligible
    p = torch.softmax(logits, dim=-1)
    order = torch.sort(p, dim=-1, descending=True, stable=True).indices
    ps = p.gather(1, order)
    return logits, order, ps, ps, p.shape[1]


def patch_routers(model, spec, schedule):
    """Replace every MoE router's forward by the masked top-k of `schedule(layer, dist_sorted) -> k per
    token`; returns a dict layer -> chosen k (filled during the forward)."""
    import torch
    arch, cfg = spec["arch"], spec["config"]
    chosen = {}
    for il, layer in enumerate(model.model.layers):
        mlp = layer.mlp if hasattr(layer, "mlp") else None
        moe = getattr(layer, "block_sparse_moe", None) or mlp
        router = getattr(moe, "gate", None) if spec["cls"].startswith("Deepseek") else getattr(moe, "router", None)
        if router is None or not hasattr(router, "weight") or router.weight.dim() != 2 or \
                router.weight.shape[0] != cfg.get("n_routed_experts", cfg.get("num_local_experts")):
            continue
        E = router.weight.shape[0]

        def fwd(hidden_states, _il=il, _router=router, _E=E):
            h = hidden_states.reshape(-1, hidden_states.shape[-1])
            logits, order, dist, raw, eligible = sorted_distribution(arch, spec, _router, h)
            ks = [min(k, eligible) for k in schedule(_il, dist)]
            chosen[_il] = ks
            T = h.shape[0]
            idx = torch.full((T, KMAX), E, dtype=torch.long)
            wts = torch.zeros((T, KMAX), dtype=torch.float32)
            for t in range(T):
                k = ks[t]
                sel = order[t, :k]
                if arch == "gpt-oss":
                    # softmax over the chosen logits (= the softmax renormalised over them)
                    wk = torch.softmax(logits[t, sel], dim=-1)
                elif spec["cls"] == "DeepseekV3ForCausalLM":
                    wk = raw[t, :k]
                    if cfg["norm_topk_prob"]:
                        wk = wk / (wk.sum() + 1e-20)
                    wk = wk * cfg["routed_scaling_factor"]
                elif spec["cls"] == "DeepseekV2ForCausalLM":
                    wk = raw[t, :k] * cfg["routed_scaling_factor"]   # V2: no renormalisation
                else:  # granitemoe: softmax over the chosen logits
                    wk = torch.softmax(logits[t, sel], dim=-1)
                idx[t, :k] = sel
                wts[t, :k] = wk
                if arch == "gpt-oss":
                    idx[t, k:] = sel[0]      # its expert loop has no skip index: weight 0 instead
            return logits, wts.to(hidden_states.dtype), idx

        router.forward = fwd
    return chosen


def hf_run(model, ids):
    import torch
    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


def top_p_schedule(p=0.5, kmax=KMAX):
    import torch
    def sched(il, dist):
        cum = torch.cumsum(dist, dim=-1)
        ks = []
        for t in range(dist.shape[0]):
            k = int((cum[t] < p).sum().item()) + 1
            ks.append(max(1, min(k, kmax)))
        return ks
    return sched


def convert(hf_dir, out, llama_src):
    """llama.cpp's converter, with the two runtime patches of README §1 (pre-tokenizer 'default',
    one dummy merge): the byte tokenizer is unknown to it and gpt2 vocabs need merges; and for
    deepseek2 without q_lora, `attention.q_lora_rank = 0` (see below)."""
    code = f"""
import sys, runpy
sys.path.insert(0, {str(llama_src)!r}); sys.path.insert(1, {str(llama_src + '/gguf-py')!r})
import gguf
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "default"
_orig = gguf.SpecialVocab.add_to_gguf
def add_to_gguf(self, gw, quiet=False):
    if not self.merges:
        self.merges = ["\\u0120 \\u0120"]
    return _orig(self, gw, quiet=quiet)
gguf.SpecialVocab.add_to_gguf = add_to_gguf
# llama.cpp loads deepseek2 without q_lora only for the DeepSeek-V2-Lite layer counts (27/26) unless
# the file says q_lora_rank = 0; the converter writes the key only when the rank is set
import conversion.deepseek as ds
_set = ds.DeepseekV2Model.set_gguf_parameters
def set_gguf_parameters(self):
    _set(self)
    if self.hparams.get("q_lora_rank") is None:
        self.gguf_writer.add_q_lora_rank(0)
ds.DeepseekV2Model.set_gguf_parameters = set_gguf_parameters
sys.argv = ["convert_hf_to_gguf.py", {str(hf_dir)!r}, "--outtype", "f32", "--outfile", {str(out)!r}]
runpy.run_path({str(llama_src + '/convert_hf_to_gguf.py')!r}, run_name="__main__")
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def stage_hf(args):
    import numpy as np
    import torch
    import transformers
    REF.mkdir(exist_ok=True)
    ids = input_ids()
    for name, spec in SPECS.items():
        if args.only and name not in args.only:
            continue
        model = build_model(name, spec)
        hf_dir = MODELS / name
        if hf_dir.exists():
            shutil.rmtree(hf_dir)
        model.save_pretrained(hf_dir, safe_serialization=True)
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(TOK_SRC / f, hf_dir / f)
        convert(hf_dir, MODELS / f"{name}.f32.gguf", args.llama_src)

        # references: a fresh load of the saved folder (what the converter read)
        cls = getattr(transformers, spec["cls"])
        ref_model = cls.from_pretrained(hf_dir, attn_implementation="eager", dtype=torch.float32).eval()
        native = hf_run(ref_model, ids)
        n_layers = spec["config"]["num_hidden_layers"]
        fk = forced_k(n_layers)
        chosen = patch_routers(ref_model, spec, lambda il, dist: fk[il][:dist.shape[0]])
        forced = hf_run(ref_model, ids)
        # the patched router at the native k reproduces the unpatched model
        nat_k = spec["config"]["num_experts_per_tok"]
        patch_routers(ref_model, spec, lambda il, dist: [nat_k] * dist.shape[0])
        check = float(np.abs(hf_run(ref_model, ids) - native).max())
        chosen_tp = patch_routers(ref_model, spec, top_p_schedule())
        topp = hf_run(ref_model, ids)
        tp_k = np.array([chosen_tp[il] for il in sorted(chosen_tp)], dtype=np.int32)
        moe_layers = sorted(chosen)
        fk_arr = np.array(fk, dtype=np.int32)
        for il in range(n_layers):
            if il not in moe_layers:
                fk_arr[il] = 0
        np.save(REF / f"{name}.input_ids.npy", np.array(ids, dtype=np.int32))
        np.save(REF / f"{name}.hf.logits.npy", native.astype(np.float32))
        np.save(REF / f"{name}.forced_k.npy", fk_arr)
        np.save(REF / f"{name}.forced_k.logits.npy", forced.astype(np.float32))
        np.save(REF / f"{name}.top_p0.5_kmax4.k.npy", tp_k)
        np.save(REF / f"{name}.top_p0.5_kmax4.logits.npy", topp.astype(np.float32))
        side = dict(model=name, hf_class=spec["cls"], gguf_arch=spec["arch"], config=spec["config"],
                    moe_layers=moe_layers, patched_router_native_k_max_abs_diff=check,
                    top_p_k_histogram={str(k): int((tp_k == k).sum()) for k in range(1, KMAX + 1)},
                    versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                                  numpy=np.__version__))
        (REF / f"{name}.json").write_text(json.dumps(side, indent=1, ensure_ascii=False))
        print(name, "patched-router check", check, "top-p k", side["top_p_k_histogram"])


# ----------------------------------------------------------------------------------------------
# stage llama
# ----------------------------------------------------------------------------------------------

def stage_llama(args):
    import numpy as np
    import llama_cpp
    from llama_cpp import llama_cpp as C
    ids = input_ids()
    for name, spec in SPECS.items():
        if args.only and name not in args.only:
            continue
        f32 = MODELS / f"{name}.f32.gguf"
        q8 = MODELS / f"{name}.q8_0.gguf"
        qp = C.llama_model_quantize_default_params()
        qp.ftype = C.LLAMA_FTYPE_MOSTLY_Q8_0
        qp.pure = True
        assert C.llama_model_quantize(str(f32).encode(), str(q8).encode(), qp) == 0
        files = [("f32", f32), ("q8_0", q8)]
        if spec["arch"] == "gpt-oss":
            # gpt-oss as released: MXFP4 experts (llama.cpp's MXFP4_MOE: experts MXFP4, the rest Q8_0)
            mx = MODELS / f"{name}.mxfp4.gguf"
            qp = C.llama_model_quantize_default_params()
            qp.ftype = C.LLAMA_FTYPE_MOSTLY_MXFP4_MOE
            assert C.llama_model_quantize(str(f32).encode(), str(mx).encode(), qp) == 0
            files.append(("mxfp4", mx))
        side_path = REF / f"{name}.json"
        side = json.loads(side_path.read_text())
        side["llamacpp"] = {}
        for tag, path in files:
            llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_batch=128, n_ubatch=128, n_threads=1,
                                  n_threads_batch=1, logits_all=True, type_k=0, type_v=0, flash_attn=False,
                                  verbose=False, seed=0)
            llm.reset()
            llm.eval(ids)
            logits = np.array(llm.scores[:len(ids)], dtype=np.float32)
            np.save(REF / f"{name}.llamacpp.{tag}.logits.npy", logits)
            greedy = []
            for prompt in PROMPTS:
                toks = [1] + list(prompt.encode("utf-8"))
                llm.reset()
                llm.eval(toks)
                out = []
                for _ in range(N_GREEDY):
                    row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
                    nxt = int(np.argmax(row))
                    out.append(nxt)
                    llm.eval([nxt])
                greedy.append(dict(prompt=prompt, ids=toks, greedy_ids=out))
            with open(REF / f"{name}.llamacpp.{tag}.greedy.jsonl", "w") as fh:
                for g in greedy:
                    fh.write(json.dumps(g, ensure_ascii=False) + "\n")
            hf = np.load(REF / f"{name}.hf.logits.npy")
            side["llamacpp"][tag] = dict(max_abs_vs_hf=float(np.abs(logits - hf).max()),
                                         mean_abs_vs_hf=float(np.abs(logits - hf).mean()))
            del llm
        side["versions"]["llama_cpp_python"] = llama_cpp.__version__
        side_path.write_text(json.dumps(side, indent=1, ensure_ascii=False))
        print(name, side["llamacpp"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["hf", "llama", "all"])
    ap.add_argument("--llama-src", default="/work/src/llama-cpp-python-0.3.36/vendor/llama.cpp")
    ap.add_argument("--hf-python", default="/work/venvs/hf/bin/python")
    ap.add_argument("--llama-python", default="/work/venvs/llama/bin/python")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    if args.stage == "hf":
        stage_hf(args)
    elif args.stage == "llama":
        stage_llama(args)
    else:
        extra = ["--only", *args.only] if args.only else []
        me = str(Path(__file__).resolve())
        subprocess.run([args.hf_python, me, "hf", "--llama-src", args.llama_src, *extra], check=True)
        subprocess.run([args.llama_python, me, "llama", *extra], check=True)


if __name__ == "__main__":
    main()
