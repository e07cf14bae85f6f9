import AdaK
import ArgumentParser
import Foundation

/// Routing flags shared by generate, perplexity and bench.
struct RoutingOptions: ParsableArguments {
    @Option(help: "Routing policy: topk (default), adak (the default with --allocator), top_p, skip, entropy") var routing: String?
    @Option(help: "k for --routing topk (default: the model's native K)") var k: Int?
    @Option(help: "Threshold for --routing top_p") var topPRouting: Float = 0.5
    @Option(help: "Ratio for --routing skip") var beta: Float = 0.5
    @Option(help: "Scale for --routing entropy") var tau: Float = 1.0
    @Option(help: "Smallest k any policy may choose") var kMin = 1
    @Option(help: "Largest k any policy may choose") var kMax: Int?
    @Option(help: "Ada-K allocator file (GGUF); 'identity' for the untrained one; implies --routing adak") var allocator: String?
    @Option(parsing: .unconditional, help: "Expert-FLOPs budget as a fraction of static Top-K (e.g. 0.75)") var budget: Float?
    @Option(help: "How --budget spreads over the MoE layers: global (one price for the whole model, keeping the policy's per-layer shares; the default), per_layer (every layer at budget × K) or schedule (layer l at its own --layer-targets mean k)") var budgetMode = "global"
    @Option(help: "Target mean k per MoE layer for --budget-mode schedule, comma-separated (e.g. a calibrated per-layer schedule; the budget is their mean / K)") var layerTargets: String?
    @Option(help: "With --layer-targets: layer l's k stays within [floor(t_l) - d, ceil(t_l) + d] (experiment; under --budget-mode global the shared price trades experts between layers only within these ranges)") var layerBand: Int?
    @Option(help: "Fixed price per expert for --routing adak without a budget, the same in every layer: k = argmax(logit_k − price·k)") var price: Float = 0

    /// The policy: --routing, else adak when an allocator is given, else topk.
    var policyName: String { routing ?? (allocator != nil ? "adak" : "topk") }

    func config() throws -> RoutingConfig {
        guard let policy = RoutingPolicy(rawValue: policyName) else {
            throw ValidationError("unknown routing policy '\(policyName)' (topk, adak, top_p, skip, entropy)")
        }
        if policy == .adak && allocator == nil {
            throw ValidationError("--routing adak needs an allocator: --allocator FILE (or --allocator identity for the untrained one)")
        }
        guard let mode = BudgetMode(rawValue: budgetMode) else {
            throw ValidationError("unknown --budget-mode '\(budgetMode)' (global, per_layer, schedule)")
        }
        if mode == .schedule && layerTargets == nil {
            throw ValidationError("--budget-mode schedule needs --layer-targets")
        }
        if (layerTargets != nil) && mode != .schedule && layerBand == nil {
            throw ValidationError("--layer-targets is for --budget-mode schedule (or, with --layer-band, k ranges under another mode)")
        }
        if let allocator, policy != .adak {
            throw ValidationError("--allocator \(allocator) is only used by --routing adak (given: --routing \(policyName))")
        }
        var r = RoutingConfig(policy: policy)
        r.k = k
        r.p = topPRouting
        r.beta = beta
        r.tau = tau
        r.kMin = kMin
        r.kMax = kMax
        r.budget = budget
        r.budgetMode = mode
        r.layerBand = layerBand
        if let layerTargets {
            r.layerTargets = try layerTargets.split(separator: ",").map { v -> Float in
                guard let k = Float(v.trimmingCharacters(in: .whitespaces)), k.isFinite else {
                    throw ValidationError("bad --layer-targets '\(layerTargets)'")
                }
                return k
            }
        }
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
        if !s.model.config.isMoE {
            if routing != nil || allocator != nil || budget != nil {
                emit(Array("note: \(s.model.config.arch) is a dense model: routing flags have no effect\n".utf8), to: 2)
            }
            r = RoutingConfig()
        }
        try s.setRouting(r)
        if let f = budget, s.model.config.isMoE {
            let floor = Float(min(r.kMin, s.model.config.nExpertUsed)) / Float(s.model.config.nExpertUsed)
            if f < floor {
                emit(Array("note: --budget \(f) is below what --k-min \(r.kMin) allows (\(r.kMin)/\(s.model.config.nExpertUsed) = \(floor) of static Top-K): every token will use k_min experts, spending \(floor)\n".utf8), to: 2)
            }
        }
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
