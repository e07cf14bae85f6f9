import CAdaKKernels

/// OpenAI gpt-oss (`gpt-oss`, GptOssForCausalLM; llama.cpp src/models/openai-moe.cpp).
///
///     h ← h + W_o attn(rope_yarn(W_q x + b_q), rope_yarn(W_k x + b_k), W_v x + b_v) + b_o,  x = rmsnorm(h)
///         attn: softmax over [scores · 1/√head_dim, sink_h] (the sink only joins the denominator);
///         layers alternate sliding-window (`sliding_window` tokens, even layers) and full attention
///     h ← h + Σ_{j ≤ k} w_j · (W_down,e (swiglu_oai(W_gate,e x + b_gate,e, W_up,e x + b_up,e)) + b_down,e)
///         router: logits = W_r x + b_r; top-k; w = softmax over the chosen logits (= the softmax
///         renormalised over the chosen experts); swiglu_oai(g, u) = g'·σ(1.702 g')·(u' + 1),
///         g' = min(g, 7), u' = clamp(u, −7, 7)
///
/// Real files store the experts as MXFP4; they load once the kernels know that type.
enum GptOss {
    static let arch = "gpt-oss"
    static let swigluAlpha: Float = 1.702
    static let swigluLimit: Float = 7

    static func readConfig(_ g: GGUFFile, into c: inout ModelConfig) throws {
        guard let w = g.int("\(arch).attention.sliding_window"), w >= 1, w <= ModelConfig.maxContext else {
            throw AdaKError.format("\(arch).attention.sliding_window missing or out of range")
        }
        c.slidingWindow = w
        let key = "\(arch).attention.sliding_window_pattern"
        if let a = g.metadata[key]?.arrayValue {
            let flags = a.map { $0.boolValue ?? (($0.intValue ?? 0) != 0) }
            guard flags.count == c.nLayer else {
                throw AdaKError.format("\(key) has \(flags.count) entries for \(c.nLayer) layers")
            }
            c.swaLayers = flags
        } else {
            // llama.cpp's set_swa_pattern: layer il slides iff il % n < n − 1 (default n = 2)
            let n = g.int(key) ?? 2
            guard n >= 0, n <= c.nLayer + 1 else { throw AdaKError.format("\(key) \(n) out of range") }
            c.swaLayers = (0..<c.nLayer).map { n == 0 || $0 % n < n - 1 }
        }
    }

    /// The routed experts with their biases and the clamped SwiGLU: out[t] = Σ_j w_tj · E_j(x_t)
    /// over the first ks[t] slots, summed in slot order.
    static func experts(table: ExpertTable, ks: [Int], tokens n: Int, layer L: LayerWeights,
                        state st: ForwardState, out: UnsafeMutablePointer<Float>) {
        guard let gate = L.gateExps, let up = L.upExps, let down = L.downExps,
              let gb = L.gateExpsBias, let ub = L.upExpsBias, let db = L.downExpsBias,
              let x = st.inA.src else { return }
        let d = st.config.nEmbd, f = gate.rows, kMax = max(table.kMax, 1)
        // slots grouped by expert; each expert runs once over its rows
        var slotsOf = [[Int]](repeating: [], count: gate.count)
        for t in 0..<n { for j in 0..<min(ks[t], kMax) {
            let e = Int(table.ids[t * kMax + j])
            if e >= 0 && e < gate.count { slotsOf[e].append(t * kMax + j) }
        } }
        let maxRows = slotsOf.map(\.count).max() ?? 0
        guard maxRows > 0, let xin = try? ActivationRows(capacity: maxRows * max(d, f)),
              let hin = try? ActivationRows(capacity: maxRows * max(d, f)) else {
            out.update(repeating: 0, count: n * d)
            return
        }
        var xs = [Float](repeating: 0, count: maxRows * d)
        var g = [Float](repeating: 0, count: maxRows * f), u = g
        var slotOut = [Float](repeating: 0, count: n * kMax * d)
        for e in 0..<gate.count where !slotsOf[e].isEmpty {
            let rows = slotsOf[e]
            xs.withUnsafeMutableBufferPointer { xb in
            g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeMutableBufferPointer { up2 in
            slotOut.withUnsafeMutableBufferPointer { so in
                let X = xb.baseAddress!, G = gp.baseAddress!, U = up2.baseAddress!
                for (r, slot) in rows.enumerated() { (X + r * d).update(from: x + (slot / kMax) * d, count: d) }
                xin.set(X, rows: rows.count, cols: d)
                st.linear(gate.expert(e), xin, out: G, outStride: f)
                st.linear(up.expert(e), xin, out: U, outStride: f)
                for r in 0..<rows.count {
                    for i in 0..<f { G[r * f + i] += gb[e * f + i]; U[r * f + i] += ub[e * f + i] }
                    akk_swiglu_oai(G + r * f, U + r * f, G + r * f, Int64(f), swigluAlpha, swigluLimit)
                }
                hin.set(G, rows: rows.count, cols: f)
                st.linear(down.expert(e), hin, out: X, outStride: d)
                for (r, slot) in rows.enumerated() {
                    let o = so.baseAddress! + slot * d
                    for i in 0..<d { o[i] = X[r * d + i] + db[e * d + i] }
                }
            } } } }
        }
        for t in 0..<n {
            let o = out + t * d
            o.update(repeating: 0, count: d)
            for j in 0..<min(ks[t], kMax) where table.ids[t * kMax + j] >= 0 {
                let w = table.weights[t * kMax + j]
                slotOut.withUnsafeBufferPointer { so in
                    let src = so.baseAddress! + (t * kMax + j) * d
                    for i in 0..<d { o[i] += w * src[i] }
                }
            }
        }
    }
}
