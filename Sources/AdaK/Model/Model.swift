#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// Options for loading a model.
public struct ModelParams: Sendable {
    /// Target format for tensors whose type the kernels do not run natively.
    public var weightType: WeightType = .q8_0
    /// Called while the weights are prepared with the fraction done, from 0 to 1 (once per
    /// layer, then 1 at the end); returning false cancels the load (`AdaKError.cancelled`).
    public var progress: (@Sendable (Double) -> Bool)? = nil
    /// Repack Q4_0 matrices into groups of 8 rows for the AVX2 kernels (decode and prefill ~1.5x
    /// faster). The sums run in another order than llama.cpp's plain Q4_0 dot product, so logits
    /// differ in the last bits (well inside the fixtures' tolerances); false keeps the plain
    /// layout, whose results equal llama.cpp's non-repacked x86 path to the bit.
    public var repack: Bool = true
    public init() {}
}

/// A loaded model: configuration, tokenizer and weights. Immutable after load and safe to share
/// between threads; sessions hold the per-sequence state.
public final class Model: @unchecked Sendable {
    public let config: ModelConfig
    public let tokenizer: Tokenizer
    public let gguf: GGUFFile
    public let layers: [LayerWeights]
    /// `token_embd.weight`: one row of n_embd per token, any dequantisable type.
    let embedding: (type: Int32, data: UnsafeRawPointer, rowBytes: Int)
    let outputNorm: UnsafePointer<Float>
    let output: Matrix
    private let owned: [UnsafeMutableRawPointer]

    /// Loads a GGUF file, or a Hugging Face checkpoint folder (see `HFCheckpoint`).
    public convenience init(path: String, params: ModelParams = ModelParams()) throws {
        let isHF = HFCheckpoint.isCheckpoint(path)
        try self.init(gguf: isHF ? HFCheckpoint.loadGGUF(directory: path) : GGUFFile(path: path), params: params)
    }

    /// Loads a GGUF model from bytes in memory (copied: the caller may free them afterwards).
    public convenience init(buffer: UnsafeRawBufferPointer, params: ModelParams = ModelParams()) throws {
        guard buffer.count > 0, buffer.baseAddress != nil else {
            throw AdaKError.invalidArgument("the buffer is empty (size must be 1...\(ModelLimits.maxFileBytes) bytes)")
        }
        guard buffer.count <= ModelLimits.maxFileBytes else {
            throw AdaKError.outOfMemory("\(buffer.count) bytes exceed the limit of \(ModelLimits.maxFileBytes)")
        }
        try self.init(gguf: GGUFFile(storage: MappedFile(copying: buffer), origin: "buffer"), params: params)
    }

    public init(gguf: GGUFFile, params: ModelParams = ModelParams()) throws {
        _ = CPUInfo.initialize
        gguf.storage.populate()
        self.gguf = gguf
        var config = try ModelConfig(gguf: gguf)
        tokenizer = try Tokenizer(gguf: gguf)
        let loader = WeightLoader(gguf: gguf, target: params.weightType, repack: params.repack)

        guard let embd = gguf.tensor("token_embd.weight"), embd.dims.count == 2, embd.dims[0] == config.nEmbd else {
            throw AdaKError.format("missing or misshapen token_embd.weight (expected [\(config.nEmbd), n_vocab])")
        }
        config.nVocab = embd.dims[1]
        guard tokenizer.vocabSize <= config.nVocab else {
            throw AdaKError.format("tokenizer has \(tokenizer.vocabSize) tokens but the embedding only \(config.nVocab)")
        }
        let embType = Int32(bitPattern: embd.type)
        var probe = [Float](repeating: 0, count: config.nEmbd)
        guard akk_dequantize_row(embType, gguf.data(embd), &probe, Int64(config.nEmbd)) == 0 else {
            throw AdaKError.unsupported("token_embd.weight: type \(embd.typeName) is not supported")
        }

        let d = config.nEmbd, hd = config.headDim
        let qDim = config.nHead * hd, kvDim = config.nHeadKV * hd
        // Progress in steps: one per layer, one for the output head.
        let steps = Double(config.nLayer + 1)
        func report(_ done: Int) throws {
            if let progress = params.progress, !progress(Double(done) / steps) {
                throw AdaKError.cancelled("model load cancelled by the progress callback")
            }
        }
        Log.info("loading \(config.arch) model '\(config.name)': \(config.nLayer) layers, n_embd \(config.nEmbd), \(config.nExpert) experts (\(config.nExpertUsed) used), weights as \(params.weightType.rawValue)")
        try report(0)
        var layers: [LayerWeights] = []
        for i in 0..<config.nLayer {
            let p = "blk.\(i)."
            // gpt-oss names its pre-FFN norm post_attention_norm
            let ffnNormName = config.arch == GptOss.arch ? "post_attention_norm.weight" : "ffn_norm.weight"
            var l: LayerWeights
            if let mla = config.mla {
                l = LayerWeights(attnNorm: try loader.vector(p + "attn_norm.weight", d),
                                 wo: try loader.matrix(p + "attn_output.weight", rows: d, cols: config.nHead * mla.headDimV),
                                 ffnNorm: try loader.vector(p + ffnNormName, d))
                l.mla = try DeepSeek2.loadAttention(loader, prefix: p, shape: mla, config: config)
            } else {
                l = LayerWeights(
                    attnNorm: try loader.vector(p + "attn_norm.weight", d),
                    wq: try loader.matrix(p + "attn_q.weight", rows: qDim, cols: d),
                    wk: try loader.matrix(p + "attn_k.weight", rows: kvDim, cols: d),
                    wv: try loader.matrix(p + "attn_v.weight", rows: kvDim, cols: d),
                    wo: try loader.matrix(p + "attn_output.weight", rows: d, cols: qDim),
                    ffnNorm: try loader.vector(p + ffnNormName, d))
            }
            l.bo = try loader.optionalVector(p + "attn_output.bias", d)
            if config.arch == GptOss.arch { l.sinks = try loader.vector(p + "attn_sinks.weight", config.nHead) }
            l.bq = try loader.optionalVector(p + "attn_q.bias", qDim)
            l.bk = try loader.optionalVector(p + "attn_k.bias", kvDim)
            l.bv = try loader.optionalVector(p + "attn_v.bias", kvDim)
            switch config.traits.qkNorm {
            case .none: break
            case .wholeProjection:
                l.qNorm = try loader.vector(p + "attn_q_norm.weight", qDim)
                l.kNorm = try loader.vector(p + "attn_k_norm.weight", kvDim)
            case .perHead:
                l.qNorm = try loader.vector(p + "attn_q_norm.weight", hd)
                l.kNorm = try loader.vector(p + "attn_k_norm.weight", hd)
            }
            if loader.has(p + "ffn_gate_inp.weight") {
                guard config.nExpert > 0 else {
                    throw AdaKError.format("layer \(i) has a router but \(config.arch).expert_count is missing")
                }
                let e = config.nExpert, f = config.nFFExpert
                guard f > 0 else { throw AdaKError.format("expert feed-forward length is missing") }
                l.router = try loader.matrix(p + "ffn_gate_inp.weight", rows: e, cols: d, forceF32: true)
                l.routerBias = try loader.optionalVector(p + "ffn_gate_inp.bias", e)
                l.gateExps = try loader.experts(p + "ffn_gate_exps.weight", count: e, rows: f, cols: d)
                l.upExps = try loader.experts(p + "ffn_up_exps.weight", count: e, rows: f, cols: d)
                l.downExps = try loader.experts(p + "ffn_down_exps.weight", count: e, rows: d, cols: f)
                l.expProbsBias = try loader.optionalVector(p + "exp_probs_b.bias", e)
                if config.arch == GptOss.arch {
                    l.gateExpsBias = UnsafePointer(try loader.f32Rows(p + "ffn_gate_exps.bias", rows: e, cols: f))
                    l.upExpsBias = UnsafePointer(try loader.f32Rows(p + "ffn_up_exps.bias", rows: e, cols: f))
                    l.downExpsBias = UnsafePointer(try loader.f32Rows(p + "ffn_down_exps.bias", rows: e, cols: d))
                }
                if loader.has(p + "ffn_up_shexp.weight") {
                    let fs = config.nFFShared > 0 ? config.nFFShared : f
                    l.sharedGate = try loader.matrix(p + "ffn_gate_shexp.weight", rows: fs, cols: d)
                    l.sharedUp = try loader.matrix(p + "ffn_up_shexp.weight", rows: fs, cols: d)
                    l.sharedDown = try loader.matrix(p + "ffn_down_shexp.weight", rows: d, cols: fs)
                    l.sharedGateInp = try loader.optionalVector(p + "ffn_gate_inp_shexp.weight", d)
                }
            } else {
                // deepseek2 (and any file stating leading dense layers): the rest must be MoE
                if config.nLeadingDense > 0 || config.arch == DeepSeek2.arch || config.arch == GptOss.arch,
                   i >= config.nLeadingDense, config.nExpert > 0 {
                    throw AdaKError.format("missing tensor '\(p)ffn_gate_inp.weight' (layer \(i) follows the \(config.nLeadingDense) leading dense layers)")
                }
                guard config.nFF > 0 else { throw AdaKError.format("\(config.arch).feed_forward_length is missing") }
                l.ffnGate = try loader.matrix(p + "ffn_gate.weight", rows: config.nFF, cols: d)
                l.ffnUp = try loader.matrix(p + "ffn_up.weight", rows: config.nFF, cols: d)
                l.ffnDown = try loader.matrix(p + "ffn_down.weight", rows: d, cols: config.nFF)
            }
            layers.append(l)
            try report(i + 1)
        }
        outputNorm = try loader.vector("output_norm.weight", d)
        let outName = loader.has("output.weight") ? "output.weight" : "token_embd.weight"
        output = try loader.matrix(outName, rows: config.nVocab, cols: d, mayRepack: outName == "output.weight")
        // A tied head was copied to huge pages in the file's row layout (its file pages released:
        // a 30 MB head on 4 KB pages streamed at half the read probe): the lookups read that copy.
        // A head converted to another type keeps the lookups on the file's rows.
        let embRowBytes = Int(akk_row_bytes(embType, Int64(config.nEmbd)))
        embedding = outName == "token_embd.weight" && output.type == embType
            ? (embType, output.data, embRowBytes) : (embType, gguf.data(embd), embRowBytes)
        self.layers = layers
        self.config = config
        try report(config.nLayer + 1)
        owned = loader.releaseOwnership()
        Log.debug("model loaded: \(config.nVocab) tokens, \(layers.filter(\.isMoE).count) MoE layers")
    }

    deinit { for p in owned { free(p) } }

    /// Bytes of weights a token reads with every expert at native top-k (for roofline estimates).
    public var fileSize: Int { gguf.storage.count }
}
