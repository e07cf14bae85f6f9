#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// The shape of multi-head latent attention (MLA).
public struct MLAShape: Sendable, Equatable {
    /// Rank of the query's low-rank path (q_a → norm → q_b); 0: one direct projection.
    public var qLoraRank: Int
    /// Rank of the compressed KV latent c_kv.
    public var kvLoraRank: Int
    /// Per-head query/key size: nope + rope (`attention.key_length_mla`).
    public var headDimK: Int
    /// Per-head value size (`attention.value_length_mla`).
    public var headDimV: Int
    /// Rotated (position) part of q and k (`rope.dimension_count`).
    public var ropeDim: Int
    public var nopeDim: Int { headDimK - ropeDim }
    /// One cache row per token and layer: c_kv followed by the roped key part.
    public var cacheRow: Int { kvLoraRank + ropeDim }
}

/// Weights of one MLA layer. k_b and v_b are per head (the split tensors converters write; the
/// older fused `attn_kv_b` is split at load).
struct MLAWeights {
    var qA: Matrix?                  // d → q_lora_rank
    var qANorm: UnsafePointer<Float>?
    var q: Matrix                    // d (or q_lora_rank) → n_head·(nope + rope)
    var kvA: Matrix                  // d → kv_lora_rank + rope
    var kvANorm: UnsafePointer<Float>
    var kB: ExpertStack              // per head: kv_lora_rank × nope (absorbs q_nope into latent space)
    var vB: ExpertStack              // per head: v_head × kv_lora_rank
}

/// DeepSeek-V2/V3, GLM-4.x MoE (`deepseek2`; llama.cpp src/models/deepseek2.cpp, MLA path).
///
///     q      = W_q x                or  W_qb · rmsnorm(W_qa x)             per head [q_nope, q_pe]
///     [c, k_pe] = W_kva x ;  c = rmsnorm(c) ;  k_pe, q_pe = rope(·)          (one shared k_pe)
///     score_h(j) = (W_kb,h q_nope,h) · c_j + q_pe,h · k_pe,j               (absorbed: MQA over [c, k_pe])
///     o_h = W_vb,h Σ_j softmax(score_h · s)_j c_j ;   out = W_o [o_1 … o_H]
///     s = mscale² / √(nope + rope), mscale = 1 + 0.1 · mscale_all_dim · ln(yarn factor)
///
/// The cache holds [c_j, k_pe,j] only: (kv_lora_rank + rope) elements per token and layer.
/// FFN: `leading_dense_block_count` dense layers, then MoE layers with always-on shared experts
/// and the router of `ExpertGating` (softmax top-k for V2, sigmoid + bias + groups for V3/GLM).
enum DeepSeek2 {
    static let arch = "deepseek2"

    static func readConfig(_ g: GGUFFile, into c: inout ModelConfig) throws {
        func key(_ k: String) -> Int? { g.int("\(arch).\(k)") }
        guard let r = key("attention.kv_lora_rank"), r >= 1, r <= 1 << 14 else {
            throw AdaKError.format("\(arch): attention.kv_lora_rank missing or out of range")
        }
        let qr = key("attention.q_lora_rank") ?? 0
        guard qr >= 0, qr <= 1 << 16 else { throw AdaKError.format("\(arch): attention.q_lora_rank \(qr) out of range") }
        let rope = c.nRot
        let dk: Int, dv: Int
        if let kMLA = key("attention.key_length_mla") {
            dk = kMLA
            dv = key("attention.value_length_mla") ?? kMLA
            let kl = key("attention.key_length") ?? 0, vl = key("attention.value_length") ?? 0
            guard kl == r + rope, vl == r else {
                throw AdaKError.format("\(arch): key_length \(kl) / value_length \(vl) must be kv_lora_rank + rope (\(r + rope)) / kv_lora_rank (\(r))")
            }
        } else {  // older files: the decompressed head sizes
            dk = key("attention.key_length") ?? 0
            dv = key("attention.value_length") ?? dk
        }
        guard dk > rope, dk <= ModelConfig.maxHeadDim, dv >= 1, dv <= ModelConfig.maxHeadDim, rope >= 2, rope % 2 == 0 else {
            throw AdaKError.format("\(arch): head sizes key \(dk), value \(dv), rope \(rope) are inconsistent")
        }
        c.mla = MLAShape(qLoraRank: qr, kvLoraRank: r, headDimK: dk, headDimV: dv, ropeDim: rope)
        // GLM's multi-token-prediction blocks follow the trunk (blk.n_layer…): the trunk alone runs
        let nextn = key("nextn_predict_layers") ?? 0
        guard nextn >= 0, nextn < c.nLayer else { throw AdaKError.format("\(arch).nextn_predict_layers \(nextn) out of range") }
        c.nLayer -= nextn
        // Mistral-Large's attention temperature tuning is not implemented: refuse rather than differ
        if let t = g.double("\(arch).attention.temperature_scale"), t != 0 {
            throw AdaKError.unsupported("\(arch).attention.temperature_scale (attention temperature tuning) is not supported")
        }
        // the engine's "KV head" is the latent row: one per token, shared by all heads
        c.nHeadKV = 1
        c.headDim = r + rope
        c.nLeadingDense = key("leading_dense_block_count") ?? 0
        guard c.nLeadingDense >= 0, c.nLeadingDense <= c.nLayer else {
            throw AdaKError.format("\(arch): leading_dense_block_count \(c.nLeadingDense) out of range")
        }
        let shared = key("expert_shared_count") ?? 0
        guard shared >= 0, shared <= 64 else { throw AdaKError.format("\(arch): expert_shared_count \(shared) out of range") }
        c.nFFShared = shared * c.nFFExpert
        // GLM-4.7-Flash files predate the key: llama.cpp recognises them by shape
        let glm = (c.nLayer == 47 || c.nLayer == 48) && c.nVocab == 154880
        c.gating = try ExpertGating.read(g, arch: arch, nExpert: c.nExpert, defaultFunction: glm ? .sigmoid : .softmax)
        c.traits.normalizeTopK = g.bool("\(arch).expert_weights_norm") ?? false
        // YaRN's attention temperature enters the score scale (llama.cpp deepseek2.cpp)
        let ext = c.rope.freqScale
        let attnOrg = c.rope.attnFactor * (1 + 0.1 * logf(1 / ext))
        let mscale = attnOrg * (1 + 0.1 * c.rope.yarnLogMul * logf(1 / ext))
        c.attentionScale = mscale * mscale / Float(dk).squareRoot()
    }

    /// Loads one layer's attention weights; `kv_b` (fused) is split per head into k_b and v_b.
    static func loadAttention(_ loader: WeightLoader, prefix p: String, shape s: MLAShape, config c: ModelConfig) throws -> MLAWeights {
        let d = c.nEmbd, h = c.nHead
        let qOut = h * s.headDimK
        var qA: Matrix? = nil, qANorm: UnsafePointer<Float>? = nil
        let q: Matrix
        if s.qLoraRank > 0 {
            qA = try loader.matrix(p + "attn_q_a.weight", rows: s.qLoraRank, cols: d)
            qANorm = try loader.vector(p + "attn_q_a_norm.weight", s.qLoraRank)
            q = try loader.matrix(p + "attn_q_b.weight", rows: qOut, cols: s.qLoraRank)
        } else {
            q = try loader.matrix(p + "attn_q.weight", rows: qOut, cols: d)
        }
        let kvA = try loader.matrix(p + "attn_kv_a_mqa.weight", rows: s.cacheRow, cols: d)
        let kvANorm = try loader.vector(p + "attn_kv_a_norm.weight", s.kvLoraRank)
        let kB: ExpertStack, vB: ExpertStack
        if loader.has(p + "attn_k_b.weight") {
            kB = try loader.experts(p + "attn_k_b.weight", count: h, rows: s.kvLoraRank, cols: s.nopeDim)
            vB = try loader.experts(p + "attn_v_b.weight", count: h, rows: s.headDimV, cols: s.kvLoraRank)
        } else if loader.has(p + "attn_kv_b.weight") {
            (kB, vB) = try splitKVB(loader, p + "attn_kv_b.weight", shape: s, nHead: h)
        } else {
            throw AdaKError.format("missing tensor '\(p)attn_k_b.weight' (or the fused '\(p)attn_kv_b.weight')")
        }
        return MLAWeights(qA: qA, qANorm: qANorm, q: q, kvA: kvA, kvANorm: kvANorm, kB: kB, vB: vB)
    }

    /// kv_b rows per head are [nope rows of k, v rows of v], each of kv_lora_rank columns; k_b
    /// needs the k block transposed (rank × nope). Both become f32 stacks.
    private static func splitKVB(_ loader: WeightLoader, _ name: String, shape s: MLAShape, nHead h: Int) throws -> (ExpertStack, ExpertStack) {
        let r = s.kvLoraRank, nope = s.nopeDim, dv = s.headDimV
        let all = try loader.f32Rows(name, rows: h * (nope + dv), cols: r)
        let kb = try loader.allocateFloats(h * r * nope), vb = try loader.allocateFloats(h * dv * r)
        for head in 0..<h {
            let base = all + head * (nope + dv) * r
            for i in 0..<nope { for j in 0..<r { kb[head * r * nope + j * nope + i] = base[i * r + j] } }
            (vb + head * dv * r).update(from: base + nope * r, count: dv * r)
        }
        let f32 = Int32(AKK_F32.rawValue)
        return (ExpertStack(type: f32, data: UnsafeRawPointer(kb), count: h, rows: r, cols: nope),
                ExpertStack(type: f32, data: UnsafeRawPointer(vb), count: h, rows: dv, cols: r))
    }

    /// Working memory of the MLA layers of one session.
    final class Scratch {
        let qa, qRaw, kv, heads: FloatBuffer
        let headIn: ActivationRows
        init(config c: ModelConfig, shape s: MLAShape, batch b: Int) throws {
            qa = try FloatBuffer(b * max(s.qLoraRank, 1))
            qRaw = try FloatBuffer(b * c.nHead * s.headDimK)
            kv = try FloatBuffer(b * s.cacheRow)
            heads = try FloatBuffer(b * c.nHead * s.headDimV)
            headIn = try ActivationRows(capacity: b * max(s.qLoraRank, s.nopeDim, s.kvLoraRank, c.nHead * s.headDimV, 32))
        }
    }

    /// The attention of layer `il` for `n` tokens whose normalised inputs are in `st.inA`;
    /// writes n × d rows to `out`.
    static func attention(_ st: ForwardState, _ w: MLAWeights, wo: Matrix, scratch m: Scratch, layer il: Int, rows n: Int,
                          pos0: Int, out: UnsafeMutablePointer<Float>) {
        let c = st.config
        guard let s = c.mla else { return }
        let h = c.nHead, r = s.kvLoraRank, rope = s.ropeDim, nope = s.nopeDim, dk = s.headDimK, dv = s.headDimV
        let row = s.cacheRow, qRow = h * row
        let eps = c.rmsEps

        // q (direct or low-rank) and the compressed KV with its rope part
        if let qA = w.qA, let qANorm = w.qANorm {
            st.linear(qA, st.inA, out: m.qa.p, outStride: s.qLoraRank)
            for t in 0..<n { akk_rmsnorm(m.qa.p + t * s.qLoraRank, qANorm, m.qa.p + t * s.qLoraRank, Int64(s.qLoraRank), eps) }
            m.headIn.set(m.qa.p, rows: n, cols: s.qLoraRank)
            st.linear(w.q, m.headIn, out: m.qRaw.p, outStride: h * dk)
        } else {
            st.linear(w.q, st.inA, out: m.qRaw.p, outStride: h * dk)
        }
        st.linear(w.kvA, st.inA, out: m.kv.p, outStride: row)
        for t in 0..<n {
            let kv = m.kv.p + t * row
            akk_rmsnorm(kv, w.kvANorm, kv, Int64(r), eps)
            c.rope.apply(kv + r, nHead: 1, headStride: row, nRot: rope, pos: pos0 + t, freqBase: c.ropeFreqBase, neox: false)
            c.rope.apply(m.qRaw.p + t * h * dk + nope, nHead: h, headStride: dk, nRot: rope, pos: pos0 + t,
                         freqBase: c.ropeFreqBase, neox: false)
        }

        // absorbed queries [W_kb,h q_nope,h , q_pe,h], one row of h·(r + rope) per token
        let Q = st.q.p
        for head in 0..<h {
            m.headIn.set(m.qRaw.p + head * dk, rows: n, cols: nope, stride: h * dk)
            st.linear(w.kB.expert(head), m.headIn, out: Q + head * row, outStride: qRow)
            for t in 0..<n { (Q + t * qRow + head * row + r).update(from: m.qRaw.p + t * h * dk + head * dk + nope, count: rope) }
        }

        // the latent cache: [c, k_pe] per token
        let cache = st.kCache(il)
        switch st.kvType {
        case .f32: (cache + pos0 * row).update(from: m.kv.p, count: n * row)
        case .f16:
            let c16 = UnsafeMutableRawPointer(cache).assumingMemoryBound(to: UInt16.self)
            akk_fp32_to_fp16_row(m.kv.p, c16 + pos0 * row, Int64(n * row))
        }

        // MQA over the latent: keys [c, k_pe] (r + rope), values c (the first r of the same row)
        let latent = st.attn.p   // n × h·r
        akk_attention_ext(Q, Int64(qRow), Int32(h), Int32(row), Int32(r), cache, Int64(row), 0, 1,
                          cache, Int64(row), 1, 0, latent, Int64(h * r), Int32(n), Int32(pos0),
                          c.attentionScale ?? 1 / Float(dk).squareRoot(), nil, 0, st.kvType.ggmlType,
                          st.attnScratch.p, Int32(st.threads))

        // per head back to value space, then the output projection
        for head in 0..<h {
            m.headIn.set(latent + head * r, rows: n, cols: r, stride: h * r)
            st.linear(w.vB.expert(head), m.headIn, out: m.heads.p + head * dv, outStride: h * dv)
        }
        m.headIn.set(m.heads.p, rows: n, cols: h * dv)
        st.linear(wo, m.headIn, out: out, outStride: c.nEmbd)
    }
}
