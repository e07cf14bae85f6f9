import CAdaKKernels

/// Per-session settings.
public struct SessionParams: Sendable {
    /// Context window in tokens (0: min(model's context length, 4096)).
    public var contextSize: Int = 0
    /// Threads for the kernels (0: all cores).
    public var threads: Int = 0
    /// Tokens per forward pass while prefilling.
    public var batchSize: Int = 512
    /// Element type of the KV cache: f32 (llama.cpp-exact with an f32 cache, the default) or f16
    /// (llama.cpp's own default: half the memory and the bytes attention reads per token).
    public var kvType: KVCacheType = .f32
    public var sampling = SamplingParams()
    public var routing = RoutingConfig()
    public init() {}
}

/// Element type of a session's KV cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f32, f16

    var ggmlType: Int32 { self == .f16 ? Int32(AKK_F16.rawValue) : Int32(AKK_F32.rawValue) }
    public var bytes: Int { self == .f16 ? 2 : 4 }
}

/// One sequence being decoded: KV cache, routing state, sampler. Use from one thread at a time;
/// different sessions on one model may run concurrently.
public final class Session {
    public let model: Model
    public let contextSize: Int
    public let threads: Int
    public let batchSize: Int
    /// Element type of the KV cache.
    public var kvType: KVCacheType { state.kvType }
    /// Tokens in the context.
    public private(set) var position = 0
    public var sampling: SamplingParams {
        get { sampler.params }
        set { sampler.params = newValue }
    }
    /// Routing settings; setting them validates first (an invalid value throws through
    /// `setRouting` and leaves the session unchanged) and restarts the budget controller.
    public var routing: RoutingConfig { router.config }
    /// The Ada-K allocator used by the `adak` policy (nil: `adak` falls back to native K).
    public var allocator: Allocator? { router.allocator }
    /// What routing spent since the last `resetStats` (or `reset`).
    public var stats: RoutingStats { router.stats }
    /// Rows of logits from the last `evaluate` (1, or the token count with `allLogits`).
    public private(set) var logitRows = 0

    var sampler: Sampler
    let router: RouterState
    let state: ForwardState

    public init(model: Model, params: SessionParams = SessionParams()) throws {
        let c = model.config
        guard params.contextSize >= 0, params.contextSize <= ModelConfig.maxContext else {
            throw AdaKError.invalidArgument("n_ctx \(params.contextSize) is out of range (0...\(ModelConfig.maxContext))")
        }
        guard params.threads >= 0, params.threads <= 1024 else {
            throw AdaKError.invalidArgument("n_threads \(params.threads) is out of range (0...1024)")
        }
        guard params.batchSize >= 1, params.batchSize <= 8192 else {
            throw AdaKError.invalidArgument("n_batch \(params.batchSize) is out of range (1...8192)")
        }
        try params.sampling.validate()
        try params.routing.validate(nExpert: c.nExpert, kNative: c.nExpertUsed)
        self.model = model
        contextSize = params.contextSize == 0 ? min(c.contextLength, 4096) : params.contextSize
        threads = params.threads == 0 ? Int(akk_default_threads()) : params.threads
        batchSize = params.batchSize
        router = RouterState(model: model, config: params.routing)
        sampler = Sampler(params: params.sampling)
        state = try ForwardState(model: model, contextSize: contextSize, batchSize: batchSize, threads: threads,
                                 kvType: params.kvType)
    }

    /// Replaces the sampling settings after validating them (on error nothing changes).
    public func setSampling(_ s: SamplingParams) throws {
        try s.validate()
        sampler.params = s
    }

    /// Replaces the routing settings after validating them against the model.
    public func setRouting(_ r: RoutingConfig) throws {
        try r.validate(nExpert: model.config.nExpert, kNative: model.config.nExpertUsed)
        if r.policy == .adak && router.allocator == nil {
            throw AdaKError.invalidArgument("the adak policy needs an allocator (load one first)")
        }
        router.config = r
        router.resetControl()
    }

    /// Sets (or with nil removes) the expert-FLOPs budget, as a fraction of static Top-K.
    public func setBudget(_ fraction: Float?) throws {
        var r = router.config
        r.budget = fraction
        try setRouting(r)
    }

    /// Uses `allocator` for the `adak` policy; it must have been made for this model.
    public func setAllocator(_ a: Allocator?) throws {
        if let a {
            guard a.fingerprint == model.routerFingerprint, a.nExpert == model.config.nExpert,
                  a.nEmbd == model.config.nEmbd, a.layers == model.moeLayerIndices else {
                throw AdaKError.invalidArgument("allocator does not fit this model")
            }
        } else if router.config.policy == .adak {
            throw AdaKError.invalidArgument("cannot remove the allocator while the adak policy is active")
        }
        router.allocator = a
    }

    /// Starts new routing statistics.
    public func resetStats() { router.resetStats() }

    /// Set to time the steps of every token decoded one at a time (nil: off, the default).
    public var phaseClock: PhaseClock? {
        get { state.phaseClock }
        set { state.phaseClock = newValue }
    }

    /// A token `generate` handed out but has not evaluated yet; evaluated first by the next call.
    private var pending: Int32? = nil

    /// Empties the context and restarts the sampler. Routing statistics and the budget
    /// controller's state carry on (see `resetStats`).
    public func reset() {
        position = 0
        pending = nil
        logitRows = 0
        sampler.reset()
    }

    /// Appends `tokens` to the context and runs the model over them in batches. Afterwards the
    /// logits of the last token (or of every token with `allLogits`) are available. On error
    /// the session is unchanged.
    public func evaluate(_ tokens: [Int32], allLogits: Bool = false) throws {
        if let p = pending {
            pending = nil
            do { try evaluate([p] + tokens, allLogits: allLogits) } catch { pending = p; throw error }
            if allLogits { logitRows -= 1; state.dropFirstLogitRow(rows: logitRows) }
            return
        }
        guard !tokens.isEmpty else { throw AdaKError.invalidArgument("no tokens to evaluate") }
        let nVocab = model.config.nVocab
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= nVocab {
            throw AdaKError.invalidArgument("token \(t) at index \(i) is not in the vocabulary (0..<\(nVocab))")
        }
        guard tokens.count <= contextSize - position else {
            throw AdaKError.contextFull("context full: \(position) + \(tokens.count) tokens > context size \(contextSize)")
        }
        try state.reserveLogits(rows: allLogits ? tokens.count : 1)
        var start = 0
        while start < tokens.count {
            let n = min(batchSize, tokens.count - start)
            let wantRows: ForwardState.LogitRows = allLogits ? .all(firstRow: start) : (start + n == tokens.count ? .last : .none)
            tokens.withUnsafeBufferPointer {
                state.forward(tokens: UnsafeBufferPointer(rebasing: $0[start..<start + n]), pos0: position + start,
                              router: router, logits: wantRows)
            }
            let last = start + n == tokens.count
            router.record(pos0: position + start, n: n) { allLogits || (last && $0 == n - 1) }
            start += n
        }
        position += tokens.count
        logitRows = allLogits ? tokens.count : 1
        for t in tokens { sampler.accept(t) }
    }

    /// The logits of the last evaluate: `logitRows` rows of n_vocab floats.
    public func withLogits<R>(_ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        body(UnsafeBufferPointer(start: state.logits.p, count: logitRows * model.config.nVocab))
    }

    /// Samples from the last row of logits with the session's sampling settings.
    public func sample() -> Int32 {
        precondition(logitRows > 0, "sample() before evaluate()")
        let v = model.config.nVocab
        let tok = sampler.sample(UnsafeBufferPointer(start: state.logits.p + (logitRows - 1) * v, count: v))
        return tok
    }

    /// Evaluates `prompt` (may be empty after an earlier evaluate), then samples and evaluates up
    /// to `maxTokens` tokens, handing each to `onToken` with its text piece. Stops at an
    /// end-of-generation token (not passed on) or when `onToken` returns false.
    public func generate(prompt: [Int32], maxTokens: Int,
                         onToken: (Int32, [UInt8]) -> Bool) throws -> [Int32] {
        guard maxTokens >= 0 else { throw AdaKError.invalidArgument("max tokens must be >= 0") }
        if !prompt.isEmpty {
            try evaluate(prompt)
        } else if let p = pending {
            pending = nil
            do { try evaluate([p]) } catch { pending = p; throw error }
        } else if logitRows == 0 {
            throw AdaKError.invalidArgument("empty prompt and nothing evaluated yet")
        }
        var out: [Int32] = []
        while out.count < maxTokens {
            let tok = sample()
            if model.tokenizer.isEndOfGeneration(tok) { break }
            out.append(tok)
            pending = tok
            if !onToken(tok, model.tokenizer.piece(tok, special: false)) { break }
            if out.count == maxTokens || position >= contextSize { break }
            pending = nil
            do { try evaluate([tok]) } catch { pending = tok; throw error }
        }
        return out
    }
}
