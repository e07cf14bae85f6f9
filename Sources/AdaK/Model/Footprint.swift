/// What a decoded token reads from memory, for roofline estimates.
extension Model {
    /// Weight bytes one decoded token reads when every MoE layer activates `k` experts
    /// (nil: native K): attention, norms, dense FFNs, routers, k experts, shared experts,
    /// the LM head and one embedding row.
    public func weightBytesPerToken(k: Double? = nil) -> Double {
        let b = bytesPerStep(k: k, position: 0)
        return b.reduce(0, +) - b[PhaseClock.Phase.attention.rawValue]
    }

    /// What a decoded token reads in each step of the forward pass (indexed by
    /// `PhaseClock.Phase.rawValue`): the weights of `weightBytesPerToken(k:)` by the step that
    /// reads them, and as the attention's, the KV cache at `position`.
    public func bytesPerStep(k: Double? = nil, position: Int, kvType: KVCacheType = .f32) -> [Double] {
        typealias Phase = PhaseClock.Phase
        let c = config
        let kk = k ?? Double(c.nExpertUsed)
        var b = [Double](repeating: 0, count: Phase.allCases.count)
        func add(_ p: Phase, _ bytes: Double) { b[p.rawValue] += bytes }
        for l in layers {
            add(.qkv, Double([l.wq, l.wk, l.wv].reduce(0) { $0 + ($1?.byteCount ?? 0) }))
            if let m = l.mla {
                let stacks = [m.kB, m.vB].reduce(0) { $0 + $1.count * $1.expert(0).byteCount }
                add(.qkv, Double((m.qA?.byteCount ?? 0) + m.q.byteCount + m.kvA.byteCount + stacks))
            }
            add(.attnOutput, Double(l.wo.byteCount))
            add(.norms, Double(2 * c.nEmbd * 4))
            if let g = l.ffnGate, let u = l.ffnUp, let d = l.ffnDown {
                add(.ffn, Double(g.byteCount + u.byteCount + d.byteCount))
            }
            if let r = l.router, let g = l.gateExps, let u = l.upExps, let d = l.downExps {
                add(.router, Double(r.byteCount))
                add(.experts, kk * Double(g.expert(0).byteCount + u.expert(0).byteCount + d.expert(0).byteCount))
            }
            if let g = l.sharedGate, let u = l.sharedUp, let d = l.sharedDown {
                add(.experts, Double(g.byteCount + u.byteCount + d.byteCount))
            }
        }
        add(.lmHead, Double(output.byteCount + c.nEmbd * 4))
        add(.embed, Double(embedding.rowBytes))
        add(.attention, kvBytesPerToken(position: position, kvType: kvType))
        return b
    }

    /// Bytes of the KV cache a token at `position` reads (K and V over the context; multi-head
    /// latent attention keeps one latent row per token and layer).
    public func kvBytesPerToken(position: Int, kvType: KVCacheType = .f32) -> Double {
        let blocks = config.mla == nil ? 2 : 1
        return Double(blocks * config.nLayer * config.nHeadKV * config.headDim * kvType.bytes * (position + 1))
    }
}
