#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// Settings of a carve (`Carver.carve`).
public struct CarveOptions: Sendable {
    /// Routed experts E per layer; must divide the dense FFN width.
    public var experts = 16
    /// Fraction S of each FFN's neurons in the always-on shared expert (rounded so that the
    /// rest splits into E equal experts).
    public var sharedFraction: Float = 0.25
    /// Native K written into the model (`expert_used_count`).
    public var topK = 8
    /// Seed of the k-means initialisation.
    public var seed: UInt64 = 0
    /// Calibration text (UTF-8). Required unless `plan` is given.
    public var calibrationText: String? = nil
    /// Apply this plan instead of calibrating (the dense file must be the one it was made from).
    public var plan: CarvePlan? = nil
    /// Calibration tokens captured at most, in `window`-token windows spread over the text
    /// (each window's first token is not captured).
    public var maxTokens = 4096
    public var window = 512
    public var kmeansIterations = 30
    /// Ridge of the router fit, relative: λ = ridge · mean diagonal of XᵀX.
    public var ridge: Float = 1e-3
    /// Weight format of experts and shared expert. Matrices whose rows are not a multiple of 32
    /// long (down projections of experts narrower than that) are stored as F16 instead (f32 for
    /// `.f32`); the loader runs them in f32.
    public var expertType: WeightType = .q8_0
    /// Layers to carve (nil: all); the others stay dense.
    public var layers: [Int]? = nil
    /// Threads for the forward pass and OpenBLAS (0: all cores).
    public var threads = 0
    public init() {}

    /// Checks each setting's own range (what does not depend on the model; `Carver` checks the
    /// rest against the dense model's shapes).
    public func validate() throws {
        func bad(_ m: String) -> AdaKError { .invalidArgument(m) }
        guard experts >= 2, experts <= ModelConfig.maxExperts else { throw bad("experts = \(experts) out of range 2...\(ModelConfig.maxExperts)") }
        guard topK >= 1, topK <= ModelConfig.maxExperts else { throw bad("top_k = \(topK) out of range 1...\(ModelConfig.maxExperts)") }
        guard sharedFraction.isFinite, sharedFraction >= 0, sharedFraction < 1 else {
            throw bad("shared_fraction \(sharedFraction) must be in [0, 1)")
        }
        guard maxTokens >= 16, maxTokens <= 1 << 20 else { throw bad("calib_tokens \(maxTokens) out of range 16...\(1 << 20)") }
        guard window >= 16, window <= 1 << 20 else { throw bad("window \(window) out of range 16...\(1 << 20)") }
        guard kmeansIterations >= 1, kmeansIterations <= 1000 else { throw bad("kmeans_iterations \(kmeansIterations) out of range 1...1000") }
        guard ridge.isFinite, ridge >= 0, ridge <= 1e6 else { throw bad("ridge \(ridge) must be in [0, 1e6]") }
        guard threads >= 0, threads <= 1024 else { throw bad("threads \(threads) out of range 0...1024") }
        if let layers { guard layers.allSatisfy({ $0 >= 0 && $0 < 1 << 20 }) else { throw bad("layers must be non-negative indices") } }
    }
}

public enum CarveStage: String, Sendable {
    case calibrating, clustering, writing
}

/// Progress: (stage, done, total); return false to cancel (the carve throws `.cancelled`).
public typealias CarveProgress = (CarveStage, Int, Int) -> Bool

/// Carves a dense GGUF model's FFNs into an `adak-moe` mixture of experts (CarvedArchitecture):
/// calibration capture → shared expert by neuron importance → balanced k-means into E experts →
/// ridge-regression router → MoE GGUF (steps in docs/CARVING.md, "Method"). Deterministic for a
/// fixed seed, calibration text, options and thread count.
public enum Carver {
    /// Carves `dense` into `output` (calibrating, or applying `options.plan`) and returns the plan.
    @discardableResult
    public static func carve(dense: String, output: String, options: CarveOptions = CarveOptions(),
                             progress: CarveProgress? = nil) throws -> CarvePlan {
        let g = try GGUFFile(path: dense)
        try checkDense(g, path: dense)
        let plan: CarvePlan
        if let p = options.plan {
            plan = p
        } else {
            plan = try makePlan(model: Model(gguf: g), options: options, progress: progress)
        }
        let bytes = try apply(plan: plan, dense: g, expertType: options.expertType, progress: progress)
        try writeFileAtomically(bytes, to: output)
        return plan
    }

    /// Throws unless `g` is a dense model of a carvable architecture.
    static func checkDense(_ g: GGUFFile, path: String) throws {
        let arch = g.string("general.architecture") ?? ""
        let c = try ModelConfig(gguf: g)
        if c.isMoE || arch == CarvedArchitecture.name || g.tensors.contains(where: { $0.name.hasSuffix("ffn_gate_inp.weight") }) {
            throw AdaKError.unsupported("'\(path)' is already a mixture-of-experts model (\(arch), \(c.nExpert) experts): carving needs a dense model")
        }
        guard CarvedArchitecture.bases.contains(arch) else {
            throw AdaKError.unsupported("cannot carve architecture '\(arch)' (supported: \(CarvedArchitecture.bases.joined(separator: ", ")))")
        }
        guard c.nFF > 0 else { throw AdaKError.format("\(arch).feed_forward_length is missing") }
    }

    /// FNV-1a over 64-bit words of every FFN tensor's bytes (and its shape and type), in file
    /// order: identifies the dense weights a plan was made from.
    public static func fingerprint(_ g: GGUFFile) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) { h ^= v; h = h &* 0x0000_0100_0000_01b3 }
        for t in g.tensors where t.name.contains(".ffn_") {
            for d in t.dims { mix(UInt64(d)) }
            mix(UInt64(t.type))
            let p = g.data(t)
            let words = t.byteCount / 8
            for i in 0..<words { mix((p + i * 8).loadUnaligned(as: UInt64.self)) }
            for i in (words * 8)..<t.byteCount { mix(UInt64((p + i).load(as: UInt8.self))) }
        }
        return Allocator.hex(h)
    }

    /// Shapes implied by the options for a dense FFN of width `nFF`.
    static func shape(nFF f: Int, options o: CarveOptions) throws -> (shared: Int, width: Int) {
        let e = o.experts
        guard e >= 2, e <= min(ModelConfig.maxExperts, f) else {
            throw AdaKError.invalidArgument("experts = \(e) out of range 2...\(min(ModelConfig.maxExperts, f))")
        }
        guard f % e == 0 else {
            throw AdaKError.invalidArgument("experts = \(e) does not divide the FFN width \(f)")
        }
        try o.validate()
        let wantShared = Int((Double(o.sharedFraction) * Double(f)).rounded())
        let width = (f - wantShared) / e
        guard width >= 1 else { throw AdaKError.invalidArgument("shared fraction \(o.sharedFraction) leaves no neurons for \(e) experts") }
        guard o.topK >= 1, o.topK <= e else { throw AdaKError.invalidArgument("top-k = \(o.topK) out of range 1...\(e)") }
        return (f - e * width, width)
    }

    // MARK: - plan

    /// Calibrates on `options.calibrationText` and decides the plan.
    public static func makePlan(model: Model, options o: CarveOptions, progress: CarveProgress? = nil) throws -> CarvePlan {
        try checkDense(model.gguf, path: model.config.name)
        let c = model.config
        let (nShared, width) = try shape(nFF: c.nFF, options: o)
        guard let text = o.calibrationText, text.utf8.contains(where: { $0 > 32 }) else {
            throw AdaKError.invalidArgument("calibration text is empty")
        }
        guard o.window <= c.contextLength else {
            throw AdaKError.invalidArgument("calibration window \(o.window) out of range 16...\(c.contextLength)")
        }
        let layerIdx = o.layers.map { Array(Set($0)).sorted() } ?? Array(0..<c.nLayer)
        guard !layerIdx.isEmpty, layerIdx.allSatisfy({ $0 >= 0 && $0 < c.nLayer }) else {
            throw AdaKError.invalidArgument("layers to carve must be in 0..<\(c.nLayer)")
        }
        let threads = o.threads == 0 ? Int(akk_default_threads()) : o.threads
        akk_blas_set_threads(Int32(threads))

        let store = try capture(model: model, text: text, layers: layerIdx, options: o, threads: threads, progress: progress)
        guard store.rows >= 2 else {
            throw AdaKError.invalidArgument("calibration text is too short (\(store.rows) tokens captured)")
        }
        var layers: [CarvePlan.Layer] = []
        for (i, l) in layerIdx.enumerated() {
            layers.append(try planLayer(model: model, layer: l, slot: i, store: store, nShared: nShared, width: width, options: o))
            if let progress, !progress(.clustering, i + 1, layerIdx.count) { throw AdaKError.cancelled("carving cancelled") }
        }
        return CarvePlan(experts: o.experts, expertUsed: o.topK, sharedCount: nShared, expertWidth: width,
                         nEmbd: c.nEmbd, nFF: c.nFF, nLayer: c.nLayer, denseFingerprint: fingerprint(model.gguf),
                         seed: o.seed, sharedFraction: o.sharedFraction, calibrationTokens: store.rows, layers: layers)
    }

    /// FFN inputs (f32) and activations (f16) of the carved layers for the calibration tokens.
    final class ActivationStore {
        let d: Int, f: Int, capacity: Int
        let x: [UnsafeMutablePointer<Float>]
        let a: [UnsafeMutablePointer<UInt16>]
        var rows = 0
        init(layers: Int, d: Int, f: Int, capacity: Int) {
            self.d = d
            self.f = f
            self.capacity = capacity
            x = (0..<layers).map { _ in .allocate(capacity: capacity * d) }
            a = (0..<layers).map { _ in .allocate(capacity: capacity * f) }
        }
        deinit {
            for p in x { p.deallocate() }
            for p in a { p.deallocate() }
        }
    }

    /// Runs the dense model over windows of the calibration text spread evenly over it.
    static func capture(model: Model, text: String, layers: [Int], options o: CarveOptions, threads: Int,
                        progress: CarveProgress?) throws -> ActivationStore {
        let c = model.config
        let bytes = Array(text.utf8)
        let window = o.window
        let nWin = max(1, (o.maxTokens + window - 2) / (window - 1))
        let segment = max(1, bytes.count / nWin)
        var windows: [[Int32]] = []
        var total = 0
        for w in 0..<nWin where total < o.maxTokens {
            var start = min(w * segment, bytes.count)
            if w > 0 {   // begin at a line start
                if let nl = bytes[start..<min(bytes.count, start + segment)].firstIndex(of: 10) { start = nl + 1 }
            }
            var end = min(bytes.count, start + window * 16)
            if end < bytes.count {   // end at ASCII whitespace (never inside a UTF-8 sequence)
                while end > start, bytes[end - 1] != 10, bytes[end - 1] != 32 { end -= 1 }
            }
            guard end > start else { continue }
            let toks = model.tokenizer.tokenize(Array(bytes[start..<end]), addSpecial: true, parseSpecial: false)
            guard toks.count >= 2 else { continue }
            let win = Array(toks.prefix(window))
            windows.append(win)
            total += win.count - 1
        }
        let capacity = min(total, o.maxTokens)
        let store = ActivationStore(layers: layers.count, d: c.nEmbd, f: c.nFF, capacity: max(capacity, 1))
        guard capacity >= 2 else { return store }
        var p = SessionParams()
        p.contextSize = window
        p.batchSize = window
        p.threads = threads
        let session = try Session(model: model, params: p)
        let slotOf = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($1, $0) })
        let d = c.nEmbd, f = c.nFF
        var base = 0
        session.state.ffnCapture = { l, n, x, h in
            guard let s = slotOf[l] else { return }
            let take = min(n - 1, capacity - base)
            guard take > 0 else { return }
            (store.x[s] + base * d).update(from: x + d, count: take * d)
            akk_fp32_to_fp16_row(h + f, store.a[s] + base * f, Int64(take * f))
        }
        for (i, w) in windows.enumerated() where base < capacity {
            session.reset()
            try session.evaluate(w)
            base += min(w.count - 1, capacity - base)
            if let progress, !progress(.calibrating, i + 1, windows.count) { throw AdaKError.cancelled("carving cancelled") }
        }
        session.state.ffnCapture = nil
        store.rows = base
        return store
    }

    /// Shared set, experts and router of one layer.
    static func planLayer(model: Model, layer l: Int, slot: Int, store: ActivationStore, nShared: Int, width: Int,
                          options o: CarveOptions) throws -> CarvePlan.Layer {
        let g = model.gguf
        let d = store.d, f = store.f, T = store.rows, E = o.experts
        guard let downT = g.tensor("blk.\(l).ffn_down.weight") else { throw AdaKError.format("missing blk.\(l).ffn_down.weight") }
        let down = try g.dequantize(downT)                   // d rows × f
        guard down.count == d * f else { throw AdaKError.format("blk.\(l).ffn_down.weight has the wrong shape") }
        let A = [Float](unsafeUninitializedCapacity: T * f) { buf, n in
            akk_fp16_to_fp32_row(store.a[slot], buf.baseAddress!, Int64(T * f))
            n = T * f
        }
        let X = UnsafePointer(store.x[slot])

        // importance = mean|a| · ‖down column‖
        var meanAbs = [Double](repeating: 0, count: f)
        A.withUnsafeBufferPointer { a in
            for t in 0..<T { for j in 0..<f { meanAbs[j] += Double(abs(a[t * f + j])) } }
        }
        var colNorm = [Double](repeating: 0, count: f)
        for r in 0..<d { for j in 0..<f { colNorm[j] += Double(down[r * f + j] * down[r * f + j]) } }
        let importance = (0..<f).map { meanAbs[$0] / Double(T) * colNorm[$0].squareRoot() }
        let byImportance = (0..<f).sorted { importance[$0] > importance[$1] || (importance[$0] == importance[$1] && $0 < $1) }
        let shared = byImportance.prefix(nShared).sorted()
        var isShared = [Bool](repeating: false, count: f)
        for j in shared { isShared[j] = true }
        let rest = (0..<f).filter { !isShared[$0] }

        // profiles: |a| of each remaining neuron over the tokens, unit L2 norm
        let R = rest.count
        var P = [Float](repeating: 0, count: R * T)
        A.withUnsafeBufferPointer { a in
            for (r, j) in rest.enumerated() {
                var s: Double = 0
                for t in 0..<T { let v = abs(a[t * f + j]); P[r * T + t] = v; s += Double(v * v) }
                if s > 0 {
                    let inv = Float(1 / s.squareRoot())
                    for t in 0..<T { P[r * T + t] *= inv }
                }
            }
        }
        var rng = SplitMix64(seed: o.seed &+ 0x9e37_79b9_7f4a_7c15 &* UInt64(l + 1))
        let cluster = balancedKMeans(P, rows: R, dim: T, k: E, capacity: width, iterations: o.kmeansIterations, rng: &rng)
        var members = [[Int]](repeating: [], count: E)
        for r in 0..<R { members[cluster[r]].append(rest[r]) }
        members.sort { $0[0] < $1[0] }
        let order = shared.map { Int32($0) } + members.flatMap { $0.map { Int32($0) } }

        // targets: ‖y_e‖ = sqrt(a_eᵀ (D_eᵀ D_e) a_e) per token and expert
        var norms = [Float](repeating: 0, count: T * E)
        var Ae = [Float](repeating: 0, count: T * width)
        var De = [Float](repeating: 0, count: d * width)
        var G = [Float](repeating: 0, count: width * width)
        var Z = [Float](repeating: 0, count: T * width)
        for (e, m) in members.enumerated() {
            for t in 0..<T { for (i, j) in m.enumerated() { Ae[t * width + i] = A[t * f + j] } }
            for r in 0..<d { for (i, j) in m.enumerated() { De[r * width + i] = down[r * f + j] } }
            akk_sgemm(1, 0, Int64(width), Int64(width), Int64(d), 1, De, Int64(width), De, Int64(width), 0, &G, Int64(width))
            akk_sgemm(0, 0, Int64(T), Int64(width), Int64(width), 1, Ae, Int64(width), G, Int64(width), 0, &Z, Int64(width))
            for t in 0..<T {
                var s: Float = 0
                for i in 0..<width { s += Z[t * width + i] * Ae[t * width + i] }
                norms[t * E + e] = max(s, 0).squareRoot()
            }
        }

        // router: ridge least squares [x, 1] → norms
        let n = d + 1, m = T + d
        var M = [Float](repeating: 0, count: m * n)
        var B = [Float](repeating: 0, count: m * E)
        var diag: Double = 0
        for t in 0..<T {
            for i in 0..<d { let v = X[t * d + i]; M[t * n + i] = v; diag += Double(v * v) }
            M[t * n + d] = 1
            for e in 0..<E { B[t * E + e] = norms[t * E + e] }
        }
        let lam = Float((Double(o.ridge) * diag / Double(d)).squareRoot())
        for i in 0..<d { M[(T + i) * n + i] = max(lam, 1e-6) }
        let info = akk_sgels(Int64(m), Int64(n), Int64(E), &M, &B)
        guard info == 0 else { throw AdaKError.format("router fit of layer \(l) failed (sgels info \(info))") }
        var weight = [Float](repeating: 0, count: E * d)
        var bias = [Float](repeating: 0, count: E)
        for e in 0..<E {
            for i in 0..<d { weight[e * d + i] = B[i * E + e] }
            bias[e] = B[d * E + e]
        }
        guard weight.allSatisfy({ $0.isFinite }), bias.allSatisfy({ $0.isFinite }) else {
            throw AdaKError.format("router fit of layer \(l) is not finite")
        }

        // diagnostic: overlap of the router's top-K with the oracle's (true norms)
        var hit = 0
        let K = o.topK
        for t in 0..<T {
            var pred = [Float](repeating: 0, count: E)
            for e in 0..<E {
                var s = bias[e]
                for i in 0..<d { s += weight[e * d + i] * X[t * d + i] }
                pred[e] = s
            }
            let topPred = Set((0..<E).sorted { pred[$0] > pred[$1] || (pred[$0] == pred[$1] && $0 < $1) }.prefix(K))
            let topTrue = (0..<E).sorted { norms[t * E + $0] > norms[t * E + $1] || (norms[t * E + $0] == norms[t * E + $1] && $0 < $1) }.prefix(K)
            hit += topTrue.filter { topPred.contains($0) }.count
        }
        return CarvePlan.Layer(index: l, order: order, routerWeight: weight, routerBias: bias,
                               routerRecall: Float(Double(hit) / Double(T * K)))
    }

    /// Balanced k-means: `rows` points of `dim` (row-major) into `k` clusters of exactly
    /// `capacity` points (rows == k · capacity). k-means++ seeding; each iteration assigns the
    /// (point, cluster) pairs in increasing squared distance while the cluster has room, then
    /// moves the centroids to their means; stops when the assignment repeats.
    static func balancedKMeans(_ P: [Float], rows R: Int, dim T: Int, k E: Int, capacity w: Int, iterations: Int,
                               rng: inout SplitMix64) -> [Int] {
        precondition(R == E * w)
        var C = [Float](repeating: 0, count: E * T)
        var pn = [Float](repeating: 0, count: R)
        for r in 0..<R { var s: Float = 0; for t in 0..<T { s += P[r * T + t] * P[r * T + t] }; pn[r] = s }
        // k-means++
        var chosen: [Int] = [Int(rng.next() % UInt64(R))]
        var minD = [Double](repeating: .infinity, count: R)
        while true {
            let cIdx = chosen.last!
            for t in 0..<T { C[(chosen.count - 1) * T + t] = P[cIdx * T + t] }
            if chosen.count == E { break }
            for r in 0..<R {
                var dot: Float = 0
                for t in 0..<T { dot += P[r * T + t] * P[cIdx * T + t] }
                minD[r] = min(minD[r], max(0, Double(pn[r] + pn[cIdx] - 2 * dot)))
            }
            let total = minD.reduce(0, +)
            var pick = -1
            if total > 0 {
                var u = rng.nextDouble() * total
                for r in 0..<R where minD[r] > 0 {
                    u -= minD[r]
                    if u <= 0 { pick = r; break }
                }
                if pick < 0 { pick = (0..<R).last { minD[$0] > 0 }! }
            } else {
                pick = (0..<R).first { !chosen.contains($0) }!
            }
            chosen.append(pick)
        }
        var assign = [Int](repeating: -1, count: R)
        var S = [Float](repeating: 0, count: R * E)
        for _ in 0..<iterations {
            akk_sgemm(0, 1, Int64(R), Int64(E), Int64(T), 1, P, Int64(T), C, Int64(T), 0, &S, Int64(E))
            var cn = [Float](repeating: 0, count: E)
            for e in 0..<E { var s: Float = 0; for t in 0..<T { s += C[e * T + t] * C[e * T + t] }; cn[e] = s }
            var pairs: [(cost: Float, r: Int32, e: Int32)] = []
            pairs.reserveCapacity(R * E)
            for r in 0..<R { for e in 0..<E { pairs.append((cn[e] - 2 * S[r * E + e], Int32(r), Int32(e))) } }
            pairs.sort { $0.cost < $1.cost || ($0.cost == $1.cost && ($0.r < $1.r || ($0.r == $1.r && $0.e < $1.e))) }
            var next = [Int](repeating: -1, count: R)
            var room = [Int](repeating: w, count: E)
            var left = R
            for p in pairs where left > 0 {
                let r = Int(p.r), e = Int(p.e)
                if next[r] < 0 && room[e] > 0 { next[r] = e; room[e] -= 1; left -= 1 }
            }
            if next == assign { break }
            assign = next
            for i in C.indices { C[i] = 0 }
            for r in 0..<R { let e = assign[r]; for t in 0..<T { C[e * T + t] += P[r * T + t] } }
            for i in C.indices { C[i] /= Float(w) }
        }
        return assign
    }

    // MARK: - writing the MoE

    /// The carved model's GGUF bytes: the dense file with each planned layer's FFN replaced by
    /// the router, experts and shared expert.
    public static func apply(plan: CarvePlan, dense g: GGUFFile, expertType: WeightType = .q8_0,
                             progress: CarveProgress? = nil) throws -> [UInt8] {
        let c = try ModelConfig(gguf: g)
        guard c.nEmbd == plan.nEmbd, c.nFF == plan.nFF, c.nLayer == plan.nLayer else {
            throw AdaKError.invalidArgument("the carving plan is for another model shape (n_embd \(plan.nEmbd), n_ff \(plan.nFF), \(plan.nLayer) layers; model: \(c.nEmbd), \(c.nFF), \(c.nLayer))")
        }
        let fp = fingerprint(g)
        guard fp == plan.denseFingerprint else {
            throw AdaKError.invalidArgument("the carving plan was made from other dense weights (fingerprint \(plan.denseFingerprint), this file \(fp))")
        }
        let base = c.arch, arch = CarvedArchitecture.name
        var w = GGUFWriter()
        w.alignment = g.alignment
        w.set("general.architecture", .string(arch))
        for k in g.metadataKeys where k != "general.architecture" && k != "general.file_type" && k != "general.alignment" {
            guard let v = g.metadata[k] else { continue }
            if k.hasPrefix(base + ".") { w.set(arch + k.dropFirst(base.count), v) } else { w.set(k, v) }
        }
        w.set("general.name", .string("\(g.string("general.name") ?? base) (carved: \(plan.experts) experts, \(plan.sharedCount) shared neurons)"))
        let a = arch + "."
        w.set(a + "base_architecture", .string(base))
        w.set(a + "rope.type", .string(c.traits.ropeNeoX ? "neox" : "norm"))
        w.set(a + "expert_weighting", .string("unit"))
        w.set(a + "router_type", .string("predicted_norm"))
        w.set(a + "expert_shared_always_on", .bool(true))
        w.set(a + "expert_count", .uint32(UInt32(plan.experts)))
        w.set(a + "expert_used_count", .uint32(UInt32(plan.expertUsed)))
        w.set(a + "expert_feed_forward_length", .uint32(UInt32(plan.expertWidth)))
        if plan.sharedCount > 0 { w.set(a + "expert_shared_feed_forward_length", .uint32(UInt32(plan.sharedCount))) }
        w.set("adak.carve.dense_fingerprint", .string(plan.denseFingerprint))
        w.set("adak.carve.seed", .uint64(plan.seed))
        w.set("adak.carve.shared_fraction", .float32(plan.sharedFraction))
        w.set("adak.carve.calibration_tokens", .uint32(UInt32(plan.calibrationTokens)))
        w.set("adak.carve.expert_type", .string(expertType.rawValue))

        let byLayer = Dictionary(uniqueKeysWithValues: plan.layers.map { ($0.index, $0) })
        var done = 0
        for t in g.tensors {
            if let (l, part) = ffnPart(t.name), let lp = byLayer[l] {
                if part == "gate" {
                    try addExperts(&w, plan: plan, layer: lp, dense: g, type: expertType)
                    done += 1
                    if let progress, !progress(.writing, done, plan.layers.count) { throw AdaKError.cancelled("carving cancelled") }
                }
                continue
            }
            try w.addTensor(name: t.name, dims: t.dims, type: t.type,
                            bytes: Array(UnsafeRawBufferPointer(start: g.data(t), count: t.byteCount)))
        }
        guard done == plan.layers.count else { throw AdaKError.format("the dense file lacks some planned FFN layers") }
        return w.serialize()
    }

    /// ("blk.N.ffn_gate.weight") → (N, "gate") for the dense FFN tensors.
    static func ffnPart(_ name: String) -> (Int, String)? {
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", parts[3] == "weight", let l = Int(parts[1]) else { return nil }
        switch parts[2] {
        case "ffn_gate": return (l, "gate")
        case "ffn_up": return (l, "up")
        case "ffn_down": return (l, "down")
        default: return nil
        }
    }

    static func addExperts(_ w: inout GGUFWriter, plan: CarvePlan, layer lp: CarvePlan.Layer, dense g: GGUFFile, type: WeightType) throws {
        let l = lp.index, d = plan.nEmbd, f = plan.nFF, E = plan.experts, we = plan.expertWidth, S = plan.sharedCount
        func load(_ part: String, _ count: Int) throws -> [Float] {
            guard let t = g.tensor("blk.\(l).ffn_\(part).weight"), t.elementCount == count else {
                throw AdaKError.format("blk.\(l).ffn_\(part).weight missing or misshapen")
            }
            return try g.dequantize(t)
        }
        let gate = try load("gate", f * d), up = try load("up", f * d), down = try load("down", d * f)
        let order = lp.order.map { Int($0) }
        // gate/up rows (n_ff × d) in plan order; down columns likewise
        func rows(_ m: [Float], _ idx: ArraySlice<Int>) -> [Float] {
            var out = [Float](); out.reserveCapacity(idx.count * d)
            for j in idx { out.append(contentsOf: m[(j * d)..<((j + 1) * d)]) }
            return out
        }
        func columns(_ idx: ArraySlice<Int>) -> [Float] {
            var out = [Float](); out.reserveCapacity(idx.count * d)
            for r in 0..<d { for j in idx { out.append(down[r * f + j]) } }
            return out
        }
        let p = "blk.\(l)."
        try w.addTensor(name: p + "ffn_gate_inp.weight", dims: [d, E], values: lp.routerWeight)
        try w.addTensor(name: p + "ffn_gate_inp.bias", dims: [E], values: lp.routerBias)
        var gE: [Float] = [], uE: [Float] = [], dE: [Float] = []
        for e in 0..<E {
            let idx = order[(S + e * we)..<(S + (e + 1) * we)]
            gE += rows(gate, idx)
            uE += rows(up, idx)
            dE += columns(idx)
        }
        try addEncoded(&w, p + "ffn_gate_exps.weight", [d, we, E], gE, type)
        try addEncoded(&w, p + "ffn_up_exps.weight", [d, we, E], uE, type)
        try addEncoded(&w, p + "ffn_down_exps.weight", [we, d, E], dE, type)
        if S > 0 {
            let idx = order[0..<S]
            try addEncoded(&w, p + "ffn_gate_shexp.weight", [d, S], rows(gate, idx), type)
            try addEncoded(&w, p + "ffn_up_shexp.weight", [d, S], rows(up, idx), type)
            try addEncoded(&w, p + "ffn_down_shexp.weight", [S, d], columns(idx), type)
        }
    }

    /// Adds a tensor of f32 `values` (rows of dims[0]) encoded as `type`; rows not a multiple of
    /// 32 long are stored as F16 (F32 if `type` is f32).
    static func addEncoded(_ w: inout GGUFWriter, _ name: String, _ dims: [Int], _ values: [Float], _ type: WeightType) throws {
        let cols = dims[0], rowCount = values.count / cols
        if type == .f32 {
            try w.addTensor(name: name, dims: dims, values: values)
            return
        }
        let t: Int32 = cols % 32 == 0 ? type.ggmlType : Int32(AKK_F16.rawValue)
        let rb = Int(akk_row_bytes(t, Int64(cols)))
        var bytes = [UInt8](repeating: 0, count: rb * rowCount)
        values.withUnsafeBufferPointer { v in
            bytes.withUnsafeMutableBytes { out in
                let src = v.baseAddress!, dst = out.baseAddress!
                if t == Int32(AKK_F16.rawValue) {
                    akk_fp32_to_fp16_row(src, dst.assumingMemoryBound(to: UInt16.self), Int64(values.count))
                    return
                }
                for r in 0..<rowCount {
                    if type == .q8_0 {
                        akk_quantize_row_q8_0(src + r * cols, dst + r * rb, Int64(cols))
                    } else {
                        akk_quantize_row_q4_0_ref(src + r * cols, dst + r * rb, Int64(cols))
                    }
                }
            }
        }
        try w.addTensor(name: name, dims: dims, type: UInt32(t), bytes: bytes)
    }
}
