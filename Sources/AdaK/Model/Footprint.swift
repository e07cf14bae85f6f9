/// What a decoded token reads from memory, for roofline estimates.
extension Model {
    /// Weight bytes one decoded token reads when every MoE layer activates `k` experts
    /// (nil: native K): attention, norms, dense FFNs, routers, k experts, shared experts,
    /// the LM head and one embedding row.
    public func weightBytesPerToken(k: Double? = nil) -> Double {
        let c = config
        let kk = k ?? Double(c.nExpertUsed)
        var b = 0.0
        for l in layers {
            b += Double(l.wq.byteCount + l.wk.byteCount + l.wv.byteCount + l.wo.byteCount)
            b += Double(2 * c.nEmbd * 4)
            if let g = l.ffnGate, let u = l.ffnUp, let d = l.ffnDown {
                b += Double(g.byteCount + u.byteCount + d.byteCount)
            }
            if let r = l.router, let g = l.gateExps, let u = l.upExps, let d = l.downExps {
                b += Double(r.byteCount)
                b += kk * Double(g.expert(0).byteCount + u.expert(0).byteCount + d.expert(0).byteCount)
            }
            if let g = l.sharedGate, let u = l.sharedUp, let d = l.sharedDown {
                b += Double(g.byteCount + u.byteCount + d.byteCount)
            }
        }
        b += Double(output.byteCount + embedding.rowBytes + c.nEmbd * 4)
        return b
    }

    /// Bytes of the KV cache a token at `position` reads (K and V over the context).
    public func kvBytesPerToken(position: Int, kvType: KVCacheType = .f32) -> Double {
        Double(2 * config.nLayer * config.nHeadKV * config.headDim * kvType.bytes * (position + 1))
    }
}
