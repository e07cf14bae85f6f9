import CAdaKKernels

/// The working memory of one session and the forward pass over it: embeddings → per layer
/// (RMSNorm → attention → RMSNorm → dense FFN or MoE) → final norm → LM head.
/// Read it top to bottom; each step mirrors one line of llama.cpp's graph for the architecture.
final class ForwardState {
    let model: Model
    let config: ModelConfig
    let threads: Int
    let nCtx: Int
    let maxBatch: Int

    // KV cache as llama.cpp keeps it without flash attention, f32 or f16 (`kvType`): K per layer
    // nCtx rows of nHeadKV*headDim; V per layer TRANSPOSED, nHeadKV*headDim rows of nCtx (row =
    // one dimension over all positions), so KQV is a dot over positions like ggml's
    // mul_mat(v_trans, kq). The buffers hold elements of kvType (an f16 cache uses half of each).
    let kvType: KVCacheType
    /// One block for every layer's K and V (layer l: K at 2l, V at 2l+1, each `kvLayerFloats`
    /// floats): large enough for transparent huge pages (FloatBuffer), so the attention's reads
    /// of the cache do not walk a page table every 4 KB.
    /// Multi-head latent attention keeps one block per layer (the latent rows, `kCache`).
    private let kvArena: FloatBuffer
    private let kvLayerFloats: Int
    private let kvBlocks: Int
    func kCache(_ layer: Int) -> UnsafeMutablePointer<Float> { kvArena.p + (kvBlocks * layer) * kvLayerFloats }
    func vCache(_ layer: Int) -> UnsafeMutablePointer<Float> { kvArena.p + (kvBlocks * layer + 1) * kvLayerFloats }
    /// Bytes the KV cache holds per token over all layers.
    var kvBytesPerToken: Int { kvBlocks * config.nLayer * config.nHeadKV * config.headDim * kvType.bytes }
    let mlaScratch: DeepSeek2.Scratch?

    // activations, maxBatch rows each
    let x, xn, q, k, v, attn, tmp: FloatBuffer
    let ffA, ffB: FloatBuffer            // FFN hidden (maxBatch × widest FFN)
    let attnScratch: FloatBuffer
    let ffQ: FloatBuffer                 // FFN hidden in the down weights' vec-dot format
    let ones: FloatBuffer                // maxBatch weights of 1
    let inA: ActivationRows               // shared input of Q/K/V, FFN gate/up
    let inB: ActivationRows               // input of attn_output, FFN down
    let moe: MoEScratch?
    private let mmJobs = UnsafeMutablePointer<akk_mm_job>.allocate(capacity: 4)
    private(set) var logits: FloatBuffer
    /// Carving's activation capture (Sources/AdaK/Carving), nil otherwise: after each dense FFN,
    /// (layer, rows, FFN input rows n × d, hidden silu(gate·x) ⊙ (up·x) rows n × n_ff).
    var ffnCapture: ((Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void)? = nil
    /// Times the steps of one-token passes when set (PhaseClock).
    var phaseClock: PhaseClock? = nil

    init(model: Model, contextSize: Int, batchSize: Int, threads: Int, kvType: KVCacheType = .f32) throws {
        self.model = model
        self.kvType = kvType
        config = model.config
        self.threads = threads
        nCtx = contextSize
        maxBatch = batchSize
        let c = config
        let kvDim = c.nHeadKV * c.headDim, qDim = c.nHead * c.headDim
        let (kvElems, o1) = contextSize.multipliedReportingOverflow(by: kvDim)
        guard !o1, kvElems * c.nLayer <= 1 << 36 else {
            throw AdaKError.outOfMemory("KV cache for \(contextSize) tokens is too large")
        }
        let kvFloats = kvType == .f16 ? (kvElems + 1) / 2 : kvElems
        kvLayerFloats = (kvFloats + 15) / 16 * 16   // 64-byte aligned layers
        kvBlocks = c.mla == nil ? 2 : 1
        kvArena = try FloatBuffer(kvBlocks * c.nLayer * kvLayerFloats)
        mlaScratch = try c.mla.map { try DeepSeek2.Scratch(config: c, shape: $0, batch: batchSize) }
        x = try FloatBuffer(batchSize * c.nEmbd)
        xn = try FloatBuffer(batchSize * c.nEmbd)
        q = try FloatBuffer(batchSize * qDim)
        k = try FloatBuffer(batchSize * kvDim)
        v = try FloatBuffer(batchSize * kvDim)
        attn = try FloatBuffer(batchSize * qDim)
        tmp = try FloatBuffer(batchSize * c.nEmbd)
        let widest = max(c.nFF, c.nFFShared, c.nFFExpert, 1)
        ffA = try FloatBuffer(batchSize * widest)
        ffB = try FloatBuffer(batchSize * widest)
        attnScratch = try FloatBuffer(max(threads, config.nHead) * contextSize)  // adak_ops.h: akk_attention
        ffQ = try FloatBuffer(batchSize * widest, zeroed: false)
        ones = try FloatBuffer(batchSize)
        ones.p.update(repeating: 1, count: batchSize)
        let widestIn = max(c.nEmbd, qDim, widest)
        inA = try ActivationRows(capacity: batchSize * widestIn, threads: threads)
        inB = try ActivationRows(capacity: batchSize * widestIn, threads: threads)
        moe = c.isMoE ? try MoEScratch(config: c, batchSize: batchSize) : nil
        logits = try FloatBuffer(c.nVocab)
    }

    deinit { mmJobs.deallocate() }

    func reserveLogits(rows: Int) throws {
        if logits.count < rows * config.nVocab { logits = try FloatBuffer(rows * config.nVocab) }
    }

    /// Moves logit rows 1...rows down by one (after an implicit pending token was evaluated).
    func dropFirstLogitRow(rows: Int) {
        let v = config.nVocab
        (logits.p).update(from: logits.p + v, count: rows * v)
    }

    enum LogitRows {
        case none, last, all(firstRow: Int), lastOfEach
        var isLast: Bool { if case .last = self { return true } else { return false } }
    }

    /// y[t] = W · input[t] for `n` rows of `input`.
    @inline(__always)
    func linear(_ w: Matrix, _ input: ActivationRows, out: UnsafeMutablePointer<Float>, outStride: Int) {
        let (xq, stride) = input.input(for: w.type)
        akk_matmul(w.type, w.data, Int64(w.rows), Int64(w.cols), xq, Int64(stride), Int64(input.rows),
                   out, Int64(outStride), Int32(threads))
    }

    /// Three products of one input (Q, K and V) in one parallel region: one fork/join instead
    /// of three, and no thread idles at the end of a small product.
    func linear3(_ w0: Matrix, _ y0: UnsafeMutablePointer<Float>, _ s0: Int,
                 _ w1: Matrix, _ y1: UnsafeMutablePointer<Float>, _ s1: Int,
                 _ w2: Matrix, _ y2: UnsafeMutablePointer<Float>, _ s2: Int, input: ActivationRows) {
        let n = Int64(input.rows)
        func job(_ w: Matrix, _ y: UnsafeMutablePointer<Float>, _ s: Int) -> akk_mm_job {
            let (xq, stride) = input.input(for: w.type)
            return akk_mm_job(wtype: w.type, W: w.data, n_out: Int64(w.rows), n_in: Int64(w.cols), X: xq,
                              xstride: Int64(stride), n_tok: n, Y: y, ystride: Int64(s))
        }
        mmJobs[0] = job(w0, y0, s0)
        mmJobs[1] = job(w1, y1, s1)
        mmJobs[2] = job(w2, y2, s2)
        akk_matmul_multi(mmJobs, 3, Int32(threads))
    }

    /// Rows `start..<start+count` of a batched pass belong to one sequence: `owner` holds its KV
    /// cache (and gets its logits), `pos0` is the position of its first row, `router` its routing.
    struct Segment {
        let owner: ForwardState
        let start: Int
        let count: Int
        let pos0: Int
        let router: RouterState
    }

    /// One sequence (this state's own cache): a batch of one segment.
    func forward(tokens: UnsafeBufferPointer<Int32>, pos0: Int, router: RouterState, logits want: LogitRows) {
        forward(tokens: tokens, segments: [Segment(owner: self, start: 0, count: tokens.count, pos0: pos0, router: router)],
                logits: want)
    }

    /// The forward pass over `tokens`, cut into `segments` of different sequences (Batch.swift):
    /// every matrix reads its weights once for all rows; RoPE, the KV cache and attention are per
    /// segment on its owner's cache; each segment routes with its own settings. Several segments
    /// take `.lastOfEach`: this state's logits hold row i = the last row of segment i.
    func forward(tokens: UnsafeBufferPointer<Int32>, segments: [Segment], logits want: LogitRows) {
        let c = config
        let n = tokens.count
        let pos0 = segments[0].pos0
        let d = c.nEmbd, hd = c.headDim
        let qDim = c.nHead * hd, kvDim = c.nHeadKV * hd
        let x = x.p, xn = xn.p, q = q.p, k = k.p, v = v.p, attn = attn.p, tmp = tmp.p

        let clock = n == 1 ? phaseClock : nil
        clock?.begin()

        // token embeddings
        let emb = model.embedding
        for t in 0..<n {
            akk_dequantize_row(emb.type, emb.data + Int(tokens[t]) * emb.rowBytes, x + t * d, Int64(d))
        }
        if c.embeddingScale != 1 { for i in 0..<(n * d) { x[i] *= c.embeddingScale } }
        clock?.end(.embed)

        for (il, L) in model.layers.enumerated() {
            // attention
            rmsnorm(x, L.attnNorm, into: xn, rows: n)
            inA.set(xn, rows: n, cols: d)
            clock?.end(.norms)
            if let mla = L.mla, let scratch = mlaScratch {   // one segment (Batch.swift refuses more)
                DeepSeek2.attention(self, mla, wo: L.wo, scratch: scratch, layer: il, rows: n, pos0: pos0, out: tmp)
                clock?.end(.attention)
                addResidual(x, tmp, n * d)
            } else if let wq = L.wq, let wk = L.wk, let wv = L.wv {
                linear3(wq, q, qDim, wk, k, kvDim, wv, v, kvDim, input: inA)
                if let b = L.bq { addBias(q, b, rows: n, cols: qDim) }
                if let b = L.bk { addBias(k, b, rows: n, cols: kvDim) }
                if let b = L.bv { addBias(v, b, rows: n, cols: kvDim) }
                switch c.traits.qkNorm {
                case .none: break
                case .wholeProjection:
                    akk_rmsnorm_rows(q, Int64(qDim), L.qNorm, q, Int64(qDim), Int64(n), Int64(qDim), c.rmsEps, Int32(threads))
                    akk_rmsnorm_rows(k, Int64(kvDim), L.kNorm, k, Int64(kvDim), Int64(n), Int64(kvDim), c.rmsEps, Int32(threads))
                case .perHead:   // every head of every row is a row of hd
                    akk_rmsnorm_rows(q, Int64(hd), L.qNorm, q, Int64(hd), Int64(n * c.nHead), Int64(hd), c.rmsEps, Int32(threads))
                    akk_rmsnorm_rows(k, Int64(hd), L.kNorm, k, Int64(hd), Int64(n * c.nHeadKV), Int64(hd), c.rmsEps, Int32(threads))
                }
                clock?.end(.qkv)
                let neox: Int32 = c.traits.ropeNeoX ? 1 : 0
                for seg in segments {
                    if c.rope.isYaRN {
                        for t in seg.start..<(seg.start + seg.count) {
                            let pos = seg.pos0 + t - seg.start
                            c.rope.apply(q + t * qDim, nHead: c.nHead, headStride: hd, nRot: c.nRot, pos: pos, freqBase: c.ropeFreqBase, neox: neox != 0)
                            c.rope.apply(k + t * kvDim, nHead: c.nHeadKV, headStride: hd, nRot: c.nRot, pos: pos, freqBase: c.ropeFreqBase, neox: neox != 0)
                        }
                    } else {
                        akk_rope_rows(q + seg.start * qDim, Int64(qDim), Int32(c.nHead), k + seg.start * kvDim, Int64(kvDim),
                                      Int32(c.nHeadKV), Int64(seg.count), Int32(hd), Int32(c.nRot), Int32(seg.pos0),
                                      c.ropeFreqBase, neox, Int32(threads))
                    }
                }
                // V rounded to f16 goes through `attn`, free until the attention writes it
                for seg in segments {
                    seg.owner.storeKV(layer: il, k: k + seg.start * kvDim, v: v + seg.start * kvDim, rows: seg.count,
                                      pos0: seg.pos0, scratch: attn + seg.start * qDim)
                }
                clock?.end(.ropeKV)
                let scale = c.attentionScale ?? 1 / Float(hd).squareRoot()
                let window = c.swaLayers.isEmpty || !c.swaLayers[il] ? 0 : c.slidingWindow
                if segments.count > 1 && L.sinks == nil && window == 0 {
                    // several sequences: one parallel region, a sequence per thread at a time
                    let seqs = segments.map { g in
                        akk_attn_seq(q: q + g.start * qDim, out: attn + g.start * qDim, k: g.owner.kCache(il),
                                     vt: g.owner.vCache(il), vt_stride: Int64(g.owner.nCtx), scratch: g.owner.attnScratch.p,
                                     n_tok: Int32(g.count), pos0: Int32(g.pos0), n_ctx: Int32(g.owner.nCtx),
                                     kv_type: g.owner.kvType.ggmlType)
                    }
                    akk_attention_seqs(seqs, Int32(seqs.count), Int64(qDim), Int64(kvDim), Int64(qDim), Int32(c.nHead),
                                       Int32(c.nHeadKV), Int32(hd), scale, Int32(threads))
                } else {
                    for seg in segments {
                        let o = seg.owner, qs = q + seg.start * qDim, out = attn + seg.start * qDim
                        let kc = o.kCache(il), vc = o.vCache(il)
                        if L.sinks != nil || window > 0 {
                            // Attention.swift: sinks and sliding windows (gpt-oss)
                            o.attendWithSinks(q: qs, k: kc, vt: vc, out: out, rows: seg.count, pos0: seg.pos0, scale: scale,
                                              sinks: L.sinks, window: window)
                        } else {
                            // the owner's scratch holds max(its threads, heads) rows; the values do not
                            // depend on the thread count
                            akk_attention(qs, Int64(qDim), kc, Int64(kvDim), vc, Int64(o.nCtx), out, Int64(qDim), Int32(seg.count),
                                          Int32(seg.pos0), Int32(c.nHead), Int32(c.nHeadKV), Int32(hd), scale,
                                          o.attnScratch.p, Int32(o.nCtx), o.kvType.ggmlType, Int32(min(threads, o.threads)))
                        }
                    }
                }
                clock?.end(.attention)
                inB.set(attn, rows: n, cols: qDim)
                linear(L.wo, inB, out: tmp, outStride: d)
                if let b = L.bo { addBias(tmp, b, rows: n, cols: d) }
                clock?.end(.attnOutput)
                addResidual(x, tmp, n * d)
            }

            // feed-forward
            rmsnorm(x, L.ffnNorm, into: xn, rows: n)
            inA.set(xn, rows: n, cols: d)
            clock?.end(.norms)
            // Like llama.cpp, a dense last layer whose only output is the last row runs its FFN on
            // that row alone (llama.cpp picks some kernels by the row count, e.g. the K-quants'
            // tiled order from 8 rows: the same row count gives the same bits).
            let r0 = il == model.layers.count - 1 && !L.isMoE && ffnCapture == nil && want.isLast ? n - 1 : 0
            if L.isMoE, let moe {
                moe.run(layer: L, index: il, state: self, rows: n, segments: segments, out: tmp, clock: clock)
            } else if let gate = L.ffnGate, let up = L.ffnUp, let down = L.ffnDown {
                if r0 > 0 { inA.set(xn + r0 * d, rows: n - r0, cols: d) }
                let capture = ffnCapture.map { cap in { (h: UnsafePointer<Float>) in cap(il, n, xn, h) } }
                swiGLU(gate: gate, up: up, down: down, input: inA, rows: n - r0, out: tmp + r0 * d, onHidden: capture)
                clock?.end(.ffn)
            }
            addResidual(x + r0 * d, tmp + r0 * d, (n - r0) * d)
        }

        // output norm and LM head
        let vocab = c.nVocab
        switch want {
        case .none:
            return
        case .last:
            akk_rmsnorm(x + (n - 1) * d, model.outputNorm, xn, Int64(d), c.rmsEps)
            inA.set(xn, rows: 1, cols: d)
            linear(model.output, inA, out: logits.p, outStride: vocab)
            if c.logitScale != 1 { let s = 1 / c.logitScale; for i in 0..<vocab { logits.p[i] *= s } }
            clock?.end(.lmHead)
        case .lastOfEach:
            for (i, seg) in segments.enumerated() {
                akk_rmsnorm(x + (seg.start + seg.count - 1) * d, model.outputNorm, xn + i * d, Int64(d), c.rmsEps)
            }
            inA.set(xn, rows: segments.count, cols: d)
            linear(model.output, inA, out: logits.p, outStride: vocab)
            if c.logitScale != 1 { let s = 1 / c.logitScale; for i in 0..<(segments.count * vocab) { logits.p[i] *= s } }
        case .all(let firstRow):
            rmsnorm(x, model.outputNorm, into: xn, rows: n)
            inA.set(xn, rows: n, cols: d)
            linear(model.output, inA, out: logits.p + firstRow * vocab, outStride: vocab)
            if c.logitScale != 1 { let s = 1 / c.logitScale; for i in (firstRow * vocab)..<((firstRow + n) * vocab) { logits.p[i] *= s } }
            clock?.end(.lmHead)
        }
    }

    /// Writes `rows` rows of K and V (f32) at positions pos0... of this state's cache for `layer`;
    /// `scratch` (rows × kvDim floats) takes V rounded to f16 for an f16 cache.
    func storeKV(layer il: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, rows n: Int, pos0: Int,
                 scratch: UnsafeMutablePointer<Float>) {
        let kvDim = config.nHeadKV * config.headDim
        let kc = kCache(il), vc = vCache(il)
        switch kvType {
        case .f32:
            (kc + pos0 * kvDim).update(from: k, count: n * kvDim)
            for t in 0..<n {
                let vt = v + t * kvDim, col = vc + pos0 + t
                for i in 0..<kvDim { col[i * nCtx] = vt[i] }
            }
        case .f16: // ggml_cpy f32 -> f16: round to nearest even (F16C or its scalar twin)
            let kh = UnsafeMutableRawPointer(kc).assumingMemoryBound(to: UInt16.self)
            let vh = UnsafeMutableRawPointer(vc).assumingMemoryBound(to: UInt16.self)
            akk_fp32_to_fp16_row(k, kh + pos0 * kvDim, Int64(n * kvDim))
            // V rounded as one row (F16C), then scattered into the transposed cache
            let v16 = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: UInt16.self)
            akk_fp32_to_fp16_row(v, v16, Int64(n * kvDim))
            for t in 0..<n {
                let vt = v16 + t * kvDim, col = vh + pos0 + t
                for i in 0..<kvDim { col[i * nCtx] = vt[i] }
            }
        }
    }

    /// down · (silu(gate · x) ⊙ (up · x)) for `rows` rows of `input` (already set).
    /// Runs as one parallel region (akk_moe_ffn with a single "expert" of weight 1, which is exact):
    /// gate and up, SwiGLU and the quantisation of its output per 32-row chunk, a barrier, down.
    func swiGLU(gate: Matrix, up: Matrix, down: Matrix, input: ActivationRows, rows n: Int,
                out: UnsafeMutablePointer<Float>, onHidden: ((UnsafePointer<Float>) -> Void)? = nil) {
        let f = gate.rows
        let (xg, sg) = input.input(for: gate.type)
        let (xu, su) = input.input(for: up.type)
        var job = akk_moe_expert(gate: gate.data, up: up.data, down: down.data, row0: 0, n_rows: Int64(n))
        let hStride = akk_row_bytes(akk_vec_dot_type(down.type), Int64(f))
        // the fused kernel keeps the hidden activations to itself: capture runs take the plain path
        if onHidden == nil, n <= maxBatch, f * n <= ffA.count,
           akk_moe_ffn(gate.type, up.type, down.type, Int64(gate.cols), Int64(f), &job, 1, xg, Int64(sg), xu, Int64(su),
                       ffA.p, ffB.p, UnsafeMutableRawPointer(ffQ.p), hStride, ones.p, out, Int64(down.rows),
                       Int32(threads)) == 0 {
            return
        }
        linear(gate, input, out: ffA.p, outStride: f)
        linear(up, input, out: ffB.p, outStride: f)
        // one call per row: ggml_vec_swiglu_f32 runs per row, so the SIMD/tail split is per row
        for t in 0..<n { akk_swiglu(ffA.p + t * f, ffB.p + t * f, ffA.p + t * f, Int64(f)) }
        onHidden?(ffA.p)
        inB.set(ffA.p, rows: n, cols: f)
        linear(down, inB, out: out, outStride: down.rows)
    }

    /// x += branch · residual scale (Granite's residual_multiplier; 1 elsewhere); a prefill's rows
    /// split over the threads.
    @inline(__always)
    private func addResidual(_ x: UnsafeMutablePointer<Float>, _ branch: UnsafePointer<Float>, _ count: Int) {
        akk_add_scaled(x, branch, config.residualScale, Int64(count), Int32(threads))
    }

    /// y = RMSNorm(x) · w for `rows` rows of nEmbd (a prefill's rows split over the threads).
    @inline(__always)
    private func rmsnorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int) {
        let d = Int64(config.nEmbd)
        akk_rmsnorm_rows(x, d, w, y, d, Int64(rows), d, config.rmsEps, Int32(threads))
    }

    private func addBias(_ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let yr = y + r * cols
            for i in 0..<cols { yr[i] += b[i] }
        }
    }
}
