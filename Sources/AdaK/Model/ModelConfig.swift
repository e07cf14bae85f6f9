/// How an architecture differs from the plain llama forward pass. One entry per GGUF
/// `general.architecture` value, with llama.cpp's per-architecture rules (no GGUF key says
/// whether MoE weights are renormalised: llama.cpp hard-codes it per architecture).
public struct ArchitectureTraits: Sendable {
    /// RoPE pairs element i with i + n_rot/2 (NeoX) instead of 2i with 2i+1.
    public var ropeNeoX: Bool
    /// Renormalise the kept top-k routing weights to sum to 1.
    public var normalizeTopK: Bool
    public enum QKNorm: Sendable { case none, wholeProjection, perHead }
    public var qkNorm: QKNorm
    /// How router outputs become expert scores (see `CarvedArchitecture` for `predictedNorm`).
    public enum RouterKind: Sendable { case softmax, predictedNorm }
    public var router: RouterKind = .softmax
    /// Combine the chosen experts with weight 1 each (a plain sum) instead of their probability.
    public var unitExpertWeights: Bool = false

    public static func forArchitecture(_ arch: String) -> ArchitectureTraits? {
        switch arch {
        case "llama": ArchitectureTraits(ropeNeoX: false, normalizeTopK: true, qkNorm: .none)
        case "qwen2": ArchitectureTraits(ropeNeoX: true, normalizeTopK: false, qkNorm: .none)
        case "qwen2moe": ArchitectureTraits(ropeNeoX: true, normalizeTopK: false, qkNorm: .none)
        case "qwen3": ArchitectureTraits(ropeNeoX: true, normalizeTopK: true, qkNorm: .perHead)
        case "qwen3moe": ArchitectureTraits(ropeNeoX: true, normalizeTopK: true, qkNorm: .perHead)
        case "olmoe": ArchitectureTraits(ropeNeoX: true, normalizeTopK: false, qkNorm: .wholeProjection)
        case GraniteMoE.arch: ArchitectureTraits(ropeNeoX: false, normalizeTopK: true, qkNorm: .none)
        // deepseek2's renormalisation comes from `expert_weights_norm` (DeepSeek2.readConfig)
        case DeepSeek2.arch: ArchitectureTraits(ropeNeoX: false, normalizeTopK: false, qkNorm: .none)
        case GptOss.arch: ArchitectureTraits(ropeNeoX: true, normalizeTopK: true, qkNorm: .none)
        default: nil
        }
    }

    public static let supported = ["llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "olmoe", GraniteMoE.arch,
                                   DeepSeek2.arch, GptOss.arch, CarvedArchitecture.name]
}

/// Hyper-parameters read from a GGUF file's `<arch>.*` keys.
public struct ModelConfig: Sendable {
    public var arch: String
    public var name: String
    public var nLayer: Int
    public var nEmbd: Int
    public var nHead: Int
    public var nHeadKV: Int
    public var headDim: Int
    /// Rotated dimensions per head (`rope.dimension_count`, default head_dim).
    public var nRot: Int
    /// Dense FFN width (`feed_forward_length`).
    public var nFF: Int
    public var nExpert: Int
    public var nExpertUsed: Int
    /// Per-expert FFN width.
    public var nFFExpert: Int
    /// Shared-expert FFN width (qwen2moe), 0 if none.
    public var nFFShared: Int
    public var nVocab: Int
    public var contextLength: Int
    public var ropeFreqBase: Float
    public var rmsEps: Float
    public var traits: ArchitectureTraits

    // Architecture-specific settings (Sources/AdaK/Models); the defaults are the plain llama pass.
    /// Granite: embeddings × embeddingScale, each residual branch × residualScale, logits ÷ logitScale.
    public var embeddingScale: Float = 1
    public var residualScale: Float = 1
    public var logitScale: Float = 1
    /// Attention score scale (nil: 1/√head_dim).
    public var attentionScale: Float? = nil
    public var rope = RopeScaling()
    /// deepseek2's multi-head latent attention, nil otherwise.
    public var mla: MLAShape? = nil
    /// Leading layers with a dense FFN before the MoE layers (`leading_dense_block_count`).
    public var nLeadingDense = 0
    public var gating = ExpertGating()
    /// gpt-oss: sliding window (tokens) and which layers use it.
    public var slidingWindow = 0
    public var swaLayers: [Bool] = []

    public var isMoE: Bool { nExpert > 0 }

    /// Largest sizes accepted from a file (guards against absurd headers).
    public static let maxEmbd = 1 << 16
    public static let maxLayers = 1024
    public static let maxHeadDim = 1024
    public static let maxExperts = 1024
    public static let maxContext = 1 << 20

    public init(gguf g: GGUFFile) throws {
        guard let arch = g.string("general.architecture") else {
            throw AdaKError.format("missing general.architecture")
        }
        guard let traits = try ArchitectureTraits.forArchitecture(arch) ?? CarvedArchitecture.traits(gguf: g, arch: arch) else {
            throw AdaKError.unsupported("architecture '\(arch)' is not supported (supported: \(ArchitectureTraits.supported.joined(separator: ", ")))")
        }
        func req(_ key: String) throws -> Int {
            guard let v = g.int("\(arch).\(key)") else { throw AdaKError.format("missing \(arch).\(key)") }
            return v
        }
        func opt(_ key: String) -> Int? { g.int("\(arch).\(key)") }
        self.arch = arch
        self.traits = traits
        name = g.string("general.name") ?? arch
        nLayer = try req("block_count")
        nEmbd = try req("embedding_length")
        nHead = try req("attention.head_count")
        nHeadKV = opt("attention.head_count_kv") ?? nHead
        guard nHead > 0 else { throw AdaKError.format("\(arch).attention.head_count must be positive") }
        headDim = opt("attention.key_length") ?? (nEmbd / nHead)
        let valueDim = opt("attention.value_length") ?? headDim
        // deepseek2 states its latent cache row (kv_lora_rank + rope dim) as key_length and
        // kv_lora_rank as value_length; DeepSeek2.readConfig checks them
        guard valueDim == headDim || arch == DeepSeek2.arch else {
            throw AdaKError.unsupported("attention.value_length \(valueDim) != key_length \(headDim)")
        }
        nRot = opt("rope.dimension_count") ?? headDim
        nFF = opt("feed_forward_length") ?? 0
        nExpert = opt("expert_count") ?? 0
        nExpertUsed = opt("expert_used_count") ?? 0
        nFFExpert = opt("expert_feed_forward_length") ?? nFF
        nFFShared = opt("expert_shared_feed_forward_length") ?? 0
        contextLength = opt("context_length") ?? 2048
        ropeFreqBase = Float(g.double("\(arch).rope.freq_base") ?? 10000)
        rmsEps = Float(g.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5)
        nVocab = opt("vocab_size") ?? g.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count ?? 0
        rope = try RopeScaling.read(g, arch: arch, nRot: nRot, freqBase: ropeFreqBase, contextLength: contextLength)
        if rope.isYaRN && arch != DeepSeek2.arch && arch != GptOss.arch {
            throw AdaKError.unsupported("rope scaling 'yarn' is not supported for \(arch)")
        }
        switch arch {
        case GraniteMoE.arch: try GraniteMoE.readConfig(g, into: &self)
        case DeepSeek2.arch: try DeepSeek2.readConfig(g, into: &self)
        case GptOss.arch: try GptOss.readConfig(g, into: &self)
        default: break
        }
        try validate()
    }

    func validate() throws {
        func check(_ ok: Bool, _ what: String) throws {
            if !ok { throw AdaKError.format("\(arch): \(what)") }
        }
        try check(nLayer >= 1 && nLayer <= Self.maxLayers, "block_count \(nLayer) out of range")
        try check(nEmbd >= 1 && nEmbd <= Self.maxEmbd, "embedding_length \(nEmbd) out of range")
        try check(nHeadKV >= 1 && nHead % nHeadKV == 0, "head_count \(nHead) is not a multiple of head_count_kv \(nHeadKV)")
        try check(headDim >= 2 && headDim <= Self.maxHeadDim && headDim % 2 == 0, "head dimension \(headDim) out of range")
        try check(nRot >= 2 && nRot <= headDim && nRot % 2 == 0, "rope.dimension_count \(nRot) out of range")
        try check(nExpert >= 0 && nExpert <= Self.maxExperts, "expert_count \(nExpert) out of range")
        if nExpert > 0 {
            try check(nExpertUsed >= 1 && nExpertUsed <= nExpert, "expert_used_count \(nExpertUsed) out of range")
        }
        try check(contextLength >= 1 && contextLength <= Self.maxContext, "context_length \(contextLength) out of range")
        try check(ropeFreqBase.isFinite && ropeFreqBase > 0, "rope.freq_base must be positive")
        try check(rmsEps.isFinite && rmsEps >= 0, "layer_norm_rms_epsilon must be non-negative")
        try check(nVocab >= 1, "vocabulary is empty")
    }
}
