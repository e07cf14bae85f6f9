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
    public internal(set) var position = 0
    /// The tokens in the context, in order (`position` of them).
    public internal(set) var tokens: [Int32] = []
    /// Why the last `generate` stopped (nil before the first).
    public internal(set) var stopReason: StopReason? = nil
    /// Texts that end a generation when the generated text contains one (matched across token
    /// boundaries); the text before the match is handed out, the match itself is not.
    public var stopStrings: [[UInt8]] = [] {
        didSet { stopStrings.removeAll { $0.isEmpty } }
    }
    /// Added to the logits of these tokens before sampling (-infinity bans a token).
    public internal(set) var logitBias: [Int32: Float] = [:]
    /// Called with the last row of logits (a copy, after `logitBias`) before each sample; it may
    /// change them, e.g. set the tokens a grammar forbids to -infinity (constrained output).
    public var logitsHook: ((UnsafeMutableBufferPointer<Float>) -> Void)? = nil
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
    public internal(set) var logitRows = 0

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
        try params.routing.validate(nExpert: c.nExpert, kNative: c.nExpertUsed, nMoE: model.moeLayerIndices.count)
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
        try r.validate(nExpert: model.config.nExpert, kNative: model.config.nExpertUsed, nMoE: model.moeLayerIndices.count)
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
    var pending: Int32? = nil
    /// The last row of logits after bias and hook (sampling reads it; the session's own stay intact).
    private var samplingRow: [Float] = []
    /// Allowed answers (`setChoices`) and the vocabulary's pieces they are matched with.
    private var choices: ChoiceConstraint? = nil
    private var pieces: [[UInt8]] = []

    /// The choices' text starts again (a new answer).
    func restartChoices() { choices?.text = [] }

    /// Constrains sampling to the texts that begin one of `choices` (nil or [] removes it):
    /// generation ends once the text is a whole choice that no other choice continues. The text
    /// counts from this call, a `generate` with a prompt, `reset` and `truncate`.
    public func setChoices(_ choices: [[UInt8]]?) throws {
        guard let choices, !choices.isEmpty else { self.choices = nil; return }
        self.choices = try ChoiceConstraint(choices)
        loadPieces()
    }

    /// Constrains sampling to texts that match the regular expression `pattern` as a whole
    /// (`RegexDFA` says which syntax; nil removes it): generation ends once the text matches and
    /// nothing can continue it. Replaces `setChoices` (and they it); the text counts as for them.
    /// On error the constraint is unchanged.
    public func setRegex(_ pattern: String?) throws {
        guard let pattern else { self.choices = nil; return }
        self.choices = try ChoiceConstraint(regex: pattern)
        loadPieces()
    }

    private func loadPieces() {
        if pieces.isEmpty {
            pieces = (0..<model.config.nVocab).map { model.tokenizer.piece(Int32($0), special: false) }
        }
    }

    /// Sets the logit bias (replacing the previous one); every token must be in the vocabulary
    /// and every value a number (+-infinity allowed).
    public func setLogitBias(_ bias: [Int32: Float]) throws {
        for (t, b) in bias {
            guard t >= 0, Int(t) < model.config.nVocab else {
                throw AdaKError.invalidArgument("logit bias: token \(t) is not in the vocabulary (0..<\(model.config.nVocab))")
            }
            guard !b.isNaN else { throw AdaKError.invalidArgument("logit bias of token \(t) is NaN") }
        }
        logitBias = bias
    }

    /// Empties the context and restarts the sampler. Routing statistics and the budget
    /// controller's state carry on (see `resetStats`).
    public func reset() {
        position = 0
        tokens.removeAll(keepingCapacity: true)
        pending = nil
        logitRows = 0
        stopReason = nil
        choices?.text = []
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
                measurePriceIfNeeded(UnsafeBufferPointer(rebasing: $0[start..<start + n]), pos0: position + start)
                state.forward(tokens: UnsafeBufferPointer(rebasing: $0[start..<start + n]), pos0: position + start,
                              router: router, logits: wantRows)
            }
            let last = start + n == tokens.count
            router.record(pos0: position + start, n: n) { allLogits || (last && $0 == n - 1) }
            start += n
        }
        position += tokens.count
        self.tokens += tokens
        logitRows = allLogits ? tokens.count : 1
        for t in tokens { sampler.accept(t) }
    }

    /// Under a global budget: a measuring pass over `tokens` at the current price, whose rows fix
    /// the price for them (Routing/Router.swift); the real pass then rewrites the same KV rows.
    func measurePriceIfNeeded(_ tokens: UnsafeBufferPointer<Int32>, pos0: Int) {
        guard router.needsProbe(n: tokens.count) else { return }
        router.beginProbe()
        state.forward(tokens: tokens, pos0: pos0, router: router, logits: .none)
        router.endProbe()
    }

    /// The logits of the last evaluate: `logitRows` rows of n_vocab floats.
    public func withLogits<R>(_ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        body(UnsafeBufferPointer(start: state.logits.p, count: logitRows * model.config.nVocab))
    }

    /// Samples from the last row of logits with the session's sampling settings, after the logit
    /// bias and the logits hook (when they ban every token, from the row without them).
    public func sample() -> Int32 {
        precondition(logitRows > 0, "sample() before evaluate()")
        if let t = try? trySample() { return t }
        let v = model.config.nVocab
        return sampler.sample(UnsafeBufferPointer(start: state.logits.p + (logitRows - 1) * v, count: v))
    }

    /// `sample()` that throws when nothing was evaluated or every token is banned.
    public func trySample() throws -> Int32 {
        guard logitRows > 0 else { throw AdaKError.invalidArgument("nothing to sample from: evaluate first") }
        let v = model.config.nVocab
        let row = UnsafeBufferPointer(start: state.logits.p + (logitRows - 1) * v, count: v)
        if logitBias.isEmpty && logitsHook == nil && choices == nil { return sampler.sample(row) }
        if samplingRow.count != v { samplingRow = [Float](repeating: 0, count: v) }
        let tok = try samplingRow.withUnsafeMutableBufferPointer { r in
            _ = r.initialize(from: row)
            for (t, b) in logitBias { r[Int(t)] += b }
            logitsHook?(r)
            choices?.mask(r, pieces: pieces, tokenizer: model.tokenizer)
            guard r.contains(where: { $0 > -Float.infinity }) else {
                throw AdaKError.invalidArgument("every token is banned (logit bias / logits hook / choices)")
            }
            return sampler.sample(UnsafeBufferPointer(r))
        }
        if choices != nil { choices!.text += pieces[Int(tok)] }
        return tok
    }

    /// Evaluates `prompt` (may be empty after an earlier evaluate), then samples and evaluates up
    /// to `maxTokens` tokens, handing each to `onToken` with its text. Stops (see `stopReason`) at
    /// an end-of-generation token (not passed on), after `maxTokens`, when the context is full,
    /// when `onToken` returns false, or at a stop string.
    ///
    /// With `stopStrings`, the text handed out is held back while it could be the start of a stop
    /// string, so a piece may be empty and a later one carry the held bytes; the text of the
    /// match and after it is never handed out. Held text left when an end token stops the
    /// generation comes with that end token's id in a last `onToken` call (its return is ignored).
    public func generate(prompt: [Int32], maxTokens: Int,
                         onToken: (Int32, [UInt8]) -> Bool) throws -> [Int32] {
        guard maxTokens >= 0 else { throw AdaKError.invalidArgument("max tokens must be >= 0") }
        if !prompt.isEmpty {
            try evaluate(prompt)
            choices?.text = []
        } else if let p = pending {
            pending = nil
            do { try evaluate([p]) } catch { pending = p; throw error }
        } else if logitRows == 0 {
            throw AdaKError.invalidArgument("empty prompt and nothing evaluated yet")
        }
        var out: [Int32] = []
        var held: [UInt8] = []
        stopReason = .maxTokens
        while out.count < maxTokens {
            let tok = try trySample()
            if model.tokenizer.isEndOfGeneration(tok) {
                stopReason = .endOfGeneration
                if !held.isEmpty { _ = onToken(tok, held) }
                break
            }
            out.append(tok)
            pending = tok
            // the last token when max_tokens is reached or the context cannot take it
            let last = out.count == maxTokens || position >= contextSize
            var text = model.tokenizer.piece(tok, special: false)
            if !stopStrings.isEmpty {
                held += text
                if let cut = StopMatcher.firstMatch(in: held, stops: stopStrings) {
                    stopReason = .stopString
                    let before = Array(held[..<cut])
                    if !before.isEmpty { _ = onToken(tok, before) }
                    break
                }
                let keep = last ? 0 : StopMatcher.heldSuffix(held, stops: stopStrings)
                text = Array(held[..<(held.count - keep)])
                held.removeFirst(held.count - keep)
            }
            if !onToken(tok, text) { stopReason = .callback; break }
            if last {
                if out.count < maxTokens { stopReason = .contextFull }
                break
            }
            pending = nil
            do { try evaluate([tok]) } catch { pending = tok; throw error }
        }
        return out
    }
}

/// Why a generation stopped.
public enum StopReason: Int32, Sendable, CaseIterable {
    /// The model produced an end-of-generation token.
    case endOfGeneration = 0
    /// `maxTokens` tokens were generated.
    case maxTokens = 1
    /// The context window is full.
    case contextFull = 2
    /// The token callback asked to stop.
    case callback = 3
    /// The text reached one of the stop strings.
    case stopString = 4

    public var name: String {
        switch self {
        case .endOfGeneration: "end_of_generation"
        case .maxTokens: "max_tokens"
        case .contextFull: "context_full"
        case .callback: "callback"
        case .stopString: "stop_string"
        }
    }
}

/// Byte-level stop-string matching over generated text.
enum StopMatcher {
    /// The offset of the earliest stop string in `text`, if any.
    static func firstMatch(in text: [UInt8], stops: [[UInt8]]) -> Int? {
        var best: Int? = nil
        for s in stops where s.count <= text.count {
            for i in 0...(text.count - s.count) where best.map({ i < $0 }) ?? true {
                if text[i..<i + s.count].elementsEqual(s) { best = i; break }
            }
        }
        return best
    }

    /// The length of the longest suffix of `text` that begins some stop string (to hold back).
    static func heldSuffix(_ text: [UInt8], stops: [[UInt8]]) -> Int {
        var keep = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, text.count), to: keep, by: -1)
            where text[(text.count - n)...].elementsEqual(s[..<n]) {
                keep = n
                break
            }
        }
        return keep
    }
}
