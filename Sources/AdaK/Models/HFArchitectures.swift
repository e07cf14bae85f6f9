import CAdaKKernels

/// Hugging Face folders of GraniteMoeForCausalLM, DeepseekV2/V3ForCausalLM and GptOssForCausalLM
/// mapped as llama.cpp's convert_hf_to_gguf.py maps them (conversion/granite.py, deepseek.py,
/// gpt_oss.py — read for the facts): the same GGUF keys and tensor names and layouts, so
/// `adak convert` and direct folder loading give what the converter gives. Hooks called from
/// HFCheckpoint.swift.
extension HFConfig {
    static let newArchMap: [String: String] = [
        "GraniteMoeForCausalLM": GraniteMoE.arch,
        "DeepseekV2ForCausalLM": DeepSeek2.arch, "DeepseekV3ForCausalLM": DeepSeek2.arch,
        "GptOssForCausalLM": GptOss.arch,
    ]

    /// deepseek2: layers from `first_k_dense_replace` on are MoE.
    var leadingDense: Int { json["first_k_dense_replace"]?.intValue ?? 0 }
    func double(_ k: String) -> Double? { json[k]?.doubleValue }

    /// The `rope_parameters` (or `rope_scaling`) object when it asks for YaRN.
    var yarn: JSONValue? {
        for s in [json["rope_scaling"], json["rope_parameters"]] {
            guard let s, !s.isNull else { continue }
            if (s["rope_type"]?.stringValue ?? s["type"]?.stringValue) == "yarn" { return s }
        }
        return nil
    }

    /// Per-architecture checks of config.json; throws for what the GGUF cannot state.
    func checkNewArch(origin: String) throws {
        func bad(_ what: String) -> AdaKError { AdaKError.format("\(origin): \(what)") }
        switch arch {
        case DeepSeek2.arch:
            for k in ["kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"] where json[k]?.intValue == nil {
                throw bad("missing \"\(k)\"")
            }
            if let f = json["scoring_func"]?.stringValue, f != "softmax", f != "sigmoid" {
                throw AdaKError.unsupported("\(origin): scoring_func '\(f)' is not supported (softmax, sigmoid)")
            }
            if json["topk_method"]?.stringValue == "group_limited_greedy", (json["n_group"]?.intValue ?? 1) > 1 {
                // transformers scores a V2 group by its best expert, llama.cpp by its best two
                throw AdaKError.unsupported("\(origin): topk_method 'group_limited_greedy' with n_group > 1 is not supported")
            }
        case GraniteMoE.arch:
            if json["shared_intermediate_size"]?.intValue ?? 0 > 0 {
                throw AdaKError.unsupported("\(origin): GraniteMoeShared is not supported")
            }
        default: break
        }
    }

    /// The GGUF keys llama.cpp's converter writes for these architectures (beyond the common ones).
    func writeNewArchKeys(_ w: inout GGUFWriter, vocab: Int) {
        let a = arch
        func u(_ k: String, _ v: Int) { w.set("\(a).\(k)", .uint32(UInt32(v))) }
        func f(_ k: String, _ v: Double) { w.set("\(a).\(k)", .float32(Float(v))) }
        if let y = yarn {
            w.set("\(a).rope.scaling.type", .string("yarn"))
            f("rope.scaling.factor", y["factor"]?.doubleValue ?? 1)
            u("rope.scaling.original_context_length", y["original_max_position_embeddings"]?.intValue ?? contextLength)
        }
        switch a {
        case GraniteMoE.arch:
            u("vocab_size", vocab)
            u("rope.dimension_count", headDim)
            if let v = double("attention_multiplier") { f("attention.scale", v) }
            if let v = double("embedding_multiplier") { f("embedding_scale", v) }
            if let v = double("residual_multiplier") { f("residual_scale", v) }
            f("logit_scale", double("logits_scaling") ?? 1)
        case DeepSeek2.arch:
            let r = json["kv_lora_rank"]?.intValue ?? 0, rope = json["qk_rope_head_dim"]?.intValue ?? 0
            let nope = json["qk_nope_head_dim"]?.intValue ?? 0, dv = json["v_head_dim"]?.intValue ?? 0
            u("attention.head_count_kv", 1)
            u("leading_dense_block_count", leadingDense)
            u("vocab_size", vocab)
            // 0 (not absent) without q_lora, so llama.cpp loads it at any layer count
            u("attention.q_lora_rank", json["q_lora_rank"]?.intValue ?? 0)
            u("attention.kv_lora_rank", r)
            u("attention.key_length", r + rope)
            u("attention.value_length", r)
            u("attention.key_length_mla", nope + rope)
            u("attention.value_length_mla", dv)
            u("expert_feed_forward_length", expertFF)
            u("expert_shared_count", json["n_shared_experts"]?.intValue ?? 0)
            if let s = double("routed_scaling_factor") { f("expert_weights_scale", s) }
            if json["norm_topk_prob"]?.boolValue == true { w.set("\(a).expert_weights_norm", .bool(true)) }
            if let g = json["n_group"]?.intValue { u("expert_group_count", g) }
            if let g = json["topk_group"]?.intValue { u("expert_group_used_count", g) }
            if let sf = json["scoring_func"]?.stringValue { u("expert_gating_func", sf == "sigmoid" ? 2 : 1) }
            u("rope.dimension_count", rope)
            if let m = yarn?["mscale_all_dim"]?.doubleValue { f("rope.scaling.yarn_log_multiplier", 0.1 * m) }
        case GptOss.arch:
            u("attention.sliding_window", json["sliding_window"]?.intValue ?? 0)
            u("expert_feed_forward_length", nFF)
            if let types = json["layer_types"]?.arrayValue {
                w.set("\(a).attention.sliding_window_pattern",
                      array: types.map { .bool($0.stringValue == "sliding_attention") }, elementType: GGUFValue.bool(true).typeCode)
            }
        default: break
        }
    }

    /// GGUF tensors every layer of these architectures needs (beyond norms and embeddings).
    func newArchRequired(layer i: Int) -> [String] {
        let p = "blk.\(i)."
        switch arch {
        case DeepSeek2.arch:
            let q = (json["q_lora_rank"]?.intValue ?? 0) > 0 ? ["attn_q_a", "attn_q_a_norm", "attn_q_b"] : ["attn_q"]
            var r = (q + ["attn_kv_a_mqa", "attn_kv_a_norm", "attn_k_b", "attn_v_b", "attn_output", "attn_norm", "ffn_norm"])
            r += moeLayers.contains(i) ? ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"] : ["ffn_gate", "ffn_up", "ffn_down"]
            return r.map { p + $0 + ".weight" }
        case GptOss.arch:
            return ["attn_norm", "post_attention_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_sinks",
                    "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].map { p + $0 + ".weight" }
                + ["attn_output", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].map { p + $0 + ".bias" }
        default:
            return []
        }
    }
}

extension HFCheckpoint.Builder {
    /// Maps one layer tensor of the new architectures; false when `key` is not one of theirs.
    mutating func mapNewArch(_ name: String, layer: Int, key: String) throws -> Bool {
        let p = "blk.\(layer).", d = cfg.nEmbd, h = cfg.nHead, e = cfg.nExpert
        let j = cfg.json
        switch (cfg.arch, key) {
        // granitemoe: the JetMoE-style merged experts
        case (GraniteMoE.arch, "block_sparse_moe.router.layer.weight"):
            try emit(name, p + "ffn_gate_inp.weight", [e, d], forceF32: true)
        case (GraniteMoE.arch, "block_sparse_moe.input_linear.weight"):
            let f = cfg.nFF
            let all = try floats(name, [e, 2 * f, d])
            var gate = [Float](), up = [Float]()
            let block = f * d   // per expert: f gate rows, then f up rows
            for x in 0..<e {
                let g0: Int = 2 * x * block, u0: Int = g0 + block
                gate.append(contentsOf: all[g0..<u0])
                up.append(contentsOf: all[u0..<(u0 + block)])
            }
            try emitFloats(p + "ffn_gate_exps.weight", [e, f, d], gate)
            try emitFloats(p + "ffn_up_exps.weight", [e, f, d], up)
        case (GraniteMoE.arch, "block_sparse_moe.output_linear.weight"):
            try emitFloats(p + "ffn_down_exps.weight", [e, d, cfg.nFF], try floats(name, [e, d, cfg.nFF]))

        // deepseek2: multi-head latent attention
        case (DeepSeek2.arch, _) where key.hasPrefix("self_attn."):
            let r = j["kv_lora_rank"]?.intValue ?? 0, rope = j["qk_rope_head_dim"]?.intValue ?? 0
            let nope = j["qk_nope_head_dim"]?.intValue ?? 0, dv = j["v_head_dim"]?.intValue ?? 0
            let qr = j["q_lora_rank"]?.intValue ?? 0
            switch key {
            case "self_attn.q_proj.weight": try emit(name, p + "attn_q.weight", [h * (nope + rope), d])
            case "self_attn.q_a_proj.weight": try emit(name, p + "attn_q_a.weight", [qr, d])
            case "self_attn.q_a_layernorm.weight": try emit(name, p + "attn_q_a_norm.weight", [qr])
            case "self_attn.q_b_proj.weight": try emit(name, p + "attn_q_b.weight", [h * (nope + rope), qr])
            case "self_attn.kv_a_proj_with_mqa.weight": try emit(name, p + "attn_kv_a_mqa.weight", [r + rope, d])
            case "self_attn.kv_a_layernorm.weight": try emit(name, p + "attn_kv_a_norm.weight", [r])
            case "self_attn.o_proj.weight": try emit(name, p + "attn_output.weight", [d, h * dv])
            case "self_attn.kv_b_proj.weight":
                // per head [nope rows of k | dv rows of v] × r → k_b transposed (r × nope), v_b (dv × r)
                let all = try floats(name, [h * (nope + dv), r])
                var kb = [Float](repeating: 0, count: h * r * nope), vb = [Float]()
                for x in 0..<h {
                    let base = x * (nope + dv) * r
                    for i in 0..<nope { for c in 0..<r {
                        let dst: Int = x * r * nope + c * nope + i
                        kb[dst] = all[base + i * r + c]
                    } }
                    let v0: Int = base + nope * r
                    vb.append(contentsOf: all[v0..<(v0 + dv * r)])
                }
                try emitFloats(p + "attn_k_b.weight", [h, r, nope], kb)
                try emitFloats(p + "attn_v_b.weight", [h, dv, r], vb)
            default: return false
            }
        case (DeepSeek2.arch, "mlp.gate.e_score_correction_bias"):
            try emit(name, p + "exp_probs_b.bias", [e], forceF32: true)
        case (DeepSeek2.arch, _) where key.hasPrefix("mlp.shared_experts."):
            let fs = cfg.expertFF * (j["n_shared_experts"]?.intValue ?? 1)
            switch key {
            case "mlp.shared_experts.gate_proj.weight": try emit(name, p + "ffn_gate_shexp.weight", [fs, d])
            case "mlp.shared_experts.up_proj.weight": try emit(name, p + "ffn_up_shexp.weight", [fs, d])
            case "mlp.shared_experts.down_proj.weight": try emit(name, p + "ffn_down_shexp.weight", [d, fs])
            default: return false
            }

        // gpt-oss: sinks, biases, experts stored [E, in, out] with gate/up interleaved
        case (GptOss.arch, "self_attn.sinks"): try emit(name, p + "attn_sinks.weight", [h])
        case (GptOss.arch, "self_attn.o_proj.bias"): try emit(name, p + "attn_output.bias", [d])
        case (GptOss.arch, "post_attention_layernorm.weight"): try emit(name, p + "post_attention_norm.weight", [d])
        case (GptOss.arch, "mlp.router.weight"): try emit(name, p + "ffn_gate_inp.weight", [e, d], forceF32: true)
        case (GptOss.arch, "mlp.router.bias"): try emit(name, p + "ffn_gate_inp.bias", [e])
        case (GptOss.arch, "mlp.experts.gate_up_proj"):
            let f = cfg.nFF
            let all = try floats(name, [e, d, 2 * f])
            var gate = [Float](repeating: 0, count: e * f * d), up = gate
            for x in 0..<e { for i in 0..<d { for c in 0..<f {
                let src: Int = (x * d + i) * 2 * f + 2 * c, dst: Int = (x * f + c) * d + i
                gate[dst] = all[src]
                up[dst] = all[src + 1]
            } } }
            try emitFloats(p + "ffn_gate_exps.weight", [e, f, d], gate)
            try emitFloats(p + "ffn_up_exps.weight", [e, f, d], up)
        case (GptOss.arch, "mlp.experts.gate_up_proj_bias"):
            let f = cfg.nFF
            let all = try floats(name, [e, 2 * f])
            // interleaved: column 2c is gate c, 2c + 1 is up c
            let gateB: [Float] = (0..<(e * f)).map { (i: Int) -> Float in all[2 * i] }
            let upB: [Float] = (0..<(e * f)).map { (i: Int) -> Float in all[2 * i + 1] }
            try emitFloats(p + "ffn_gate_exps.bias", [e, f], gateB)
            try emitFloats(p + "ffn_up_exps.bias", [e, f], upB)
        case (GptOss.arch, "mlp.experts.down_proj"):
            let f = cfg.nFF
            let all = try floats(name, [e, f, d])
            var down = [Float](repeating: 0, count: e * d * f)
            for x in 0..<e { for c in 0..<f { for i in 0..<d {
                let dst: Int = (x * d + i) * f + c, src: Int = (x * f + c) * d + i
                down[dst] = all[src]
            } } }
            try emitFloats(p + "ffn_down_exps.weight", [e, d, f], down)
        case (GptOss.arch, "mlp.experts.down_proj_bias"):
            try emitFloats(p + "ffn_down_exps.bias", [e, d], try floats(name, [e, d]))
        default:
            return false
        }
        return true
    }
}
