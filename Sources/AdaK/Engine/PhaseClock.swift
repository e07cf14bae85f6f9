import Dispatch

/// Where a decoded token's time goes: the wall time of each step of the one-token forward pass,
/// summed over the tokens decoded while the clock is set (`Session.phaseClock`, `adak bench
/// --phases`). A step ends with a clock read on the calling thread, so it includes the start and
/// the end of its parallel region (the other threads' idling there shows as time of that step).
/// Batches of more than one token (prefill) are not counted. Costs ~15 clock reads per layer.
public final class PhaseClock {
    public enum Phase: Int, CaseIterable, Sendable {
        case embed, norms, qkv, ropeKV, attention, attnOutput, router, routing, experts, ffn, lmHead

        /// What the step covers, as printed by `adak bench --phases`.
        public var label: String {
            switch self {
            case .embed: "token embedding"
            case .norms: "RMSNorms, residual adds, activation quantisation"
            case .qkv: "Q/K/V projections (biases, q/k norms)"
            case .ropeKV: "rope, KV cache stores"
            case .attention: "attention over the KV cache"
            case .attnOutput: "attention output projection"
            case .router: "router matmul"
            case .routing: "softmax, ranking, k per token, expert table"
            case .experts: "routed (and shared) experts"
            case .ffn: "dense FFN"
            case .lmHead: "output norm, LM head"
            }
        }
    }

    /// Seconds per phase (indexed by `Phase.rawValue`), summed over `tokens`.
    public private(set) var seconds = [Double](repeating: 0, count: Phase.allCases.count)
    public private(set) var tokens = 0
    private var last: UInt64 = 0

    public init() {}

    public func reset() {
        seconds = [Double](repeating: 0, count: Phase.allCases.count)
        tokens = 0
    }

    /// Microseconds per token of `phase`.
    public func microsPerToken(_ phase: Phase) -> Double {
        tokens > 0 ? seconds[phase.rawValue] * 1e6 / Double(tokens) : 0
    }

    func begin() {
        tokens += 1
        last = DispatchTime.now().uptimeNanoseconds
    }

    /// Ends `phase`: the time since the previous mark is its.
    func end(_ phase: Phase) {
        let t = DispatchTime.now().uptimeNanoseconds
        seconds[phase.rawValue] += Double(t &- last) * 1e-9
        last = t
    }
}
