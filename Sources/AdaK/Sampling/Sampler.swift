/// Sampling settings. `temperature <= 0` means greedy (argmax, ties to the lowest id).
public struct SamplingParams: Sendable, Equatable {
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0: all).
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    public var topP: Float = 0.95
    /// Drop tokens whose probability is below min_p × the top probability (0: none).
    public var minP: Float = 0.05
    /// Divide positive (multiply negative) logits of recently seen tokens (1: off).
    public var repeatPenalty: Float = 1.0
    /// How many recent tokens the penalty looks at.
    public var repeatLastN: Int = 64
    public var seed: UInt64 = 0xADA

    public init() {}

    /// Greedy decoding.
    public static var greedy: SamplingParams {
        var p = SamplingParams()
        p.temperature = 0
        return p
    }

    /// Throws when a value is out of range (NaN, negative, ...).
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else { throw AdaKError.invalidArgument("temperature must be finite and >= 0") }
        guard topK >= 0 else { throw AdaKError.invalidArgument("top_k must be >= 0") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw AdaKError.invalidArgument("top_p must be in (0, 1]") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw AdaKError.invalidArgument("min_p must be in [0, 1]") }
        guard repeatPenalty.isFinite, repeatPenalty > 0 else { throw AdaKError.invalidArgument("repeat_penalty must be > 0") }
        guard repeatLastN >= 0, repeatLastN <= 1 << 20 else { throw AdaKError.invalidArgument("repeat_last_n out of range") }
    }
}

/// Turns logits into a token: penalties → top-k → top-p → min-p → temperature → draw
/// (the order of llama.cpp's default sampler chain).
public struct Sampler: Sendable {
    public var params: SamplingParams
    private var rng: RandomGenerator
    /// Recent tokens for the repetition penalty (oldest first).
    private(set) var history: [Int32] = []

    public init(params: SamplingParams) {
        self.params = params
        rng = RandomGenerator(seed: params.seed)
    }

    /// Restarts the random stream and forgets the history.
    public mutating func reset() {
        rng = RandomGenerator(seed: params.seed)
        history.removeAll(keepingCapacity: true)
    }

    /// The random stream's position (saved session states).
    var rngState: [UInt64] { rng.state }

    /// Puts back a random stream and history saved from `rngState` and `history`.
    mutating func restore(rngState: [UInt64], history: [Int32]) {
        rng = RandomGenerator(state: rngState)
        self.history = history
    }

    /// Remembers a token for the repetition penalty (generated or from the prompt).
    public mutating func accept(_ token: Int32) {
        history.append(token)
        let keep = max(params.repeatLastN, 0)
        if history.count > keep * 2 + 64 { history.removeFirst(history.count - keep) }
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        let n = logits.count
        guard n > 0 else { return 0 }
        if params.temperature <= 0 && params.repeatPenalty == 1 {
            return Self.argmax(logits)
        }
        var cand = [(id: Int32, logit: Float)]()
        cand.reserveCapacity(n)
        for i in 0..<n { cand.append((Int32(i), logits[i])) }
        if params.repeatPenalty != 1, params.repeatLastN > 0 {
            var seen = Set<Int32>()
            for t in history.suffix(params.repeatLastN) where Int(t) < n && t >= 0 && seen.insert(t).inserted {
                let l = cand[Int(t)].logit
                cand[Int(t)].logit = l > 0 ? l / params.repeatPenalty : l * params.repeatPenalty
            }
        }
        if params.temperature <= 0 {
            var best = 0
            for i in 1..<n where cand[i].logit > cand[best].logit { best = i }
            return cand[best].id
        }
        cand.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if params.topK > 0 && params.topK < cand.count { cand.removeLast(cand.count - params.topK) }
        var probs = Self.softmax(cand.map { $0.logit })
        if params.topP < 1 {
            var cum: Double = 0
            var keep = cand.count
            for (i, p) in probs.enumerated() {
                cum += Double(p)
                if cum >= Double(params.topP) { keep = i + 1; break }
            }
            cand.removeLast(cand.count - keep)
            probs.removeLast(probs.count - keep)
        }
        if params.minP > 0, let top = probs.first {
            let cut = top * params.minP
            let keep = max(1, probs.prefix { $0 >= cut }.count)
            cand.removeLast(cand.count - keep)
        }
        let scaled = Self.softmax(cand.map { $0.logit / params.temperature })
        let r = rng.nextDouble()
        var cum: Double = 0
        for (i, p) in scaled.enumerated() {
            cum += Double(p)
            if r < cum { return cand[i].id }
        }
        return cand[cand.count - 1].id
    }

    static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bv = x[0]
        for i in 1..<x.count where x[i] > bv {
            bv = x[i]
            best = i
        }
        return Int32(best)
    }

    static func softmax(_ x: [Float]) -> [Float] {
        guard let m = x.max() else { return [] }
        var e = x.map { expf($0 - m) }
        let s = e.reduce(Float(0), +)
        for i in e.indices { e[i] /= s }
        return e
    }
}

#if canImport(Glibc)
import Glibc
#endif
