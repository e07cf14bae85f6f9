import AdaK
import ArgumentParser
import Foundation

/// Routing flags shared by generate, perplexity and bench.
struct RoutingOptions: ParsableArguments {
    @Option(help: "Routing policy: topk, adak, top_p, skip, entropy") var routing = "topk"
    @Option(help: "k for --routing topk (default: the model's native K)") var k: Int?
    @Option(help: "Threshold for --routing top_p") var topPRouting: Float = 0.5
    @Option(help: "Ratio for --routing skip") var beta: Float = 0.5
    @Option(help: "Scale for --routing entropy") var tau: Float = 1.0
    @Option(help: "Smallest k any policy may choose") var kMin = 1
    @Option(help: "Largest k any policy may choose") var kMax: Int?
    @Option(help: "Ada-K allocator file (GGUF); 'identity' for the untrained one") var allocator: String?
    @Option(help: "Expert-FLOPs budget as a fraction of static Top-K (e.g. 0.75)") var budget: Float?
    @Option(help: "Fixed price per expert for --routing adak without a budget, the same in every layer: k = argmax(logit_k − price·k)") var price: Float = 0

    func config() throws -> RoutingConfig {
        guard let policy = RoutingPolicy(rawValue: routing) else {
            throw ValidationError("unknown routing policy '\(routing)' (topk, adak, top_p, skip, entropy)")
        }
        var r = RoutingConfig(policy: policy)
        r.k = k
        r.p = topPRouting
        r.beta = beta
        r.tau = tau
        r.kMin = kMin
        r.kMax = kMax
        r.budget = budget
        r.price = price
        return r
    }

    /// Applies the options to a session (allocator first, then the policy).
    func apply(to s: Session) throws {
        if let allocator {
            try s.setAllocator(allocator == "identity" ? Allocator.identity(for: s.model)
                                                       : Allocator(path: allocator, model: s.model))
        }
        var r = try config()
        if r.policy == .adak && s.allocator == nil {
            try s.setAllocator(Allocator.identity(for: s.model))
        }
        if !s.model.config.isMoE { r = RoutingConfig() }
        try s.setRouting(r)
    }
}

/// One line per MoE layer group and the totals of a session's routing statistics.
func formatStats(_ st: RoutingStats) -> String {
    guard st.tokens > 0 else { return "routing: no tokens" }
    var out = "routing: \(st.tokens) tokens, mean k \(fmt(st.meanK, 2)), expert FLOPs \(fmt(100 * st.expertFraction, 1))% of Top-K, total FLOPs \(fmt(100 * st.totalFraction, 1))% of Top-K (\(fmt(st.totalFlops / Double(st.tokens) / 1e6, 1)) MFLOP/token)\n"
    out += "mean k per MoE layer: " + st.meanKPerLayer.map { fmt($0, 2) }.joined(separator: " ") + "\n"
    out += "k histogram: " + st.kHistogram.enumerated().filter { $0.element > 0 }.map { "k=\($0.offset + 1): \($0.element)" }.joined(separator: ", ")
    return out
}

func fmt(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
