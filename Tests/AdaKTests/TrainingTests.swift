import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import AdaK

/// PPO for Ada-K allocators: analytic gradients against finite differences, a synthetic task where
/// only some inputs profit from a second expert, determinism and checkpoint/resume on a tiny model.
@Suite struct TrainingTests {
    /// A random allocator with `slots` layers of E × d.
    static func randomAllocator(slots: Int, E: Int, d: Int, seed: UInt64, scale: Float = 0.5) -> Allocator {
        var rng = TrainingRNG(seed: seed)
        func r() -> Float { Float(rng.uniform() * 2 - 1) * scale }
        return Allocator(nEmbd: d, nExpert: E, layers: Array(0..<slots),
                         weights: (0..<slots).map { _ in (0..<(E * d)).map { _ in r() } },
                         biases: (0..<slots).map { _ in (0..<E).map { _ in r() } },
                         architecture: "test", fingerprint: 0)
    }

    static func logits(_ a: Allocator, slot: Int, _ h: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: a.nExpert)
        h.withUnsafeBufferPointer { hb in out.withUnsafeMutableBufferPointer { a.logits(slot: slot, hidden: hb.baseAddress!, out: $0.baseAddress!) } }
        return out
    }

    static func logProb(_ z: [Float], k: Int, lo: Int, hi: Int) -> Double {
        var lp = [Double](repeating: 0, count: hi - lo + 1)
        z.withUnsafeBufferPointer { zb in lp.withUnsafeMutableBufferPointer { MaskedPolicy.logProbs(logits: zb.baseAddress!, lo: lo, hi: hi, out: $0.baseAddress!) } }
        return lp[k - lo]
    }

    @Test func policyGradientMatchesFiniteDifferences() {
        var rng = TrainingRNG(seed: 7)
        for (lo, hi) in [(1, 6), (2, 5)] {
            let z = (0..<6).map { _ in Float(rng.uniform() * 4 - 2) }
            for k in lo...hi {
                let g = PPOMath.logProbGradient(logits: z, k: k, lo: lo, hi: hi)
                for j in 0..<6 {
                    let e: Float = 1e-2
                    var zp = z, zm = z
                    zp[j] += e
                    zm[j] -= e
                    let fd = (Self.logProb(zp, k: k, lo: lo, hi: hi) - Self.logProb(zm, k: k, lo: lo, hi: hi)) / Double(2 * e)
                    #expect(abs(fd - g[j]) < 1e-3, "k \(k) logit \(j): analytic \(g[j]) vs fd \(fd)")
                    if j + 1 < lo || j + 1 > hi { #expect(g[j] == 0) }
                }
            }
        }
    }

    /// A batch of `n` random samples for allocator `a`, with π_old a perturbed copy of π so that
    /// ratios differ from 1 (some clipped).
    static func batch(_ a: Allocator, n: Int, lo: Int, hi: Int, seed: UInt64) -> PPOBatch {
        var rng = TrainingRNG(seed: seed)
        var b = PPOBatch(nEmbd: a.nEmbd, nExpert: a.nExpert, slots: a.layers.count, lo: lo, hi: hi)
        for s in 0..<a.layers.count {
            for _ in 0..<n {
                let h = (0..<a.nEmbd).map { _ in Float(rng.uniform() * 2 - 1) }
                let z = logits(a, slot: s, h)
                let k = lo + rng.below(hi - lo + 1)
                b.hidden[s].append(contentsOf: h)
                b.k[s].append(Int32(k))
                b.logProbOld[s].append(Float(logProb(z, k: k, lo: lo, hi: hi) + (rng.uniform() - 0.5) * 0.8))
                b.advantage[s].append(Float(rng.uniform() * 2 - 1))
            }
        }
        return b
    }

    /// The largest |analytic − central finite difference| over every weight and bias of `a`.
    static func worstFiniteDifference(_ a: Allocator, _ g: AllocatorGradient, _ loss: () -> Double) -> Double {
        let e: Float = 1e-3
        var worst = 0.0
        for slot in a.weights.indices {
            for bias in [false, true] {
                for i in (bias ? a.biases[slot] : a.weights[slot]).indices {
                    // (no inout access to a's arrays: the loss reads them)
                    func set(_ v: Float) { if bias { a.biases[slot][i] = v } else { a.weights[slot][i] = v } }
                    let old = bias ? a.biases[slot][i] : a.weights[slot][i]
                    set(old + e); let lp = loss()
                    set(old - e); let lm = loss()
                    set(old)
                    let analytic = bias ? g.b[slot][i] : g.w[slot][i]
                    worst = max(worst, abs((lp - lm) / Double(2 * e) - Double(analytic)))
                }
            }
        }
        return worst
    }

    @Test func ppoLossGradientMatchesFiniteDifferences() {
        let a = Self.randomAllocator(slots: 2, E: 5, d: 6, seed: 3)
        let b = Self.batch(a, n: 12, lo: 1, hi: 4, seed: 4)
        var s = PPOSettings()
        s.entropyCoef = 0.05
        let tokens = Array(0..<12)[...]
        var g = AllocatorGradient(slots: 2, nExpert: 5, nEmbd: 6)
        var st = PPOUpdateStats()
        _ = PPOMath.loss(allocator: a, batch: b, tokens: tokens, settings: s, gradient: &g, stats: &st)
        #expect(st.clipFraction > 0 && st.clipFraction < 1, "both branches of the clip are exercised")
        let worst = Self.worstFiniteDifference(a, g) {
            PPOMath.loss(allocator: a, batch: b, tokens: tokens, settings: s, gradient: nil, stats: nil)
        }
        // actions outside [lo, hi] have no gradient
        for slot in 0..<2 { #expect(g.b[slot][4] == 0) }
        #expect(worst < 2e-3, "largest |analytic − finite difference| = \(worst)")
    }

    /// Synthetic environment over fixed inputs: two kinds of token. For kind A a second expert
    /// raises log p by 1 nat; for kind B it changes nothing. Reward log p − λ·k/K with K = 2 and
    /// λ = 0.5: optimal k is 2 for A and 1 for B. PPO from the identity allocator (argmax 2
    /// everywhere) must find that policy.
    @Test func toyOnlySomeTokensNeedASecondExpert() {
        let d = 4, E = 4, K = 2
        let a = Allocator(nEmbd: d, nExpert: E, layers: [0], weights: [[Float](repeating: 0, count: E * d)],
                          biases: [(1...E).map { k in -Float((k - K) * (k - K)) }], architecture: "toy", fingerprint: 0)
        var ps = PPOSettings()
        ps.learningRate = 0.05
        ps.minibatch = 64
        let opt = PPOOptimizer(allocator: a, settings: ps)
        let trace = RoutingTrace(slots: 1, nEmbd: d, sampling: true, recordHidden: true, seed: 11)
        var envRNG = TrainingRNG(seed: 12)
        func input(_ kindA: Bool, _ rng: inout TrainingRNG) -> [Float] {
            let noise = (0..<d).map { _ in Float(rng.uniform() - 0.5) * 0.2 }
            return (kindA ? [1, 0, 0.5, 1] : [0, 1, 0.5, 1]).enumerated().map { $1 + noise[$0] }
        }
        let lambda = 0.5
        for _ in 0..<40 {
            trace.clear()
            var batch = PPOBatch(nEmbd: d, nExpert: E, slots: 1, lo: 1, hi: E)
            for _ in 0..<256 {
                let kindA = envRNG.below(2) == 0
                let h = input(kindA, &envRNG)
                let z = Self.logits(a, slot: 0, h)
                let k = z.withUnsafeBufferPointer { trace.sample(slot: 0, logits: $0.baseAddress!, nExpert: E, n: 1, lo: 1, hi: E) }[0]
                let logp = (kindA && k < 2) ? -2.0 : -1.0
                let r = logp - lambda * Double(k) / Double(K)
                batch.hidden[0].append(contentsOf: h)
                batch.k[0].append(Int32(k))
                batch.logProbOld[0].append(trace.logProb[0].last!)
                batch.advantage[0].append(Float(r))
            }
            batch.normalizeAdvantages()
            _ = opt.update(allocator: a, batch: batch, rng: &trace.rng)
        }
        var rng = TrainingRNG(seed: 99)
        for kindA in [true, false] {
            for _ in 0..<20 {
                let z = Self.logits(a, slot: 0, input(kindA, &rng))
                let k = z.withUnsafeBufferPointer { KRule.adak(logits: $0.baseAddress!, lo: 1, hi: E, mu: 0) }
                #expect(k == (kindA ? 2 : 1), "kind \(kindA ? "A" : "B") got k = \(k), logits \(z)")
            }
        }
    }

    static func tinyTrainer(seed: UInt64, updates: Int, resume: String? = nil, model: String = "tiny-olmoe",
                            configure: (inout AllocatorTrainingSettings) -> Void = { _ in }) throws -> AllocatorTrainer {
        let m = try Model(path: Fixtures.path("models/\(model).f32.gguf"))
        var rng = TrainingRNG(seed: 5)
        let tokens = (0..<400).map { _ in Int32(3 + rng.below(m.config.nVocab - 3)) }
        var s = AllocatorTrainingSettings()
        s.window = 32
        s.rolloutTokens = 62
        s.updates = updates
        s.seed = seed
        s.threads = 2
        s.ppo.minibatch = 16
        s.ppo.epochs = 2
        configure(&s)
        if let resume { return try AllocatorTrainer(resuming: resume, model: m, tokens: tokens, settings: s) }
        return try AllocatorTrainer(model: m, tokens: tokens, settings: s)
    }

    @Test func trainingIsDeterministicAndResumes() throws {
        let a = try Self.tinyTrainer(seed: 1, updates: 2)
        var seen: [AllocatorTrainingProgress] = []
        try a.run { seen.append($0); return true }
        #expect(seen.count == 2 && seen[1].tokens == 124)
        #expect(seen.allSatisfy { $0.meanKPerLayer.count == 2 && $0.ppo.approxKL.isFinite && $0.ppo.entropy > 0 })
        let b = try Self.tinyTrainer(seed: 1, updates: 2)
        try b.run()
        #expect(a.allocator.weights == b.allocator.weights && a.allocator.biases == b.allocator.biases)
        #expect(a.allocator.weights != Allocator.identity(for: a.model).weights, "the allocator moved")
        let c = try Self.tinyTrainer(seed: 2, updates: 2)
        try c.run()
        #expect(a.allocator.weights != c.allocator.weights, "another seed, another run")

        // one update, checkpoint, resume for the second: the same allocator as two in one go
        let path = "/tmp/adak-training-test-\(getpid()).gguf"
        defer { unlink(path); unlink(path + ".optim") }
        let d = try Self.tinyTrainer(seed: 1, updates: 1)
        try d.run(checkpointPath: path)
        let e = try Self.tinyTrainer(seed: 1, updates: 2, resume: path)
        #expect(e.updatesDone == 1)
        try e.run()
        #expect(e.allocator.weights == a.allocator.weights && e.allocator.biases == a.allocator.biases)

        // cancellation stops after the current update
        let f = try Self.tinyTrainer(seed: 1, updates: 5)
        #expect(throws: AdaKError.self) { try f.run { _ in false } }
        #expect(f.updatesDone == 1)
    }

    /// Single-layer perturbation (`perturbLayers` = 1): per window exactly one MoE layer is
    /// sampled, the others take the argmax and are left out of the loss; paired with the greedy
    /// pass, a token whose sampled layer chose the argmax at it and at every earlier position ran
    /// exactly the greedy computation, so its raw advantage is 0 — the credit of a token belongs to
    /// that one layer's actions alone. (With every layer sampled this does not hold.)
    @Test func singleLayerPerturbationIsolatesTheCredit() throws {
        let m = try Model(path: Fixtures.path("models/tiny-olmoe.f32.gguf"))
        var rng = TrainingRNG(seed: 5)
        let tokens = (0..<400).map { _ in Int32(3 + rng.below(m.config.nVocab - 3)) }
        var s = AllocatorTrainingSettings()
        s.window = 32
        s.rolloutTokens = 31 * 6
        s.updates = 1
        s.seed = 3
        s.threads = 1
        s.perturbLayers = 1
        s.ppo.minibatch = 16
        s.ppo.epochs = 1
        let tr = try AllocatorTrainer(model: m, tokens: tokens, settings: s)
        let L = m.moeLayerIndices.count
        #expect(L >= 2)
        // raw advantages: run the rollouts by hand with the trainer's own session and trace
        let greedy = RoutingTrace(model: m, sampling: false, recordHidden: false)
        var zeroWhereUnperturbed = 0, checked = 0
        for w in 0..<6 {
            let win = tr.nextWindow()
            greedy.clear()
            tr.session.trace = greedy
            tr.session.reset()
            try tr.session.evaluate(win, allLogits: true)
            let base = tr.logProbs(of: win)
            tr.trace.clear()
            let slot = w % L
            tr.trace.sampledSlots = [slot]
            tr.session.trace = tr.trace
            tr.session.reset()
            try tr.session.evaluate(win, allLogits: true)
            tr.session.trace = nil
            let lp = tr.logProbs(of: win)
            for other in 0..<L where other != slot {
                #expect(tr.trace.k[other] == greedy.k[other], "unperturbed layer \(other) took its argmax")
            }
            var samePrefix = true
            for t in 0..<(win.count - 1) {
                samePrefix = samePrefix && tr.trace.k[slot][t] == greedy.k[slot][t]
                if samePrefix {
                    #expect(lp[t] == base[t], "window \(w) token \(t): identical decisions, identical reward")
                    zeroWhereUnperturbed += 1
                }
                checked += 1
            }
        }
        tr.trace.sampledSlots = nil
        #expect(zeroWhereUnperturbed > 0 && zeroWhereUnperturbed < checked)

        // the trainer's batch: one active layer per window, normalised over the active samples only
        let t2 = try AllocatorTrainer(model: m, tokens: tokens, settings: s)
        try t2.run()
        let b = try #require(t2.lastBatch)
        #expect(b.activeCount == b.count, "one layer per token (window) is active")
        for i in 0..<b.count {
            #expect((0..<L).filter { b.isActive($0, i) }.count == 1)
            for sl in 0..<L where !b.isActive(sl, i) { #expect(b.advantage[sl][i] == 0) }
        }
        var mean = 0.0, sq = 0.0
        for sl in 0..<L { for i in 0..<b.count where b.isActive(sl, i) { mean += Double(b.advantage[sl][i]); sq += Double(b.advantage[sl][i] * b.advantage[sl][i]) } }
        mean /= Double(b.activeCount)
        #expect(abs(mean) < 1e-5 && abs(sq / Double(b.activeCount) - 1) < 1e-3)
    }

    /// The loss ignores inactive samples: marking samples inactive equals removing them.
    @Test func inactiveSamplesDoNotEnterTheLoss() {
        let a = Self.randomAllocator(slots: 2, E: 5, d: 6, seed: 3)
        var b = Self.batch(a, n: 12, lo: 1, hi: 4, seed: 4)
        var half = PPOBatch(nEmbd: 6, nExpert: 5, slots: 2, lo: 1, hi: 4)
        for sl in 0..<2 {
            b.active[sl] = (0..<12).map { $0 % 2 == sl }
            for i in 0..<12 where i % 2 == sl {
                half.hidden[sl].append(contentsOf: b.hidden[sl][(i * 6)..<(i * 6 + 6)])
                half.k[sl].append(b.k[sl][i]); half.logProbOld[sl].append(b.logProbOld[sl][i]); half.advantage[sl].append(b.advantage[sl][i])
            }
        }
        let s = PPOSettings()
        var g1 = AllocatorGradient(slots: 2, nExpert: 5, nEmbd: 6), g2 = g1
        let l1 = PPOMath.loss(allocator: a, batch: b, tokens: Array(0..<12)[...], settings: s, gradient: &g1, stats: nil)
        let l2 = PPOMath.loss(allocator: a, batch: half, tokens: Array(0..<6)[...], settings: s, gradient: &g2, stats: nil)
        #expect(abs(l1 - l2) < 1e-9)
        for sl in 0..<2 { for j in g1.w[sl].indices { #expect(abs(g1.w[sl][j] - g2.w[sl][j]) < 1e-6) } }
    }

    /// Resuming with a new λ / entropy coefficient / cost credit (a curriculum): the resumed
    /// updates use the new reward, and the allocator records the finished stages.
    @Test func resumeWithANewPriceRecordsTheCurriculum() throws {
        let path = "/tmp/adak-curriculum-test-\(getpid()).gguf"
        defer { unlink(path); unlink(path + ".optim") }
        let a = try Self.tinyTrainer(seed: 1, updates: 1)
        try a.run(checkpointPath: path)
        #expect(a.allocator.trainingInfo["adak.train.curriculum"] == nil)
        let b = try Self.tinyTrainer(seed: 1, updates: 2, resume: path) { s in
            s.lambda = 2
            s.ppo.entropyCoef = 0.01
            s.costCredit = .layer
        }
        var seen: [AllocatorTrainingProgress] = []
        try b.run(checkpointPath: path) { seen.append($0); return true }
        #expect(seen.count == 1 && seen[0].update == 2)
        #expect(abs(seen[0].meanReward - (seen[0].meanLogProb - 2 * seen[0].costFraction)) < 1e-9, "update 2 pays λ = 2")
        let first = "updates 1-1: lambda 0.3 entropy_coef 0 cost_credit token; "
        #expect(b.allocator.trainingInfo["adak.train.curriculum"]?.stringValue == first)
        #expect(b.allocator.trainingInfo["adak.train.lambda"]?.doubleValue == 2)
        #expect(b.allocator.trainingInfo["adak.train.cost_credit"]?.stringValue == "layer")
        // the same settings again: nothing new to record (and the file kept the record)
        let c = try Self.tinyTrainer(seed: 1, updates: 3, resume: path) { s in
            s.lambda = 2
            s.ppo.entropyCoef = 0.01
            s.costCredit = .layer
        }
        #expect(c.allocator.trainingInfo["adak.train.curriculum"]?.stringValue == first)
        try c.run(checkpointPath: path)
        // and a third stage
        let d = try Self.tinyTrainer(seed: 1, updates: 4, resume: path) { s in s.lambda = 3 }
        #expect(d.allocator.trainingInfo["adak.train.curriculum"]?.stringValue
                == first + "updates 2-3: lambda 2 entropy_coef 0.01 cost_credit layer; ")
        #expect(AllocatorTrainer.curriculumEnd(first) == 1)
        #expect(AllocatorTrainer.curriculumEnd("") == 0)
    }

    /// `CostCredit.layer` keeps the policy gradient of the shared-reward estimator. Exact
    /// expectation over every joint action of two independent layers (a state-independent policy
    /// over k ∈ 1...3 each, an additive log-likelihood): the expected ∂/∂logits of
    /// E[A · ∂log π_l(k_l)] is the same with both credits. The advantage's variance is smaller
    /// when the other layer's log-likelihood gains less per expert than half the price (here:
    /// far from its equilibrium, as early in a descent at a high λ); near an equilibrium, where
    /// that gain matches the price, the other layer's cost cancels its log-likelihood variation
    /// and removing it would not help.
    @Test func layerCostCreditKeepsTheGradientAndCutsTheVariance() {
        let K = 2, L = 2, lambda = 3.0
        let pi: [[Double]] = [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]
        let f: [[Double]] = [[-1.0, -0.8, -0.7], [-0.9, -0.85, -0.84]]   // log p part of each layer (< 0.375 nats per expert)
        let greedy = [2, 1]                                             // baseline actions
        let gLogP = f[0][greedy[0] - 1] + f[1][greedy[1] - 1]
        for l in 0..<L {
            var gTok = [Double](repeating: 0, count: 3), gLay = gTok
            var m2Tok = 0.0, m2Lay = 0.0, mTok = 0.0, mLay = 0.0
            for k0 in 1...3 {
                for k1 in 1...3 {
                    let ks = [k0, k1]
                    let p = pi[0][k0 - 1] * pi[1][k1 - 1]
                    let lp = f[0][k0 - 1] + f[1][k1 - 1]
                    let r = lp - lambda * Double(k0 + k1) / Double(L * K)
                    let rb = gLogP - lambda * Double(greedy[0] + greedy[1]) / Double(L * K)
                    let aTok = r - rb
                    let aLay = AllocatorTrainer.layerCreditAdvantage(logProb: lp, baselineLogProb: gLogP, k: ks[l], baselineK: greedy[l],
                                                                     lambda: lambda, layers: L, kNative: K)
                    for j in 0..<3 {
                        let dlogp = (j + 1 == ks[l] ? 1 : 0) - pi[l][j]
                        gTok[j] += p * aTok * dlogp
                        gLay[j] += p * aLay * dlogp
                    }
                    mTok += p * aTok; m2Tok += p * aTok * aTok
                    mLay += p * aLay; m2Lay += p * aLay * aLay
                }
            }
            for j in 0..<3 { #expect(abs(gTok[j] - gLay[j]) < 1e-12, "layer \(l) action \(j + 1): \(gTok[j]) vs \(gLay[j])") }
            #expect(m2Lay - mLay * mLay < m2Tok - mTok * mTok, "layer \(l): the other layer's cost noise is gone")
        }
        // the formula itself
        #expect(AllocatorTrainer.layerCreditAdvantage(logProb: -1, baselineLogProb: -1.5, k: 5, baselineK: 8,
                                                     lambda: 8, layers: 30, kNative: 8) == 0.5 + 8.0 * 3 / 240)
    }

    /// In the trainer's batch: with `.token` every layer's action of a token has the same
    /// advantage; with `.layer` (mean baseline, so the raw advantage is log p − λ·k_l/(L·K))
    /// two layers' advantages of one token differ by −λ·(k_l − k_m)/(L·K), scaled by the batch
    /// normalisation — the same factor for every token.
    @Test func layerCostCreditInTheTrainer() throws {
        let lambda = 4.0
        let t = try Self.tinyTrainer(seed: 2, updates: 1) { s in s.lambda = lambda; s.baseline = .mean }
        try t.run()
        let bt = try #require(t.lastBatch)
        for i in 0..<bt.count { for sl in 1..<bt.slots { #expect(bt.advantage[sl][i] == bt.advantage[0][i]) } }
        let u = try Self.tinyTrainer(seed: 2, updates: 1) { s in s.lambda = lambda; s.baseline = .mean; s.costCredit = .layer }
        try u.run()
        let b = try #require(u.lastBatch)
        let L = Double(b.slots), K = Double(u.model.config.nExpertUsed)
        var scales: [Double] = []
        for i in 0..<b.count {
            for sl in 1..<b.slots where b.k[sl][i] != b.k[0][i] {
                let dk = Double(b.k[sl][i] - b.k[0][i])
                scales.append(Double(b.advantage[sl][i] - b.advantage[0][i]) / (-lambda * dk / (L * K)))
            }
        }
        #expect(scales.count > 10)
        let s0 = scales[0]
        #expect(s0 > 0)
        #expect(scales.allSatisfy { abs($0 - s0) < 1e-3 * s0 }, "one normalisation factor: \(scales.prefix(5))")
    }

    /// The future-discount credit: F_t = γ·(g_{t+1} + F_{t+1}) backwards over the window, zero for
    /// γ = 0 and at the window's last token; settings outside [0, 1) are rejected; a resume that
    /// switches it on records the earlier stage.
    @Test func futureDiscountCredit() throws {
        #expect(AllocatorTrainer.futureCredit([1, 2, 3], discount: 0.5) == [1.75, 1.5, 0])
        #expect(AllocatorTrainer.futureCredit([1, -2, 3, 4], discount: 0) == [0, 0, 0, 0])
        #expect(AllocatorTrainer.futureCredit([], discount: 0.9).isEmpty)
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.futureDiscount = 1 } }
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.futureDiscount = -0.1 } }
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.futureDiscount = 0.5; $0.baseline = .mean } }
        let path = "/tmp/adak-future-test-\(getpid()).gguf"
        defer { unlink(path); unlink(path + ".optim") }
        let a = try Self.tinyTrainer(seed: 1, updates: 1) { $0.futureDiscount = 0.5 }
        try a.run(checkpointPath: path)
        let b = try Self.tinyTrainer(seed: 1, updates: 2, resume: path)
        #expect(b.allocator.trainingInfo["adak.train.curriculum"]?.stringValue
                == "updates 1-1: lambda 0.3 entropy_coef 0 cost_credit token future_discount 0.5; ")
        // the discount changes the advantages, and with them the update
        let c = try Self.tinyTrainer(seed: 1, updates: 1)
        try c.run()
        #expect(a.allocator.biases != c.allocator.biases)
        #expect(a.lastBatch!.advantage != c.lastBatch!.advantage)
    }

    /// Training under the global price (`trainBudgets`): each window's greedy pass is inference at
    /// its budget (the shared μ solved over the window), the sampled pass draws k from
    /// softmax(logit_k − μ·k) at that μ, and log π_old is that priced policy's. Fails when μ is not
    /// applied to the samples (their cost would stay the unpriced allocator's), nor to log π_old.
    @Test func trainingUnderTheGlobalPrice() throws {
        let m = try Model(path: Fixtures.path("models/tiny-olmoe.f32.gguf"))
        var rng = TrainingRNG(seed: 5)
        let tokens = (0..<400).map { _ in Int32(3 + rng.below(m.config.nVocab - 3)) }
        let E = m.config.nExpert, d = m.config.nEmbd
        let moe = m.moeLayerIndices
        // a sharp random allocator (logits spread by ~±10 over tokens): its samples are close to
        // its argmax, and unpriced it spends about half the experts, far from every budget below
        let r = Self.randomAllocator(slots: moe.count, E: E, d: d, seed: 11, scale: 2)
        func trainer(_ budgets: [Float]) throws -> AllocatorTrainer {
            var s = AllocatorTrainingSettings()
            s.window = 32
            s.rolloutTokens = 93
            s.updates = 1
            s.threads = 2
            s.ppo.minibatch = 16
            s.lambda = budgets.isEmpty ? 1 : 0
            s.trainBudgets = budgets
            let a = Allocator(nEmbd: d, nExpert: E, layers: moe, weights: r.weights, biases: r.biases,
                              architecture: m.config.arch, fingerprint: m.routerFingerprint)
            return try AllocatorTrainer(model: m, tokens: tokens, settings: s, allocator: a)
        }
        // what the samples spend without a price
        let unpriced = try trainer([])
        var free: [AllocatorTrainingProgress] = []
        try unpriced.run { free.append($0); return true }
        let freeSpend = try #require(free.first).costFraction
        for b: Float in [0.75, 3.5] {
            #expect(abs(freeSpend - Double(b)) > 2 * 0.12 * Double(b), "the unpriced spend \(freeSpend) is not far from \(b)")
            let t = try trainer([b])
            let w0 = t.allocator.weights, b0 = t.allocator.biases
            var seen: [AllocatorTrainingProgress] = []
            try t.run { seen.append($0); return true }
            let p = try #require(seen.first)
            #expect(p.budgets.count == 1 && p.budgets[0].windows == 3)
            #expect(abs(p.greedyCostFraction - Double(b)) < 0.05 * Double(b), "budget \(b): argmax spent \(p.greedyCostFraction)")
            #expect(abs(p.costFraction - Double(b)) < 0.12 * Double(b), "budget \(b): samples spent \(p.costFraction)")
            // log π_old is the priced policy of the allocator the rollout ran with
            let bt = try #require(t.lastBatch)
            #expect(bt.price.count == bt.count)
            let before = Allocator(nEmbd: d, nExpert: E, layers: moe, weights: w0, biases: b0,
                                   architecture: m.config.arch, fingerprint: m.routerFingerprint)
            var worstPriced = 0.0, worstUnpriced = 0.0
            for sl in 0..<bt.slots {
                for i in 0..<bt.count {
                    let z = Self.logits(before, slot: sl, Array(bt.hidden[sl][(i * d)..<((i + 1) * d)]))
                    var lp = [Double](repeating: 0, count: E)
                    z.withUnsafeBufferPointer { zb in lp.withUnsafeMutableBufferPointer {
                        MaskedPolicy.logProbs(logits: zb.baseAddress!, lo: 1, hi: E, price: bt.price[i], out: $0.baseAddress!) } }
                    let k = Int(bt.k[sl][i])
                    worstPriced = max(worstPriced, abs(lp[k - 1] - Double(bt.logProbOld[sl][i])))
                    worstUnpriced = max(worstUnpriced, abs(Self.logProb(z, k: k, lo: 1, hi: E) - Double(bt.logProbOld[sl][i])))
                }
            }
            #expect(worstPriced < 1e-4 && worstUnpriced > 1e-2, "log π_old vs priced \(worstPriced), unpriced \(worstUnpriced)")
            // and the PPO loss reads the same priced policy: at the rollout's allocator every ratio is 1
            var st = PPOUpdateStats()
            _ = PPOMath.loss(allocator: before, batch: bt, tokens: Array(0..<bt.count)[...], settings: PPOSettings(), gradient: nil, stats: &st)
            #expect(st.approxKL < 1e-6 && st.clipFraction == 0, "KL \(st.approxKL) clipped \(st.clipFraction) at the rollout's allocator")
        }
        // the reward's λ: the slope of the credit on the cost difference, cov/var, floored at 0
        #expect(abs(AllocatorTrainer.fitLambda(x: [0, 1, 2, 3], y: [1, 4, 7, 10]) - 3) < 1e-12)
        #expect(AllocatorTrainer.fitLambda(x: [0, 1, 2], y: [2, 1, 0]) == 0)
        #expect(AllocatorTrainer.fitLambda(x: [1, 1], y: [0, 5]) == 0)
        // settings that do not fit together
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.trainBudgets = [0.5] } }   // λ 0.3
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.lambda = 0; $0.trainBudgets = [0.5]; $0.baseline = .mean } }
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { $0.lambda = 0; $0.trainBudgets = [0] } }
    }

    /// The λ fit's memory under training budgets: the moments pool the earlier updates weighted
    /// d^age (the slope is the weighted least-squares slope), they survive a checkpoint and
    /// resume, and memory 0 keeps the per-update fit.
    @Test func lambdaMemoryPoolsUpdatesAndResumes() throws {
        // pooled moments = weighted least squares: the first set at weight d, the second at 1
        var rng = TrainingRNG(seed: 3)
        func sample(_ n: Int, slope: Double) -> [(Double, Double)] {
            (0..<n).map { _ in let x = Double(rng.below(1000)) / 1000; return (x, slope * x + Double(rng.below(1000)) / 500) }
        }
        let first = sample(40, slope: 1), second = sample(30, slope: 4), d = 0.6
        var m1 = LambdaMoments(), m2 = LambdaMoments()
        for (x, y) in first { m1.add(x: x, y: y) }
        for (x, y) in second { m2.add(x: x, y: y) }
        let pts = first.map { ($0.0, $0.1, d) } + second.map { ($0.0, $0.1, 1.0) }
        let W = pts.reduce(0) { $0 + $1.2 }
        let mx = pts.reduce(0) { $0 + $1.2 * $1.0 } / W, my = pts.reduce(0) { $0 + $1.2 * $1.1 } / W
        let wls = pts.reduce(0) { $0 + $1.2 * ($1.0 - mx) * ($1.1 - my) } / pts.reduce(0) { $0 + $1.2 * ($1.0 - mx) * ($1.0 - mx) }
        #expect(abs((m1.decayed(by: d) + m2).slope - wls) < 1e-9 && abs(wls - 1) > 0.1 && abs(wls - 4) > 0.1)
        #expect(abs(m2.slope - AllocatorTrainer.fitLambda(x: second.map(\.0), y: second.map(\.1))) < 1e-9)

        // in the trainer: two windows of 31 tokens per update, all at the one budget
        let budget: (inout AllocatorTrainingSettings) -> Void = { $0.lambda = 0; $0.trainBudgets = [0.75]; $0.lambdaMemory = 0.5 }
        let a = try Self.tinyTrainer(seed: 1, updates: 2, configure: budget)
        var seen: [(Double, LambdaMoments)] = []
        try a.run { seen.append(($0.budgets[0].lambda, a.lambdaMoments[0])); return true }
        #expect(seen.count == 2 && seen[0].1.n == 62 && seen[1].1.n == 0.5 * 62 + 62, "\(seen.map(\.1.n))")
        #expect(seen.allSatisfy { $0.0 == $0.1.slope })
        // one update, checkpoint, resume for the second: the same moments and allocator
        let path = "/tmp/adak-lambda-memory-test-\(getpid()).gguf"
        defer { unlink(path); unlink(path + ".optim") }
        try Self.tinyTrainer(seed: 1, updates: 1, configure: budget).run(checkpointPath: path)
        let b = try Self.tinyTrainer(seed: 1, updates: 2, resume: path, configure: budget)
        #expect(b.lambdaMoments == [seen[0].1])
        try b.run()
        #expect(b.lambdaMoments == [seen[1].1])
        #expect(b.allocator.weights == a.allocator.weights && b.allocator.biases == a.allocator.biases)
        // memory 0: no moments kept, each update's own fit
        let c = try Self.tinyTrainer(seed: 1, updates: 1) { $0.lambda = 0; $0.trainBudgets = [0.75] }
        try c.run()
        #expect(c.lambdaMoments.isEmpty)
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { budget(&$0); $0.lambdaMemory = 1 } }
    }
}

extension TrainingTests {
    /// The PPO loss with a sampling window: analytic gradient = finite differences, the logits
    /// outside every sample's window get none, and the loss at the rollout's allocator has
    /// ratio 1 only with the windowed log π_old (the distribution the actions were drawn from).
    @Test func sampleWindowLossGradient() {
        let a = Self.randomAllocator(slots: 2, E: 6, d: 5, seed: 8)
        var b = PPOBatch(nEmbd: 5, nExpert: 6, slots: 2, lo: 1, hi: 6)
        b.sampleWindow = 1
        var rng = TrainingRNG(seed: 9)
        var exact = b
        for s in 0..<2 {
            for _ in 0..<10 {
                let h = (0..<5).map { _ in Float(rng.uniform() * 2 - 1) }
                let z = Self.logits(a, slot: s, h)
                let g = 1 + rng.below(3)          // centres 1...3: windows within k ≤ 4
                let k = max(1, g - 1) + rng.below(min(6, g + 1) - max(1, g - 1) + 1)
                var lp = [Double](repeating: 0, count: 6)
                z.withUnsafeBufferPointer { zb in lp.withUnsafeMutableBufferPointer {
                    MaskedPolicy.windowLogProbs(logits: zb.baseAddress!, lo: 1, hi: 6, price: 0, center: g, radius: 1, out: $0.baseAddress!) } }
                #expect(lp[k - 1].isFinite && (0..<6).allSatisfy { abs($0 + 1 - g) <= 1 || lp[$0] == -.infinity })
                for x in [b, exact].indices {
                    var t = x == 0 ? b : exact
                    t.hidden[s].append(contentsOf: h)
                    t.k[s].append(Int32(k))
                    t.center[s].append(Int32(g))
                    t.logProbOld[s].append(Float(lp[k - 1] + (x == 0 ? (rng.uniform() - 0.5) * 0.8 : 0)))
                    t.advantage[s].append(Float(rng.uniform() * 2 - 1))
                    if x == 0 { b = t } else { exact = t }
                }
            }
        }
        var s = PPOSettings()
        s.entropyCoef = 0.05
        let tokens = Array(0..<10)[...]
        var st = PPOUpdateStats()
        _ = PPOMath.loss(allocator: a, batch: exact, tokens: tokens, settings: s, gradient: nil, stats: &st)
        #expect(st.approxKL < 1e-9 && st.clipFraction == 0, "windowed log π_old: KL \(st.approxKL)")
        var unwindowed = exact
        unwindowed.sampleWindow = 0
        var su = PPOUpdateStats()
        _ = PPOMath.loss(allocator: a, batch: unwindowed, tokens: tokens, settings: s, gradient: nil, stats: &su)
        #expect(su.approxKL > 1e-3, "the whole-range policy is another distribution: KL \(su.approxKL)")

        var g = AllocatorGradient(slots: 2, nExpert: 6, nEmbd: 5)
        st = PPOUpdateStats()
        _ = PPOMath.loss(allocator: a, batch: b, tokens: tokens, settings: s, gradient: &g, stats: &st)
        #expect(st.clipFraction > 0 && st.clipFraction < 1, "both branches of the clip are exercised")
        let worst = Self.worstFiniteDifference(a, g) {
            PPOMath.loss(allocator: a, batch: b, tokens: tokens, settings: s, gradient: nil, stats: nil)
        }
        for slot in 0..<2 {
            // k = 5, 6 are in no window
            #expect(g.b[slot][4] == 0 && g.b[slot][5] == 0 && g.w[slot][(4 * 5)..<(6 * 5)].allSatisfy { $0 == 0 })
            #expect(g.b[slot][0] != 0 && g.b[slot][3] != 0)
        }
        #expect(worst < 2e-3, "largest |analytic − finite difference| = \(worst)")
    }

    /// The sampling window in the trainer, under a global price: every sampled k lies within w of
    /// the greedy k at the same input (recomputed from the rollout's allocator), log π_old is the
    /// windowed policy's, the window is recorded in the allocator and holds after a resume
    /// (one update, checkpoint, resume: the same allocator as two updates in one go). Without the
    /// window the same broad allocator samples far from its greedy k.
    @Test func sampleWindowRestrictsTheSamplesAndResumes() throws {
        let w = 1
        func setup(_ window: Int) -> (inout AllocatorTrainingSettings) -> Void {
            { $0.lambda = 0; $0.trainBudgets = [0.75]; $0.initSharpness = 0.05; $0.sampleWindow = window }
        }
        // the largest |k − greedy k| of the last update's samples, and the largest |log π_old −
        // windowed log π| (radius `window`) at the rollout's allocator `a`
        func check(_ t: AllocatorTrainer, rollout a: Allocator, window: Int) throws -> (Int, Double) {
            let bt = try #require(t.lastBatch)
            let d = a.nEmbd
            var far = 0, worst = 0.0
            for s in 0..<bt.slots {
                for i in 0..<bt.count {
                    let z = Self.logits(a, slot: s, Array(bt.hidden[s][(i * d)..<((i + 1) * d)]))
                    let g = z.withUnsafeBufferPointer { KRule.adak(logits: $0.baseAddress!, lo: bt.lo, hi: bt.hi, mu: bt.price[i]) }
                    if window > 0 { #expect(Int(bt.center[s][i]) == g) }
                    let k = Int(bt.k[s][i])
                    far = max(far, abs(k - g))
                    var lp = [Double](repeating: 0, count: bt.hi - bt.lo + 1)
                    z.withUnsafeBufferPointer { zb in lp.withUnsafeMutableBufferPointer {
                        MaskedPolicy.windowLogProbs(logits: zb.baseAddress!, lo: bt.lo, hi: bt.hi, price: bt.price[i], center: g,
                                                    radius: window, out: $0.baseAddress!) } }
                    worst = max(worst, abs(lp[k - bt.lo] - Double(bt.logProbOld[s][i])))
                }
            }
            return (far, worst)
        }
        func copy(_ a: Allocator) -> Allocator {
            Allocator(nEmbd: a.nEmbd, nExpert: a.nExpert, layers: a.layers, weights: a.weights, biases: a.biases,
                      architecture: a.architecture, fingerprint: a.fingerprint)
        }
        let free = try Self.tinyTrainer(seed: 1, updates: 1, configure: setup(0))
        let a0 = copy(free.allocator)
        try free.run()
        let (farFree, lpFree) = try check(free, rollout: a0, window: 0)
        #expect(farFree > w && lpFree < 1e-4, "without a window: |k − greedy| up to \(farFree)")

        let a = try Self.tinyTrainer(seed: 1, updates: 2, configure: setup(w))
        try a.run()
        // one update, checkpoint: the samples of that update against the allocator it started from
        let one = try Self.tinyTrainer(seed: 1, updates: 1, configure: setup(w))
        let start = copy(one.allocator)
        let path = "/tmp/adak-sample-window-test-\(getpid()).gguf"
        defer { unlink(path); unlink(path + ".optim") }
        try one.run(checkpointPath: path)
        let (far1, lp1) = try check(one, rollout: start, window: w)
        #expect(far1 <= w && lp1 < 1e-4, "update 1: |k − greedy| up to \(far1), log π_old off by \(lp1)")
        #expect(try Allocator(path: path, model: one.model).trainingInfo["adak.train.sample_window"]?.intValue == w)
        // resume for the second update: still windowed, and the same allocator as in one go
        let b = try Self.tinyTrainer(seed: 1, updates: 2, resume: path, configure: setup(w))
        let mid = copy(b.allocator)
        try b.run()
        let (far2, lp2) = try check(b, rollout: mid, window: w)
        #expect(far2 <= w && lp2 < 1e-4, "resumed update: |k − greedy| up to \(far2), log π_old off by \(lp2)")
        #expect(b.allocator.weights == a.allocator.weights && b.allocator.biases == a.allocator.biases)
        #expect(b.allocator.weights != free.allocator.weights)
        #expect(throws: AdaKError.self) { _ = try Self.tinyTrainer(seed: 1, updates: 1) { setup(w)(&$0); $0.sampleWindow = -1 } }
    }
}
