/// Which tensor gets which type: llama.cpp's quantizer rules (llama-quant.cpp, llama-cpp-python
/// 0.3.36) for the file types `adak quantize` writes, with default parameters and no importance
/// matrix. Tensors are visited in llama.cpp's order (`QuantMix.order`) because some rules count
/// the tensors seen so far.

import CAdaKKernels

/// A file type (llama.cpp's `llama_ftype`) that `adak quantize` can write.
public enum QuantFileType: String, CaseIterable, Sendable {
    case f16 = "F16"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
    case q2_k = "Q2_K", q3_k_s = "Q3_K_S", q3_k_m = "Q3_K_M", q3_k_l = "Q3_K_L"
    case q4_k_s = "Q4_K_S", q4_k_m = "Q4_K_M", q5_k_s = "Q5_K_S", q5_k_m = "Q5_K_M", q6_k = "Q6_K"
    case iq4_nl = "IQ4_NL", iq4_xs = "IQ4_XS", mxfp4_moe = "MXFP4_MOE"

    /// Parses a name case-insensitively ("q4_k_m", "Q4_K_M").
    public init?(name: String) {
        guard let t = QuantFileType(rawValue: name.uppercased()) else { return nil }
        self = t
    }

    /// The llama_ftype number written to `general.file_type`.
    public var llamaFtype: UInt32 {
        switch self {
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q2_k: 10
        case .q3_k_s: 11
        case .q3_k_m: 12
        case .q3_k_l: 13
        case .q4_k_s: 14
        case .q4_k_m: 15
        case .q5_k_s: 16
        case .q5_k_m: 17
        case .q6_k: 18
        case .iq4_nl: 25
        case .iq4_xs: 30
        case .mxfp4_moe: 38
        }
    }

    /// The type most tensors get (llama_ftype_get_default_type).
    public var defaultType: UInt32 {
        switch self {
        case .f16: GGMLType.f16
        case .q4_0: GGMLType.q4_0
        case .q4_1: GGMLType.q4_1
        case .q5_0: GGMLType.q5_0
        case .q5_1: GGMLType.q5_1
        case .q8_0: GGMLType.q8_0
        case .q2_k: GGMLType.q2_k
        case .q3_k_s, .q3_k_m, .q3_k_l: GGMLType.q3_k
        case .q4_k_s, .q4_k_m: GGMLType.q4_k
        case .q5_k_s, .q5_k_m: GGMLType.q5_k
        case .q6_k: GGMLType.q6_k
        case .iq4_nl: GGMLType.iq4_nl
        case .iq4_xs: GGMLType.iq4_xs
        case .mxfp4_moe: GGMLType.mxfp4
        }
    }
}

/// GGML type numbers used by the quantizer.
public enum GGMLType {
    public static let f32: UInt32 = 0, f16: UInt32 = 1, q4_0: UInt32 = 2, q4_1: UInt32 = 3
    public static let q5_0: UInt32 = 6, q5_1: UInt32 = 7, q8_0: UInt32 = 8
    public static let q2_k: UInt32 = 10, q3_k: UInt32 = 11, q4_k: UInt32 = 12, q5_k: UInt32 = 13, q6_k: UInt32 = 14
    public static let iq4_nl: UInt32 = 20, iq4_xs: UInt32 = 23, bf16: UInt32 = 30, mxfp4: UInt32 = 39

    /// Block-quantised (not F32/F16/BF16).
    public static func isQuantized(_ t: UInt32) -> Bool { t != f32 && t != f16 && t != bf16 }

    /// Elements per block (1 for float types); 0 when unknown.
    public static func blockSize(_ t: UInt32) -> Int {
        Int(akq_block_elems(Int32(bitPattern: t)))
    }

    public static func name(_ t: UInt32) -> String {
        switch t {
        case iq4_nl: "iq4_nl"
        case iq4_xs: "iq4_xs"
        case mxfp4: "mxfp4"
        default: String(cString: akk_type_name(Int32(bitPattern: t)))
        }
    }
}

/// What the rules need to know about the model (llama.cpp's hparams and arch).
public struct QuantModelInfo: Sendable {
    public var arch: String
    public var nLayer: Int
    public var nExpert: Int
    /// Heads and KV heads of layer 0 (n_gqa() = nHead / nHeadKV, 0 when nHeadKV is 0).
    public var nHead: Int
    public var nHeadKV: Int
    /// llama.cpp's LLM_TYPE_70B, the only model size the rules look at.
    public var is70B: Bool

    public var nGQA: Int { nHeadKV == 0 ? 0 : nHead / nHeadKV }

    /// Reads the hyper-parameters llama.cpp's loader reads for the quantizer.
    public init(file: GGUFFile) throws {
        guard let arch = file.string("general.architecture") else {
            throw AdaKError.format("missing general.architecture")
        }
        self.arch = arch
        guard let n = file.int("\(arch).block_count"), n > 0 else {
            throw AdaKError.format("missing or invalid \(arch).block_count")
        }
        nLayer = n
        nExpert = file.int("\(arch).expert_count") ?? 0
        func first(_ key: String) -> Int? { file.int(key) ?? file.intArray(key)?.first }
        nHead = first("\(arch).attention.head_count") ?? 0
        nHeadKV = first("\(arch).attention.head_count_kv") ?? nHead
        switch arch {
        case "llama": is70B = nExpert != 8 && n == 80 && nHead != nHeadKV
        case "deci", "olmo", "qwen2": is70B = n == 80
        case "jais2": is70B = n == 68
        default: is70B = false
        }
    }
}

/// The rules' broad tensor categories (llama.cpp's tensor_category).
enum TensorCategory {
    case tokenEmbd, attnQ, attnV, attnK, attnQKV, attnKVB, attnOutput, ffnUp, ffnGate, ffnDown, output, other

    init(name: String) {
        if name == "output.weight" { self = .output }
        else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { self = .tokenEmbd }
        else if name.contains("attn_qkv.weight") { self = .attnQKV }
        else if name.contains("attn_kv_b.weight") { self = .attnKVB }
        else if name.contains("attn_v.weight") { self = .attnV }
        else if name.contains("attn_k.weight") { self = .attnK }
        else if name.contains("attn_q.weight") { self = .attnQ }
        else if name.contains("attn_output.weight") { self = .attnOutput }
        else if name.contains("ffn_up") { self = .ffnUp }
        else if name.contains("ffn_gate") { self = .ffnGate }
        else if name.contains("ffn_down") { self = .ffnDown }
        else { self = .other }
    }

    var isAttnV: Bool { self == .attnV || self == .attnQKV || self == .attnKVB }
}

/// The type decisions for one file, made tensor by tensor in `order`.
public struct QuantMix {
    public let fileType: QuantFileType
    public let model: QuantModelInfo
    private var nAttnV = 0, iAttnV = 0, iFFNDown = 0, iFFNGate = 0, iFFNUp = 0
    private let tiedEmbeddings: Bool

    /// `names` are all tensor names of the file (any order).
    public init(fileType: QuantFileType, model: QuantModelInfo, names: [String]) {
        self.fileType = fileType
        self.model = model
        nAttnV = names.filter { TensorCategory(name: $0).isAttnV }.count
        tiedEmbeddings = !names.contains("output.weight")
    }

    /// llama.cpp's tensor order (its weights map): by the layer number of "blk.N." (-1 for other
    /// tensors), then by name (bytewise).
    public static func order(_ names: [String]) -> [String] {
        names.sorted { a, b in
            let la = layerNumber(a) ?? -1, lb = layerNumber(b) ?? -1
            if la != lb { return la < lb }
            return a.utf8.lexicographicallyPrecedes(b.utf8)
        }
    }

    /// N of a name starting "blk.N" (sscanf("blk.%d.") semantics: optional sign, digits).
    static func layerNumber(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        var rest = Substring(name.dropFirst(4))
        while let c = rest.first, c == " " || c == "\t" || c == "\n" { rest = rest.dropFirst() }
        var sign = 1
        if let c = rest.first, c == "-" || c == "+" {
            if c == "-" { sign = -1 }
            rest = rest.dropFirst()
        }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let v = Int(digits) else { return nil }
        return sign * v
    }

    /// Whether llama.cpp quantizes this tensor at all (tensor_allows_quantization).
    public static func allowsQuantization(name: String, nDims: Int, arch: String) -> Bool {
        guard nDims >= 2, name.hasSuffix("weight") else { return false }
        var excluded = ["_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
                        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight",
                        "indexer.k_proj.weight", "indexer.q_proj.weight",
                        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
                        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
                        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                        "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
                        ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd"]
        if arch == "glm5-next" {
            excluded += ["hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate",
                         "indexer_compressor_ape", "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight",
                         "ssm_g_b.weight", "ssm_beta.weight", "attn_kv_a_mqa.weight", "attn_k_b.weight",
                         "attn_v_b.weight"]
        }
        if excluded.contains(where: { name.contains($0) }) { return false }
        return name != "position_embd.weight" && name != "token_types.weight"
    }

    /// The output type of a tensor (llama_tensor_get_type); call once per tensor in `order`.
    /// `dims` in ggml order; `type` its current type.
    public mutating func targetType(name: String, dims: [Int], type: UInt32) throws -> UInt32 {
        let nDims = dims.lastIndex(where: { $0 != 1 }).map { $0 + 1 } ?? 1
        guard QuantMix.allowsQuantization(name: name, nDims: nDims, arch: model.arch) else { return type }
        let base = fileType.defaultType
        guard GGMLType.isQuantized(base) else { return base }
        let chosen = try mixType(name: name, dims: dims, base: base)
        return fallback(chosen, ncols: dims[0])
    }

    /// A type whose block does not divide the row length falls back (tensor_type_fallback).
    private func fallback(_ t: UInt32, ncols: Int) -> UInt32 {
        let block = GGMLType.blockSize(t)
        guard block > 0, ncols % block != 0 else { return t }
        var r = t
        switch t {
        case GGMLType.iq4_xs: r = GGMLType.iq4_nl
        case GGMLType.q2_k, GGMLType.q3_k: r = GGMLType.q4_0
        case GGMLType.q4_k: r = GGMLType.q5_0
        case GGMLType.q5_k: r = GGMLType.q5_1
        case GGMLType.q6_k: r = GGMLType.q8_0
        default: break // a 32-element type has nothing smaller: F16 below
        }
        if ncols % GGMLType.blockSize(r) != 0 { r = GGMLType.f16 }
        return r
    }

    private static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// The layer of an FFN tensor: the running count for dense models, the name's for MoE.
    private func layer(_ counter: Int, name: String) throws -> Int {
        guard model.nExpert > 1 else { return counter }
        guard let l = QuantMix.layerNumber(name) else {
            throw AdaKError.format("failed to determine the layer of tensor '\(name)'")
        }
        guard l >= 0, l < model.nLayer else {
            throw AdaKError.format("bad layer \(l) for tensor '\(name)': must be in [0, \(model.nLayer))")
        }
        return l
    }

    /// llama_tensor_get_type_impl for the file types above.
    private mutating func mixType(name: String, dims: [Int], base: UInt32) throws -> UInt32 {
        let ft = fileType
        let cat = TensorCategory(name: name)
        let arch = model.arch
        let falcon = arch == "falcon"
        var t = base
        if cat == .output || (tiedEmbeddings && cat == .tokenEmbd) {
            if ft == .mxfp4_moe { t = GGMLType.q8_0 }
            else if falcon || dims[0] % GGMLType.blockSize(t) != 0 { t = GGMLType.q8_0 }
            else if t != GGMLType.q8_0 { t = GGMLType.q6_k }
        } else if ft == .mxfp4_moe {
            // Expert tensors (3-D) -> MXFP4, everything else -> Q8_0.
            let isExpert = dims.count > 2 && dims[2] > 1
            let bailingExpert = cat == .ffnUp || cat == .ffnGate || cat == .ffnDown
            t = isExpert && (arch != "bailingmoe3" || bailingExpert) ? GGMLType.mxfp4 : GGMLType.q8_0
        } else if cat == .tokenEmbd {
            // unchanged for these file types
        } else if cat.isAttnV {
            switch ft {
            case .q2_k: t = model.nGQA >= 4 ? GGMLType.q4_k : GGMLType.q3_k
            case .q3_k_m: t = iAttnV < 2 ? GGMLType.q5_k : GGMLType.q4_k
            case .q3_k_l: t = GGMLType.q5_k
            case .iq4_nl, .iq4_xs: if model.nGQA >= 4 { t = GGMLType.q5_k }
            case .q4_k_m, .q5_k_m: if QuantMix.useMoreBits(iAttnV, nAttnV) { t = GGMLType.q6_k }
            case .q4_k_s: if iAttnV < 4 { t = GGMLType.q5_k }
            default: break
            }
            if model.is70B, t == GGMLType.q3_k || t == GGMLType.q4_k { t = GGMLType.q5_k }
            if model.nExpert == 8 { t = GGMLType.q8_0 }
            iAttnV += 1
        } else if cat == .attnK {
            if model.nExpert == 8 { t = GGMLType.q8_0 }
        } else if cat == .attnQ {
            // unchanged for these file types
        } else if cat == .ffnDown {
            let i = try layer(iFFNDown, name: name), n = model.nLayer
            let more = QuantMix.useMoreBits(i, n)
            switch ft {
            case .q2_k: t = GGMLType.q3_k
            case .q3_k_m: t = i < n / 16 ? GGMLType.q5_k : (!falcon || more) ? GGMLType.q4_k : GGMLType.q3_k
            case .q3_k_l: t = falcon ? GGMLType.q4_k : GGMLType.q5_k
            case .q4_k_m:
                if falcon { t = i < n / 16 ? GGMLType.q6_k : more ? GGMLType.q5_k : GGMLType.q4_k }
                else if more { t = GGMLType.q6_k }
            case .iq4_nl, .iq4_xs: if i < n / 8 { t = GGMLType.q5_k }
            case .q5_k_m: if more { t = GGMLType.q6_k }
            case .q4_k_s: if !falcon, i < n / 8 { t = GGMLType.q5_k }
            default: break
            }
            iFFNDown += 1
        } else if cat == .attnOutput {
            if !falcon {
                if model.nExpert == 8 {
                    if [.q2_k, .q3_k_s, .q3_k_m, .iq4_nl, .q4_k_s, .q4_k_m, .iq4_xs].contains(ft) { t = GGMLType.q5_k }
                } else {
                    switch ft {
                    case .q2_k: t = GGMLType.q3_k
                    case .q3_k_m: t = GGMLType.q4_k
                    case .q3_k_l: t = GGMLType.q5_k
                    default: break
                    }
                }
            } else if ft == .q3_k_l {
                t = GGMLType.q4_k
            }
        } else if cat == .attnQKV {
            switch ft {
            case .q3_k_m, .q3_k_l: t = GGMLType.q4_k
            case .q4_k_m: t = GGMLType.q5_k
            case .q5_k_m: t = GGMLType.q6_k
            default: break
            }
        } else if cat == .ffnGate {
            _ = try layer(iFFNGate, name: name)
            iFFNGate += 1
        } else if cat == .ffnUp {
            _ = try layer(iFFNUp, name: name)
            iFFNUp += 1
        }
        return t
    }
}
