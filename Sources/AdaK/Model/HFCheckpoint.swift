#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAdaKKernels

/// Options for turning a Hugging Face checkpoint into GGUF.
public struct HFConvertOptions: Sendable {
    public enum OutType: String, Sendable, CaseIterable {
        /// Every tensor in f32 (llama.cpp's `--outtype f32`).
        case f32
        /// Weights of two or more dimensions kept in their stored type (F32, F16 or BF16); vectors
        /// and routers in f32. Loading uses this: the engine then converts per `ModelParams`.
        case source
    }
    public var outType: OutType = .f32
    /// `general.name`; default: the folder name in title case.
    public var name: String? = nil
    public init() {}
}

/// A Hugging Face checkpoint folder (config.json, model.safetensors or shards + index,
/// tokenizer.json) mapped onto the tensors and metadata llama.cpp's `convert_hf_to_gguf.py`
/// produces: same names, ggml layouts, expert tensors stacked on a leading expert axis, and the
/// q/k row permutation for arch `llama` (so RoPE runs in NORM mode as llama.cpp does). Loading
/// and `adak convert` share this one path: load = convert to GGUF in memory.
public enum HFCheckpoint {
    /// Whether `path` is a folder holding a config.json.
    public static func isCheckpoint(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return false }
        return access(path + "/config.json", F_OK) == 0
    }

    /// The checkpoint as a GGUF writer (metadata and tensors in llama.cpp's order).
    public static func gguf(directory: String, options: HFConvertOptions = HFConvertOptions()) throws -> GGUFWriter {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let configJSON = try JSON.parse(file: dir + "/config.json")
        let cfg = try HFConfig(configJSON, origin: dir + "/config.json")
        let ckpt = try SafetensorsCheckpoint(directory: dir)
        var b = Builder(cfg: cfg, ckpt: ckpt, outType: options.outType)
        try b.mapAll()

        var w = GGUFWriter()
        w.set("general.architecture", .string(cfg.arch))
        w.set("general.type", .string("model"))
        w.set("general.name", .string(options.name ?? titleCase(baseName(dir))))
        w.set("general.size_label", .string(sizeLabel(b.tensors)))
        let a = cfg.arch
        w.set("\(a).block_count", .uint32(UInt32(cfg.nLayer)))
        w.set("\(a).context_length", .uint32(UInt32(cfg.contextLength)))
        w.set("\(a).embedding_length", .uint32(UInt32(cfg.nEmbd)))
        w.set("\(a).feed_forward_length", .uint32(UInt32(cfg.nFF)))
        w.set("\(a).attention.head_count", .uint32(UInt32(cfg.nHead)))
        w.set("\(a).attention.head_count_kv", .uint32(UInt32(cfg.nHeadKV)))
        w.set("\(a).rope.freq_base", .float32(Float(cfg.ropeTheta)))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(Float(cfg.rmsEps)))
        if cfg.nExpert > 0 {
            w.set("\(a).expert_count", .uint32(UInt32(cfg.nExpert)))
            w.set("\(a).expert_used_count", .uint32(UInt32(cfg.nExpertUsed)))
        }
        if let hd = cfg.explicitHeadDim {
            w.set("\(a).attention.key_length", .uint32(UInt32(hd)))
            w.set("\(a).attention.value_length", .uint32(UInt32(hd)))
        }
        w.set("general.file_type", .uint32(fileType(b.tensors)))
        switch a {
        case "llama":
            w.set("\(a).vocab_size", .uint32(UInt32(cfg.vocabSize ?? b.vocabRows)))
            w.set("\(a).rope.dimension_count", .uint32(UInt32(cfg.headDim)))
        case "qwen2moe", "qwen3moe":
            if let f = cfg.nFFExpert { w.set("\(a).expert_feed_forward_length", .uint32(UInt32(f))) }
            if let f = cfg.nFFShared, f > 0 { w.set("\(a).expert_shared_feed_forward_length", .uint32(UInt32(f))) }
        default: break
        }
        w.set("general.quantization_version", .uint32(2))
        cfg.writeNewArchKeys(&w, vocab: cfg.vocabSize ?? b.vocabRows)
        try HFTokenizerJSON.addKeys(to: &w, directory: dir, config: configJSON, vocabSize: cfg.vocabSize ?? b.vocabRows)
        for t in b.tensors {
            try w.addTensor(name: t.name, dims: t.dims, type: t.type, bytes: t.bytes)
        }
        return w
    }

    /// The checkpoint as an in-memory GGUF file, ready for `Model(gguf:params:)`.
    public static func loadGGUF(directory: String) throws -> GGUFFile {
        var options = HFConvertOptions()
        options.outType = .source
        let bytes = try gguf(directory: directory, options: options).serialize()
        let storage = try bytes.withUnsafeBytes { try MappedFile(copying: $0) }
        return try GGUFFile(storage: storage, origin: directory)
    }

    // MARK: - metadata helpers

    static func baseName(_ dir: String) -> String {
        let parts = dir.split(separator: "/")
        return parts.last.map(String.init) ?? dir
    }

    /// Words split at '-', each all-lowercase word in Python `str.title()` style
    /// (a letter is upper-cased when the character before it is not a letter).
    static func titleCase(_ s: String) -> String {
        s.split(separator: "-").map { word -> String in
            guard word == word.lowercased(), let f = word.first, !f.isNumber else { return String(word) }
            var out = ""
            var prevLetter = false
            for c in word {
                out += prevLetter ? String(c) : c.uppercased()
                prevLetter = c.isLetter
            }
            return out
        }.joined(separator: " ")
    }

    /// `general.size_label` as gguf-py computes it: "<experts>x<shared + one expert's params>"
    /// (or the total for dense models), rounded to K/M/B/T with at least two significant digits.
    static func sizeLabel(_ tensors: [Builder.Tensor]) -> String {
        var shared = 0, expertParams = 0, expertSum = 0, expertTensors = 0, total = 0
        for t in tensors {
            let size = t.dims.reduce(1, *)
            if t.name.contains("_exps.") {
                let count = t.dims.last ?? 1
                expertParams += size / count
                expertSum += count
                expertTensors += 1
            } else {
                shared += size
            }
            total += size
        }
        if expertTensors > 0 {
            return "\(expertSum / expertTensors)x" + roundedCount(shared + expertParams)
        }
        return roundedCount(total)
    }

    static func roundedCount(_ n: Int) -> String {
        let x = Double(n)
        let (scaled, suffix): (Double, String) =
            x > 1e12 ? (x * 1e-12, "T") : x > 1e9 ? (x * 1e-9, "B") : x > 1e6 ? (x * 1e-6, "M") : (x * 1e-3, "K")
        let r = scaled.rounded(.toNearestOrEven)
        let intDigits = r == 0 ? 0 : String(Int(r)).count
        let fix = max(2 - intDigits, 0)
        var p = 1.0
        for _ in 0..<fix { p *= 10 }
        let v = Int((scaled * p).rounded(.toNearestOrEven))
        if fix == 0 { return "\(v)\(suffix)" }
        let ip = v / Int(p), fp = v % Int(p)
        var frac = String(fp)
        while frac.count < fix { frac = "0" + frac }
        return "\(ip).\(frac)\(suffix)"
    }

    /// llama.cpp's `general.file_type`: all f32 → 0, else the type of the 2-D weights (F16 1, BF16 32).
    static func fileType(_ tensors: [Builder.Tensor]) -> UInt32 {
        if tensors.contains(where: { $0.type == UInt32(AKK_BF16.rawValue) }) { return 32 }
        if tensors.contains(where: { $0.type == UInt32(AKK_F16.rawValue) }) { return 1 }
        return 0
    }
}

extension Model {
    /// Loads a Hugging Face checkpoint folder (see `HFCheckpoint`).
    public convenience init(hfDirectory: String, params: ModelParams = ModelParams()) throws {
        try self.init(gguf: HFCheckpoint.loadGGUF(directory: hfDirectory), params: params)
    }
}

// MARK: - config.json

/// The hyper-parameters of a transformers config.json for the supported architectures.
struct HFConfig {
    let hfArch: String
    /// llama.cpp's architecture name.
    let arch: String
    let traits: ArchitectureTraits
    let nLayer, nEmbd, nHead, nHeadKV, headDim: Int
    /// `head_dim` when the config gives one (then written as key_length/value_length).
    let explicitHeadDim: Int?
    let nFF: Int
    let nFFExpert: Int?
    let nFFShared: Int?
    let nExpert, nExpertUsed: Int
    let ropeTheta, rmsEps: Double
    let contextLength: Int
    let vocabSize: Int?
    let tied: Bool
    let moeLayers: Set<Int>
    /// The whole config.json (architecture-specific keys, Models/HFArchitectures.swift).
    let json: JSONValue

    static let archMap: [String: String] = [
        "MixtralForCausalLM": "llama", "LlamaForCausalLM": "llama",
        "OlmoeForCausalLM": "olmoe",
        "Qwen2MoeForCausalLM": "qwen2moe", "Qwen3MoeForCausalLM": "qwen3moe",
        "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
    ]

    init(_ c: JSONValue, origin: String) throws {
        func bad(_ what: String) -> AdaKError { AdaKError.format("\(origin): \(what)") }
        func unsupported(_ what: String) -> AdaKError { AdaKError.unsupported("\(origin): \(what)") }
        guard c.objectValue != nil else { throw bad("not a JSON object") }
        guard let archs = c["architectures"]?.arrayValue, let hfArch = archs.first?.stringValue else {
            throw bad("missing \"architectures\"")
        }
        guard let arch = Self.archMap[hfArch] ?? Self.newArchMap[hfArch], let traits = ArchitectureTraits.forArchitecture(arch) else {
            let all = Array(Self.archMap.keys) + Array(Self.newArchMap.keys)
            throw unsupported("architecture '\(hfArch)' is not supported (supported: \(all.sorted().joined(separator: ", ")))")
        }
        json = c
        self.hfArch = hfArch
        self.arch = arch
        self.traits = traits
        func int(_ key: String) throws -> Int? {
            guard let v = c[key], !v.isNull else { return nil }
            guard let i = v.intValue, i >= 0 else { throw bad("\"\(key)\" must be a non-negative integer") }
            return i
        }
        func req(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw bad("missing \"\(key)\"") }
            return v
        }
        nLayer = try req("num_hidden_layers")
        nEmbd = try req("hidden_size")
        nHead = try req("num_attention_heads")
        nHeadKV = try int("num_key_value_heads") ?? nHead
        guard nHead > 0, nHeadKV > 0, nHead % nHeadKV == 0 else { throw bad("bad head counts \(nHead)/\(nHeadKV)") }
        // deepseek2's head_dim is its rope part; its heads are nope + rope (Models/HFArchitectures.swift)
        let mla = arch == DeepSeek2.arch
        explicitHeadDim = mla ? nil : try int("head_dim")
        headDim = mla ? (try int("qk_nope_head_dim") ?? 0) + (try int("qk_rope_head_dim") ?? 0) : explicitHeadDim ?? nEmbd / nHead
        nFF = try int("intermediate_size") ?? 0
        nFFExpert = try int("moe_intermediate_size")
        nFFShared = try int("shared_expert_intermediate_size")
        let experts = try int("num_local_experts") ?? int("num_experts") ?? int("n_routed_experts") ?? 0
        nExpert = experts
        nExpertUsed = experts > 0 ? try req("num_experts_per_tok") : 0
        guard experts == 0 || (nExpertUsed >= 1 && nExpertUsed <= experts) else {
            throw bad("num_experts_per_tok \(nExpertUsed) out of range for \(experts) experts")
        }
        contextLength = try int("max_position_embeddings") ?? 2048
        vocabSize = try int("vocab_size")
        rmsEps = c["rms_norm_eps"]?.doubleValue ?? 1e-6
        let rp = c["rope_parameters"]
        guard let theta = c["rope_theta"]?.doubleValue ?? rp?["rope_theta"]?.doubleValue ?? (rp == nil ? 10000 : nil) else {
            throw bad("rope_parameters has no rope_theta")
        }
        ropeTheta = theta
        for scaling in [c["rope_scaling"], rp] {
            guard let s = scaling, !s.isNull else { continue }
            let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue ?? "default"
            let yarnOK = type == "yarn" && (arch == DeepSeek2.arch || arch == GptOss.arch)
            guard type == "default" || yarnOK else { throw unsupported("RoPE scaling '\(type)' is not supported") }
        }
        if let act = c["hidden_act"]?.stringValue, act != "silu" {
            throw unsupported("hidden_act '\(act)' is not supported (silu is)")
        }
        if c["use_sliding_window"]?.boolValue == true {
            throw unsupported("sliding-window attention is not supported")
        }
        if let clip = c["clip_qkv"], !clip.isNull { throw unsupported("clip_qkv is not supported") }
        tied = c["tie_word_embeddings"]?.boolValue ?? false
        // Renormalisation of the kept top-k weights: llama.cpp hard-codes it per architecture, so a
        // config that disagrees cannot be represented in GGUF and would silently compute another model.
        if experts > 0, hfArch != "MixtralForCausalLM", arch != DeepSeek2.arch, let norm = c["norm_topk_prob"]?.boolValue, norm != traits.normalizeTopK {
            throw unsupported("norm_topk_prob = \(norm), but llama.cpp's '\(arch)' always uses \(traits.normalizeTopK)")
        }
        // Which layers are MoE: every decoder_sparse_step-th, minus mlp_only_layers.
        var moe = Set<Int>()
        if experts > 0 {
            let step = try int("decoder_sparse_step") ?? 1
            guard step >= 1 else { throw bad("decoder_sparse_step must be at least 1") }
            var dense = Set<Int>()
            for v in c["mlp_only_layers"]?.arrayValue ?? [] {
                guard let i = v.intValue else { throw bad("mlp_only_layers must hold integers") }
                dense.insert(i)
            }
            let lead = arch == DeepSeek2.arch ? try int("first_k_dense_replace") ?? 0 : 0
            for i in lead..<max(lead, nLayer) where !dense.contains(i) && (i + 1) % step == 0 { moe.insert(i) }
            guard nFFExpert != nil || nFF > 0 else { throw bad("missing expert FFN size") }
        }
        moeLayers = moe
        try checkNewArch(origin: origin)
        guard nLayer >= 1, nLayer <= ModelConfig.maxLayers, nEmbd >= 1, nEmbd <= ModelConfig.maxEmbd,
              headDim >= 2, headDim <= ModelConfig.maxHeadDim, experts <= ModelConfig.maxExperts,
              contextLength <= ModelConfig.maxContext else {
            throw bad("hyper-parameters out of range")
        }
    }

    /// Per-expert FFN width.
    var expertFF: Int { nFFExpert ?? nFF }
}

// MARK: - tensors

extension HFCheckpoint {
    /// Maps checkpoint tensors to GGUF tensors in llama.cpp's order.
    struct Builder {
        struct Tensor { var name: String; var dims: [Int]; var type: UInt32; var bytes: [UInt8] }
        enum ExpertKind: Int { case gate = 0, up = 1, down = 2 }

        let cfg: HFConfig
        let ckpt: SafetensorsCheckpoint
        let outType: HFConvertOptions.OutType
        var tensors: [Tensor] = []
        var vocabRows = 0
        /// Expert tensors collected per layer and kind, until every expert has arrived.
        private var pending: [Int: [[String?]]] = [:]
        private var seen = Set<String>()

        init(cfg: HFConfig, ckpt: SafetensorsCheckpoint, outType: HFConvertOptions.OutType) {
            self.cfg = cfg
            self.ckpt = ckpt
            self.outType = outType
        }

        var hd: Int { cfg.headDim }
        var qRows: Int { cfg.nHead * hd }
        var kvRows: Int { cfg.nHeadKV * hd }

        mutating func mapAll() throws {
            let names = ckpt.orderedNames
            guard let embd = ckpt.tensor("model.embed_tokens.weight") else {
                throw AdaKError.format("checkpoint has no model.embed_tokens.weight")
            }
            guard embd.tensor.shape.count == 2, embd.tensor.shape[1] == cfg.nEmbd else {
                throw AdaKError.format("model.embed_tokens.weight has shape \(embd.tensor.shape), expected [vocab, \(cfg.nEmbd)]")
            }
            vocabRows = embd.tensor.shape[0]
            if let v = cfg.vocabSize, v != vocabRows {
                throw AdaKError.format("vocab_size \(v) but model.embed_tokens.weight has \(vocabRows) rows")
            }
            for name in names { try map(name) }
            // Everything the model needs must be there.
            var required = ["token_embd.weight", "output_norm.weight"]
            if !cfg.tied { required.append("output.weight") }
            for i in 0..<cfg.nLayer {
                let p = "blk.\(i)."
                let special = cfg.newArchRequired(layer: i)
                if !special.isEmpty {
                    required += special
                    continue
                }
                required += ["attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output"].map { p + $0 + ".weight" }
                if cfg.traits.qkNorm != .none { required += [p + "attn_q_norm.weight", p + "attn_k_norm.weight"] }
                if cfg.moeLayers.contains(i) {
                    required += ["ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].map { p + $0 + ".weight" }
                } else {
                    required += ["ffn_gate", "ffn_up", "ffn_down"].map { p + $0 + ".weight" }
                }
            }
            let have = Set(tensors.map(\.name))
            for r in required where !have.contains(r) {
                if r == "output.weight" { continue }   // untied but no lm_head: llama.cpp falls back to token_embd
                throw AdaKError.format("checkpoint is missing the tensor for '\(r)'")
            }
            for (layer, kinds) in pending {
                for k in kinds where k.contains(where: { $0 != nil }) {
                    throw AdaKError.format("layer \(layer): only \(k.compactMap { $0 }.count) of \(cfg.nExpert) experts found")
                }
            }
        }

        private mutating func map(_ name: String) throws {
            func unknown() -> AdaKError { AdaKError.unsupported("tensor '\(name)' is not recognised for \(cfg.hfArch)") }
            let d = cfg.nEmbd
            switch name {
            case "model.embed_tokens.weight": return try emit(name, "token_embd.weight", [vocabRows, d])
            case "model.norm.weight": return try emit(name, "output_norm.weight", [d])
            case "lm_head.weight":
                if cfg.tied { return }
                return try emit(name, "output.weight", [vocabRows, d])
            default: break
            }
            let prefix = "model.layers."
            guard name.hasPrefix(prefix) else { throw unknown() }
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0, layer < cfg.nLayer else {
                throw unknown()
            }
            let key = String(rest[rest.index(after: dot)...])
            if try mapNewArch(name, layer: layer, key: key) { return }
            let p = "blk.\(layer)."
            let isMoE = cfg.moeLayers.contains(layer)
            let fe = cfg.expertFF, fs = cfg.nFFShared ?? 0
            let permute = cfg.arch == "llama" || cfg.arch == GraniteMoE.arch   // NORM-mode RoPE
            switch key {
            case "input_layernorm.weight": try emit(name, p + "attn_norm.weight", [d])
            case "post_attention_layernorm.weight": try emit(name, p + "ffn_norm.weight", [d])
            case "self_attn.q_proj.weight": try emit(name, p + "attn_q.weight", [qRows, d], permuteHeads: permute ? cfg.nHead : nil)
            case "self_attn.k_proj.weight": try emit(name, p + "attn_k.weight", [kvRows, d], permuteHeads: permute ? cfg.nHeadKV : nil)
            case "self_attn.v_proj.weight": try emit(name, p + "attn_v.weight", [kvRows, d])
            case "self_attn.o_proj.weight": try emit(name, p + "attn_output.weight", [d, qRows])
            case "self_attn.q_proj.bias": try emit(name, p + "attn_q.bias", [qRows], permuteHeads: permute ? cfg.nHead : nil)
            case "self_attn.k_proj.bias": try emit(name, p + "attn_k.bias", [kvRows], permuteHeads: permute ? cfg.nHeadKV : nil)
            case "self_attn.v_proj.bias": try emit(name, p + "attn_v.bias", [kvRows])
            case "self_attn.q_norm.weight", "self_attn.k_norm.weight":
                let isQ = key.hasPrefix("self_attn.q")
                let n: Int
                switch cfg.traits.qkNorm {
                case .none: throw unknown()
                case .perHead: n = hd
                case .wholeProjection: n = isQ ? qRows : kvRows
                }
                try emit(name, p + (isQ ? "attn_q_norm.weight" : "attn_k_norm.weight"), [n])
            case "self_attn.rotary_emb.inv_freq": return   // recomputed from rope_theta
            case "block_sparse_moe.gate.weight" where isMoE, "mlp.gate.weight" where isMoE:
                try emit(name, p + "ffn_gate_inp.weight", [cfg.nExpert, d], forceF32: true)
            case "mlp.shared_expert.gate_proj.weight" where isMoE: try emit(name, p + "ffn_gate_shexp.weight", [fs, d])
            case "mlp.shared_expert.up_proj.weight" where isMoE: try emit(name, p + "ffn_up_shexp.weight", [fs, d])
            case "mlp.shared_expert.down_proj.weight" where isMoE: try emit(name, p + "ffn_down_shexp.weight", [d, fs])
            case "mlp.shared_expert_gate.weight" where isMoE: try emit(name, p + "ffn_gate_inp_shexp.weight", [1, d], forceF32: true)
            case "mlp.gate_proj.weight" where !isMoE: try emit(name, p + "ffn_gate.weight", [cfg.nFF, d])
            case "mlp.up_proj.weight" where !isMoE: try emit(name, p + "ffn_up.weight", [cfg.nFF, d])
            case "mlp.down_proj.weight" where !isMoE: try emit(name, p + "ffn_down.weight", [d, cfg.nFF])
            default:
                // Experts: block_sparse_moe.experts.E.w{1,2,3}.weight (Mixtral) or mlp.experts.E.{gate,up,down}_proj.weight.
                guard isMoE, let (e, kind) = Self.expertKey(key), e < cfg.nExpert else { throw unknown() }
                let shape = kind == .down ? [d, fe] : [fe, d]
                let (file, t) = ckpt.tensor(name)!
                guard t.shape == shape else {
                    throw AdaKError.format("\(file.origin): tensor '\(name)' has shape \(t.shape), expected \(shape)")
                }
                var slots = pending[layer] ?? Array(repeating: Array(repeating: nil, count: cfg.nExpert), count: 3)
                guard slots[kind.rawValue][e] == nil else { throw AdaKError.format("duplicate expert tensor '\(name)'") }
                slots[kind.rawValue][e] = name
                if slots.allSatisfy({ $0.allSatisfy { $0 != nil } }) {
                    pending[layer] = nil
                    // llama.cpp's order once a layer's experts are complete.
                    let order: [ExpertKind] = cfg.hfArch == "MixtralForCausalLM" ? [.gate, .down, .up] : [.down, .gate, .up]
                    for k in order {
                        let gguf = p + ["ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"][k.rawValue]
                        try emitStack(slots[k.rawValue].map { $0! }, gguf, k == .down ? [d, fe] : [fe, d])
                    }
                } else {
                    pending[layer] = slots
                }
            }
        }

        static func expertKey(_ key: String) -> (Int, ExpertKind)? {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[4] == "weight", let e = Int(parts[2]), e >= 0 else { return nil }
            if parts[0] == "block_sparse_moe", parts[1] == "experts" {
                switch parts[3] {
                case "w1": return (e, .gate)
                case "w3": return (e, .up)
                case "w2": return (e, .down)
                default: return nil
                }
            }
            if parts[0] == "mlp", parts[1] == "experts" {
                switch parts[3] {
                case "gate_proj": return (e, .gate)
                case "up_proj": return (e, .up)
                case "down_proj": return (e, .down)
                default: return nil
                }
            }
            return nil
        }

        /// The output type and bytes of one source tensor (rows permuted if asked).
        private func convert(_ name: String, shape: [Int], forceF32: Bool, permuteHeads: Int?) throws -> (UInt32, [UInt8]) {
            let (file, t) = ckpt.tensor(name)!
            guard t.shape == shape || (shape.count == 2 && shape[0] == 1 && t.shape == [shape[1]]) else {
                throw AdaKError.format("\(file.origin): tensor '\(name)' has shape \(t.shape), expected \(shape)")
            }
            guard t.dtype.isFloat else {
                throw AdaKError.unsupported("\(file.origin): tensor '\(name)' has dtype \(t.dtype.rawValue); only F32, F16 and BF16 are supported")
            }
            let keep = outType == .source && !forceF32 && shape.count >= 2 && shape[0] > 1 && t.dtype != .F32
            var type = UInt32(AKK_F32.rawValue)
            var bytes: [UInt8]
            if keep {
                type = UInt32(t.dtype == .F16 ? AKK_F16.rawValue : AKK_BF16.rawValue)
                bytes = Array(file.bytes(t))
            } else {
                let f = try file.floats(t)
                guard f.allSatisfy({ $0.isFinite }) else {
                    throw AdaKError.format("\(file.origin): tensor '\(name)' contains NaN or infinity")
                }
                bytes = f.withUnsafeBytes { Array($0) }
            }
            if let heads = permuteHeads {
                bytes = try Self.permuteRows(bytes, rows: shape[0], heads: heads)
            }
            return (type, bytes)
        }

        /// llama.cpp's q/k permutation for NORM-mode RoPE: within each head, row j·(hd/2)+i moves to
        /// 2i+j (i < hd/2, j ∈ {0,1}). Works for matrices and bias vectors (rows = elements).
        static func permuteRows(_ src: [UInt8], rows: Int, heads: Int) throws -> [UInt8] {
            guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
                throw AdaKError.format("cannot permute \(rows) rows into \(heads) heads of even size")
            }
            let rowBytes = src.count / rows
            let hd = rows / heads, half = hd / 2
            var out = [UInt8](repeating: 0, count: src.count)
            src.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { o in
                    for h in 0..<heads {
                        for i in 0..<half {
                            for j in 0..<2 {
                                let from = h * hd + j * half + i, to = h * hd + 2 * i + j
                                o.baseAddress!.advanced(by: to * rowBytes)
                                    .copyMemory(from: s.baseAddress!.advanced(by: from * rowBytes), byteCount: rowBytes)
                            }
                        }
                    }
                }
            }
            return out
        }

        mutating func emit(_ name: String, _ gguf: String, _ shape: [Int], forceF32: Bool = false, permuteHeads: Int? = nil) throws {
            guard seen.insert(gguf).inserted else { throw AdaKError.format("two tensors map to '\(gguf)'") }
            let (type, bytes) = try convert(name, shape: shape, forceF32: forceF32, permuteHeads: permuteHeads)
            tensors.append(Tensor(name: gguf, dims: shape.reversed(), type: type, bytes: bytes))
        }

        /// A source tensor of row-major `shape` as floats (any float dtype).
        func floats(_ name: String, _ shape: [Int]) throws -> [Float] {
            let (file, t) = ckpt.tensor(name)!
            guard t.shape == shape else {
                throw AdaKError.format("\(file.origin): tensor '\(name)' has shape \(t.shape), expected \(shape)")
            }
            guard t.dtype.isFloat else { throw AdaKError.unsupported("\(file.origin): tensor '\(name)' has dtype \(t.dtype.rawValue)") }
            let f = try file.floats(t)
            guard f.allSatisfy({ $0.isFinite }) else { throw AdaKError.format("\(file.origin): tensor '\(name)' contains NaN or infinity") }
            return f
        }

        /// A rearranged tensor (row-major `shape`), written as f32.
        mutating func emitFloats(_ gguf: String, _ shape: [Int], _ values: [Float]) throws {
            guard seen.insert(gguf).inserted else { throw AdaKError.format("two tensors map to '\(gguf)'") }
            precondition(values.count == shape.reduce(1, *))
            tensors.append(Tensor(name: gguf, dims: shape.reversed(), type: UInt32(AKK_F32.rawValue),
                                  bytes: values.withUnsafeBytes { Array($0) }))
        }

        private mutating func emitStack(_ names: [String], _ gguf: String, _ shape: [Int]) throws {
            guard seen.insert(gguf).inserted else { throw AdaKError.format("two tensors map to '\(gguf)'") }
            var type: UInt32? = nil
            var bytes: [UInt8] = []
            for n in names {
                let (t, b) = try convert(n, shape: shape, forceF32: false, permuteHeads: nil)
                guard type == nil || type == t else {
                    throw AdaKError.unsupported("experts of '\(gguf)' are stored in different dtypes")
                }
                type = t
                if bytes.isEmpty { bytes.reserveCapacity(b.count * names.count) }
                bytes.append(contentsOf: b)
            }
            tensors.append(Tensor(name: gguf, dims: shape.reversed() + [names.count], type: type!, bytes: bytes))
        }
    }
}
