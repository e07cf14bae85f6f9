/// Batched decoding: several sessions of one model advance in ONE forward pass. The dense
/// matrices (Q/K/V, output, FFN, router, LM head) take all rows as one multi-token batch and the
/// grouped expert kernels a table with each row's own k, so the weights are read once per step
/// for every session; RoPE, the KV cache and attention run per session on its own cache, and
/// each session routes (policy, allocator, budget), samples and counts with its own settings.
/// A row's result does not depend on the other rows (every kernel computes each output with the
/// single-row sequence of operations), so a session's logits equal those of the same tokens
/// evaluated alone, to the bit (BatchTests).
extension Session {
    /// Appends `entry.tokens` to each `entry.session` (a token `generate` left pending first) and
    /// runs them in one forward pass; afterwards each session holds the logits of its last token
    /// (`logitRows` = 1), as after `evaluate`. The pass runs on the first session's threads and
    /// working memory, so all rows together must fit its batch size. Prompt chunks of newcomers
    /// and single decode tokens mix freely (the caller plans the steps: decode rows first, then
    /// prompt chunks up to a token budget). Sessions must be
    /// distinct and of one model. On error no session changes.
    public static func evaluate(batch entries: [(session: Session, tokens: [Int32])]) throws {
        guard let first = entries.first?.session else { throw AdaKError.invalidArgument("no sessions to evaluate") }
        var seen = Set<ObjectIdentifier>()
        var rows: [[Int32]] = []
        rows.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() {
            let s = e.session
            guard s.model === first.model else {
                throw AdaKError.invalidArgument("session \(i) belongs to another model than session 0")
            }
            guard seen.insert(ObjectIdentifier(s)).inserted else {
                throw AdaKError.invalidArgument("session \(i) appears twice in the batch")
            }
            let toks = (s.pending.map { [$0] } ?? []) + e.tokens
            guard !toks.isEmpty else { throw AdaKError.invalidArgument("no tokens to evaluate for session \(i)") }
            let nVocab = s.model.config.nVocab
            for (j, t) in e.tokens.enumerated() where t < 0 || Int(t) >= nVocab {
                throw AdaKError.invalidArgument("session \(i): token \(t) at index \(j) is not in the vocabulary (0..<\(nVocab))")
            }
            guard toks.count <= s.contextSize - s.position else {
                throw AdaKError.contextFull("session \(i): context full: \(s.position) + \(toks.count) tokens > context size \(s.contextSize)")
            }
            guard toks.count <= s.batchSize || !s.router.needsProbe(n: toks.count) else {
                throw AdaKError.invalidArgument("session \(i) is under a FLOPs budget and got \(toks.count) tokens; its n_batch is \(s.batchSize)")
            }
            rows.append(toks)
        }
        if entries.count == 1 {   // one session: its own evaluate (prefill in batches of its n_batch)
            try first.evaluate(entries[0].tokens)
            return
        }
        let total = rows.reduce(0) { $0 + $1.count }
        guard total <= first.batchSize else {
            throw AdaKError.invalidArgument("the batch has \(total) tokens; session 0's n_batch is \(first.batchSize)")
        }
        guard first.model.config.mla == nil else {
            throw AdaKError.unsupported("batched decoding of several sessions does not support multi-head latent attention yet")
        }
        try first.state.reserveLogits(rows: entries.count)
        for e in entries.dropFirst() { try e.session.state.reserveLogits(rows: 1) }

        // A session under a global budget first measures its rows alone, as `evaluate` does, and
        // fixes its price from them (Routing/Router.swift); the shared pass then routes at that price.
        for (e, toks) in zip(entries, rows) {
            toks.withUnsafeBufferPointer { e.session.measurePriceIfNeeded($0, pos0: e.session.position) }
        }

        var segments: [ForwardState.Segment] = []
        var start = 0
        for (e, toks) in zip(entries, rows) {
            let s = e.session
            segments.append(.init(owner: s.state, start: start, count: toks.count, pos0: s.position, router: s.router))
            start += toks.count
        }
        let flat = rows.flatMap { $0 }
        flat.withUnsafeBufferPointer { first.state.forward(tokens: $0, segments: segments, logits: .lastOfEach) }

        // row i of the first session's logits is session i's; the first keeps row 0
        let v = first.model.config.nVocab
        for (i, (e, toks)) in zip(entries, rows).enumerated() {
            let s = e.session
            if i > 0 { s.state.logits.p.update(from: first.state.logits.p + i * v, count: v) }
            let n = toks.count
            s.router.record(pos0: s.position, n: n) { $0 == n - 1 }
            s.pending = nil
            s.position += n
            s.tokens += toks
            s.logitRows = 1
            for t in toks { s.sampler.accept(t) }
        }
    }
}
