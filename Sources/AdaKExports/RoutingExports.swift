// Routing through the C ABI: adak_routing_params (and the deprecated keyed settings), the FLOPs
// budget, Ada-K allocator objects, and routing statistics. Mapping only: the policies, their
// validation, the budget controller and the FLOPs meter live in the core (Sources/AdaK/Routing).
import AdaK
import CAdaK
import Glibc

// MARK: - Policies (enum adak_routing_policy in include/adak.h)

let routingPolicies: [(code: Int64, policy: RoutingPolicy)] = {
    let pairs: [(adak_routing_policy, RoutingPolicy)] = [
        (ADAK_ROUTING_TOPK, .topK), (ADAK_ROUTING_ADAK, .adak), (ADAK_ROUTING_TOP_P, .topP),
        (ADAK_ROUTING_SKIP, .skip), (ADAK_ROUTING_ENTROPY, .entropy),
    ]
    return pairs.map { (Int64($0.0.rawValue), $0.1) }
}()

/// enum adak_budget_mode in include/adak.h.
let budgetModes: [(code: Int32, mode: BudgetMode)] = [
    (Int32(ADAK_BUDGET_GLOBAL.rawValue), .global), (Int32(ADAK_BUDGET_PER_LAYER.rawValue), .perLayer),
]

extension adak_routing_params: SizeTagged {
    /// 0.5's struct ended at flops_budget.
    static let firstVersionSize = MemoryLayout<adak_routing_params>.offset(of: \.flops_budget)! + MemoryLayout<Double>.size

    init(_ r: RoutingConfig) {
        self.init()
        size = UInt32(MemoryLayout<adak_routing_params>.size)
        policy = Int32(routingPolicies.first { $0.policy == r.policy }!.code)
        k = Int32(clamping: r.k ?? 0)
        k_min = Int32(clamping: r.kMin)
        k_max = Int32(clamping: r.kMax ?? 0)
        p = r.p
        beta = r.beta
        tau = r.tau
        price = r.price
        flops_budget = r.budget.map(Double.init) ?? 0
        // `schedule` (per-layer targets, Swift and CLI only: this struct cannot carry them) shows
        // as per_layer, the C mode it refines
        budget_mode = budgetModes.first { $0.mode == r.budgetMode }?.code ?? Int32(ADAK_BUDGET_PER_LAYER.rawValue)
    }

    /// `base` with every field of the struct applied (settings the C API does not show, such as
    /// forced-k hooks, stay); nil for an unknown policy or budget mode.
    func config(base: RoutingConfig) -> RoutingConfig? {
        guard let entry = routingPolicies.first(where: { $0.code == Int64(policy) }),
              let mode = budgetModes.first(where: { $0.code == budget_mode }) else { return nil }
        var r = base
        r.policy = entry.policy
        r.k = k == 0 ? nil : Int(k)
        r.kMin = Int(k_min)
        r.kMax = k_max == 0 ? nil : Int(k_max)
        r.p = p
        r.beta = beta
        r.tau = tau
        r.price = price
        r.budget = flops_budget == 0 ? nil : Float(flops_budget)
        r.budgetMode = mode.mode
        return r
    }
}

@_cdecl("adak_routing_params_init")
public func adak_routing_params_init(_ params: UnsafeMutablePointer<adak_routing_params>?, _ size: Int) -> Int32 {
    initSized(params, size: size, defaults: adak_routing_params(RoutingConfig()), function: "adak_routing_params_init")
}

@_cdecl("adak_session_set_routing")
public func adak_session_set_routing(_ session: OpaquePointer?, _ params: UnsafePointer<adak_routing_params>?) -> Int32 {
    let f = "adak_session_set_routing"
    return setSessionStruct(session, params, defaults: adak_routing_params(RoutingConfig()), function: f) { box, p in
        guard let r = p.config(base: box.session.routing) else {
            throw AdaKError.invalidArgument(budgetModes.contains { $0.code == p.budget_mode }
                ? "policy \(p.policy) is not an adak_routing_policy (0...\(routingPolicies.count - 1))"
                : "budget_mode \(p.budget_mode) is not an adak_budget_mode (0...\(budgetModes.count - 1))")
        }
        try box.session.setRouting(r)
    }
}

@_cdecl("adak_session_get_routing")
public func adak_session_get_routing(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<adak_routing_params>?) -> Int32 {
    getSessionStruct(session, out, function: "adak_session_get_routing") { adak_routing_params($0.session.routing) }
}

// MARK: - Keyed routing settings (deprecated since 0.5)

func policyNames() -> String { routingPolicies.map { "\"\($0.policy.rawValue)\"" }.joined(separator: ", ") }

/// Validates `r` against the session's model and installs it; on error the session keeps its
/// settings and the message names the function and key.
func applyRouting(_ r: RoutingConfig, to box: SessionBox, function: String, key: String) -> Int32 {
    do {
        try box.session.setRouting(r)
    } catch {
        return fail(error, in: "\(function) \"\(key)\"")
    }
    return Status.ok
}

/// The routing keys of adak_session_set_float; nil when `name` is not one of them.
func setRoutingFloat(_ box: SessionBox, _ name: String, _ value: Double, _ f: String) -> Int32? {
    var r = box.session.routing
    switch name {
    case "routing.p": r.p = Float(value)
    case "routing.beta": r.beta = Float(value)
    case "routing.tau": r.tau = Float(value)
    case "flops_budget":
        return invalid(f, "\"flops_budget\" is read-only here; use adak_session_set_flops_budget")
    default: return nil
    }
    return applyRouting(r, to: box, function: f, key: name)
}

/// The routing keys of adak_session_get_float; nil when `name` is not one of them.
func getRoutingFloat(_ box: SessionBox, _ name: String) -> Double? {
    let r = box.session.routing
    switch name {
    case "routing.p": return Double(r.p)
    case "routing.beta": return Double(r.beta)
    case "routing.tau": return Double(r.tau)
    case "flops_budget": return r.budget.map(Double.init) ?? 0
    default: return nil
    }
}

/// The routing keys of adak_session_set_int; nil when `name` is not one of them.
func setRoutingInt(_ box: SessionBox, _ name: String, _ value: Int64, _ f: String) -> Int32? {
    var r = box.session.routing
    let nExpert = box.session.model.config.nExpert
    // 0 selects the default where a default exists; the core checks the upper bounds.
    func count(_ what: String, allowZero: Bool) -> Int? {
        guard value >= (allowZero ? 0 : 1), value <= Int64(Int32.max) else {
            invalid(f, "\(what) \(value) is out of range (\(allowZero ? 0 : 1)...\(max(nExpert, 1)))")
            return nil
        }
        return Int(value)
    }
    switch name {
    case "routing":
        guard let entry = routingPolicies.first(where: { $0.code == value }) else {
            return invalid(f, "routing \(value) is not an adak_routing_policy (0...\(routingPolicies.count - 1))")
        }
        r.policy = entry.policy
    case "routing.k":
        guard let k = count("routing.k", allowZero: true) else { return Status.invalidArgument }
        r.k = k == 0 ? nil : k
    case "routing.k_min":
        guard let k = count("routing.k_min", allowZero: false) else { return Status.invalidArgument }
        r.kMin = k
    case "routing.k_max":
        guard let k = count("routing.k_max", allowZero: true) else { return Status.invalidArgument }
        r.kMax = k == 0 ? nil : k
    default: return nil
    }
    return applyRouting(r, to: box, function: f, key: name)
}

/// The routing keys of adak_session_get_int; nil when `name` is not one of them.
func getRoutingInt(_ box: SessionBox, _ name: String) -> Int64? {
    let r = box.session.routing
    switch name {
    case "routing": return routingPolicies.first { $0.policy == r.policy }?.code ?? 0
    case "routing.k": return Int64(r.k ?? 0)
    case "routing.k_min": return Int64(r.kMin)
    case "routing.k_max": return Int64(r.kMax ?? 0)
    default: return nil
    }
}

@_cdecl("adak_session_set_string")
public func adak_session_set_string(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                    _ value: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_session_set_string"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value, let text = hostString(value) else { return invalid(f, "\(name): value is NULL or not UTF-8") }
    switch name {
    case "routing":
        guard let policy = RoutingPolicy(rawValue: text) else {
            return invalid(f, "unknown routing policy \"\(text)\" (known: \(policyNames()))")
        }
        var r = box.session.routing
        r.policy = policy
        return applyRouting(r, to: box, function: f, key: name)
    default:
        return invalid(f, "unknown string key \"\(name)\"")
    }
}

@_cdecl("adak_session_get_string")
public func adak_session_get_string(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                    _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                    _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_get_string"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let length else { return invalid(f, "len is NULL") }
    guard isValidCount(capacity) else { return invalid(f, "capacity is out of range") }
    guard buffer != nil || capacity == 0 else { return invalid(f, "buf is NULL but capacity is \(capacity)") }
    switch name {
    case "routing":
        return writeText(Array(box.session.routing.policy.rawValue.utf8), to: buffer, capacity: capacity,
                         length: length, function: f)
    default:
        return invalid(f, "unknown string key \"\(name)\"")
    }
}

// MARK: - FLOPs budget

@_cdecl("adak_session_set_flops_budget")
public func adak_session_set_flops_budget(_ session: OpaquePointer?, _ fraction: Double) -> Int32 {
    let f = "adak_session_set_flops_budget"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard fraction != 0 else {
        return invalid(f, "fraction 0 is not a budget (use adak_session_clear_flops_budget to remove the budget)")
    }
    do {
        try box.session.setBudget(Float(fraction))
    } catch {
        return fail(error, in: f)
    }
    return Status.ok
}

@_cdecl("adak_session_clear_flops_budget")
public func adak_session_clear_flops_budget(_ session: OpaquePointer?) -> Int32 {
    let f = "adak_session_clear_flops_budget"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    do {
        try box.session.setBudget(nil)
    } catch {
        return fail(error, in: f)
    }
    return Status.ok
}

// MARK: - Allocators

/// The object behind an `adak_allocator *`. The allocator is never changed through the C API,
/// so sessions that use it share it with the handle (and keep it alive after the handle is
/// freed).
final class AllocatorBox {
    let allocator: Allocator
    init(allocator: Allocator) { self.allocator = allocator }
}

func allocatorBox(_ pointer: OpaquePointer?) -> AllocatorBox? {
    lookup(UnsafeRawPointer(pointer), .allocator, as: AllocatorBox.self)
}

@_cdecl("adak_allocator_load")
public func adak_allocator_load(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_allocator_load"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let path else { return invalid(f, "path is NULL") }
    guard let pathString = hostString(path) else { return invalid(f, "path is not valid UTF-8") }
    guard !box.model.moeLayerIndices.isEmpty else {
        return invalid(f, "the model has no MoE layers: allocators only exist for MoE models")
    }
    do {
        let a = try Allocator(path: pathString, model: box.model)
        out.pointee = OpaquePointer(register(AllocatorBox(allocator: a), as: .allocator))
        Log.info("allocator loaded from \(pathString): \(a.layers.count) MoE layers, \(a.nExpert) actions")
        return Status.ok
    } catch {
        return fail(error, in: "\(f) \"\(pathString)\"")
    }
}

@_cdecl("adak_allocator_identity")
public func adak_allocator_identity(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_allocator_identity"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard !box.model.moeLayerIndices.isEmpty else {
        return invalid(f, "the model has no MoE layers: allocators only exist for MoE models")
    }
    let a = Allocator.identity(for: box.model)
    out.pointee = OpaquePointer(register(AllocatorBox(allocator: a), as: .allocator))
    return Status.ok
}

@_cdecl("adak_allocator_save")
public func adak_allocator_save(_ allocator: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_allocator_save"
    guard let box = allocatorBox(allocator) else { return invalid(f, "allocator is NULL or not a live adak_allocator") }
    guard let path else { return invalid(f, "path is NULL") }
    guard let pathString = hostString(path) else { return invalid(f, "path is not valid UTF-8") }
    do {
        try box.allocator.write(to: pathString)
        return Status.ok
    } catch {
        return fail(error, in: "\(f) \"\(pathString)\"")
    }
}

@_cdecl("adak_allocator_free")
public func adak_allocator_free(_ allocator: OpaquePointer?) {
    unregister(UnsafeRawPointer(allocator), .allocator, as: AllocatorBox.self)
}

@_cdecl("adak_session_set_allocator")
public func adak_session_set_allocator(_ session: OpaquePointer?, _ allocator: OpaquePointer?) -> Int32 {
    let f = "adak_session_set_allocator"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    var a: Allocator? = nil
    if let allocator {
        guard let ab = allocatorBox(allocator) else { return invalid(f, "allocator is not a live adak_allocator") }
        a = ab.allocator
    }
    do {
        try box.session.setAllocator(a)
    } catch {
        return fail(error, in: f)
    }
    return Status.ok
}

// MARK: - Statistics

extension adak_stats: SizeTagged {
    static let firstVersionSize = MemoryLayout<adak_stats>.size
}

@_cdecl("adak_session_get_stats")
public func adak_session_get_stats(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<adak_stats>?) -> Int32 {
    getSessionStruct(session, out, function: "adak_session_get_stats") { box in
        let s = box.session.stats
        let c = box.session.model.config
        var v = adak_stats()
        v.n_moe_layers = Int32(clamping: s.kSum.count)
        v.n_expert = Int32(clamping: c.nExpert)
        v.k_native = Int32(clamping: c.nExpertUsed)
        v.tokens = Int64(s.tokens)
        v.mean_k = s.meanK
        v.expert_flops = s.expertFlops
        v.expert_flops_topk = s.expertFlopsTopK
        v.expert_fraction = s.expertFraction
        v.total_flops = s.totalFlops
        v.total_flops_topk = s.totalFlopsTopK
        v.total_fraction = s.totalFraction
        return v
    }
}

/// Copies `values` to a host array following the sized-output rules of adak.h.
func writeArray<T>(_ values: [T], to out: UnsafeMutablePointer<T>?, capacity: Int,
                   count: UnsafeMutablePointer<Int>?, function f: String) -> Int32 {
    guard let count else { return invalid(f, "n is NULL") }
    guard isValidCount(capacity) else { return invalid(f, "capacity is out of range") }
    guard out != nil || capacity == 0 else { return invalid(f, "out is NULL but capacity is \(capacity)") }
    count.pointee = values.count
    guard capacity >= values.count else {
        return fail(Status.bufferTooSmall, "\(f): \(values.count) values needed, the buffer holds \(capacity)")
    }
    if let out { for (i, v) in values.enumerated() { out[i] = v } }
    return Status.ok
}

@_cdecl("adak_session_get_mean_k_per_layer")
public func adak_session_get_mean_k_per_layer(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?,
                                              _ capacity: Int, _ n: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_get_mean_k_per_layer"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    return writeArray(box.session.stats.meanKPerLayer, to: out, capacity: capacity, count: n, function: f)
}

@_cdecl("adak_session_get_k_histogram")
public func adak_session_get_k_histogram(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?,
                                         _ capacity: Int, _ n: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_get_k_histogram"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    let hist = box.session.model.config.nExpert > 0 ? box.session.stats.kHistogram.map(Int64.init) : []
    return writeArray(hist, to: out, capacity: capacity, count: n, function: f)
}

@_cdecl("adak_session_reset_stats")
public func adak_session_reset_stats(_ session: OpaquePointer?) -> Int32 {
    guard let box = mutableSessionBox(session, "adak_session_reset_stats") else { return Status.invalidArgument }
    box.session.resetStats()
    return Status.ok
}

@_cdecl("adak_model_get_moe_layers")
public func adak_model_get_moe_layers(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?,
                                      _ capacity: Int, _ n: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_model_get_moe_layers"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    return writeArray(box.model.moeLayerIndices.map { Int32($0) }, to: out, capacity: capacity, count: n, function: f)
}
