#if canImport(Glibc)
import Glibc
#endif

/// How advantages are centred before the per-batch normalisation.
public enum AdvantageBaseline: String, Sendable, CaseIterable {
    /// Self-critical: the baseline of token t is its reward in the same window under the current
    /// policy's argmax k (one extra forward pass per window); removes the per-token difficulty
    /// exactly and keeps the gradient unbiased (why: docs/DESIGN.md §8.1).
    case greedy
    /// The batch mean: half the forward passes, far noisier advantages.
    case mean
}

/// Which layers' actions a token's compute cost is charged to.
public enum CostCredit: String, Sendable, CaseIterable {
    /// Every MoE layer's action at token t receives the token's whole reward
    /// log p(x_{t+1}) − λ·Σ_l k_l/(L·K) (minus the baseline): the reward as docs/DESIGN.md §4 states it.
    case token
    /// Layer l's action receives the shared log-likelihood part but only its own cost λ·k_l/(L·K)
    /// (against its own k in the greedy pass with the greedy baseline): the same expected
    /// gradient, lower variance far from equilibrium (docs/DESIGN.md §8.2).
    case layer
}

/// Rollout and PPO settings of `AllocatorTrainer`.
public struct AllocatorTrainingSettings: Sendable, Equatable {
    /// Price of compute in the reward r_t = log p(x_{t+1}) − λ·(Σ_l k_l)/(L·K) (with
    /// `trainBudgets` λ must be 0: it is then fitted per budget and update, see there).
    public var lambda: Double = 0.3
    /// Training under the global price (docs/DESIGN.md §8.5); empty: off. Rollout window i of the
    /// run takes budget B = trainBudgets[i mod n]; its greedy pass is the inference pass at
    /// `--budget B` (global mode: a measuring pass, the shared price μ solved by the router's
    /// bisection, the real pass), and its sampled pass draws k from softmax(logit_k − μ·k) at
    /// that μ. The reward's λ is the update's least-squares slope of the log-likelihood credit
    /// on the cost (sampled minus greedy) per budget: the marginal value of experts at that
    /// budget, so only the reallocation between layers and tokens is rewarded, not spending more
    /// (which the re-solved μ would undo). Needs the greedy baseline.
    public var trainBudgets: [Float] = []
    /// Memory d ∈ [0, 1) of the λ fit under training budgets: each budget's regression moments
    /// (n, Σx, Σy, Σx², Σxy) are the update's plus d times the previous ones, so the slope is
    /// fitted on the earlier updates' tokens too, weighted d^age (≈ 1/(1−d) updates' worth).
    /// 0: the update's tokens only. A few hundred tokens per budget give a slope whose noise
    /// exceeds λ itself (floored at 0 in a third of the pairs, docs/RESULTS.md), and the
    /// allocator moves little per update, so the older moments are nearly as good.
    public var lambdaMemory = 0.0
    /// Radius w of the sampling window (0: none): each (layer, token) of a rollout draws k only
    /// among [g − w, g + w], g its greedy k (argmax(logit_k − μ·k)), from the policy restricted to
    /// that window and renormalised; PPO's ratio uses the same restricted policy (PPOMath.loss).
    /// The samples then compare nearby allocations instead of the policy's flat high-k tails,
    /// which drew the extra experts that gave the λ fit no gain at the higher training budgets
    /// (docs/RESULTS.md, recipes G2/G3).
    public var sampleWindow = 0
    /// Sampled tokens (scored positions) per PPO update.
    public var rolloutTokens = 2048
    /// Tokens per teacher-forced window (one batch forward each).
    public var window = 256
    public var ppo = PPOSettings()
    public var baseline: AdvantageBaseline = .greedy
    /// Which layers' actions each token's compute cost is credited to.
    public var costCredit: CostCredit = .token
    /// Discount γ ∈ [0, 1) of later tokens' log-likelihood in a token's credit: the actions at
    /// token t are credited with Σ_{t' ≥ t} γ^{t'−t}·(log p_{t'} − baseline_{t'}), so effects
    /// through attention on later positions count (docs/DESIGN.md §8.3). The cost part stays the
    /// token's own. Needs the greedy baseline.
    public var futureDiscount = 0.0
    /// MoE layers whose k is sampled in each rollout window (0: all). With n > 0, n layers drawn
    /// at random per window are sampled and the others take the argmax; paired with the greedy
    /// baseline the advantage of token t is then caused by those n layers' actions alone (not by
    /// the other L − n layers' exploration), at the price of n/L as many samples per layer.
    public var perturbLayers = 0
    public var seed: UInt64 = 0
    /// Range of k the policy samples and acts in (kMax nil: all experts).
    public var kMin = 1
    public var kMax: Int? = nil
    /// Number of PPO updates (the run stops after `updates` or at `totalTokens`, whichever first).
    public var updates = 50
    public var totalTokens: Int? = nil
    /// Sharpness of the identity allocator training starts from (its bias is −s·(k − K)²).
    public var initSharpness: Float = 1
    /// Kernel threads (0: all cores).
    public var threads = 0
    /// Write a checkpoint every this many updates (0: only at the end) when a path is set.
    public var checkpointEvery = 5

    public init() {}

    /// Checks each setting's own range (what the keyed C setters reject at once).
    public func validateFields() throws {
        func bad(_ m: String) -> AdaKError { .invalidArgument(m) }
        let big = Int(Int32.max)
        try ppo.validate()
        guard lambda.isFinite, lambda >= 0, lambda <= 1e6 else { throw bad("lambda \(lambda) must be in [0, 1e6]") }
        guard rolloutTokens >= 1, rolloutTokens <= big else { throw bad("rollout_tokens \(rolloutTokens) out of range 1...\(big)") }
        guard window >= 2, window <= 8192 else { throw bad("window \(window) out of range 2...8192") }
        guard kMin >= 1, kMin <= ModelConfig.maxExperts else { throw bad("k_min \(kMin) out of range 1...\(ModelConfig.maxExperts)") }
        if let kMax { guard kMax >= 1, kMax <= ModelConfig.maxExperts else { throw bad("k_max \(kMax) out of range 0...\(ModelConfig.maxExperts)") } }
        guard updates >= 1, updates <= big else { throw bad("updates \(updates) out of range 1...\(big)") }
        if let totalTokens { guard totalTokens >= 1, totalTokens <= 1 << 48 else { throw bad("total_tokens \(totalTokens) out of range 0...2^48") } }
        guard initSharpness.isFinite, initSharpness > 0, initSharpness <= 1e6 else { throw bad("init_sharpness \(initSharpness) must be in (0, 1e6]") }
        guard threads >= 0, threads <= 1024 else { throw bad("threads \(threads) out of range 0...1024") }
        guard checkpointEvery >= 0, checkpointEvery <= big else { throw bad("checkpoint_every \(checkpointEvery) out of range 0...\(big)") }
        guard futureDiscount.isFinite, futureDiscount >= 0, futureDiscount < 1 else { throw bad("future_discount \(futureDiscount) must be in [0, 1)") }
        for b in trainBudgets { guard b.isFinite, b > 0, b <= 16 else { throw bad("training budget \(b) is not in (0, 16]") } }
        guard trainBudgets.count <= 64 else { throw bad("at most 64 training budgets") }
        guard lambdaMemory.isFinite, lambdaMemory >= 0, lambdaMemory < 1 else { throw bad("lambda_memory \(lambdaMemory) must be in [0, 1)") }
        guard sampleWindow >= 0, sampleWindow <= ModelConfig.maxExperts else {
            throw bad("sample_window \(sampleWindow) out of range 0...\(ModelConfig.maxExperts)")
        }
    }

    /// Every setting, and how they fit together and with `model`.
    public func validate(model: Model) throws {
        func bad(_ m: String) -> AdaKError { .invalidArgument(m) }
        try validateFields()
        let E = model.config.nExpert
        guard model.config.isMoE, E >= 2 else { throw bad("allocator training needs an MoE model") }
        guard rolloutTokens >= window - 1 else { throw bad("rollout tokens must be at least window − 1") }
        guard kMin <= E else { throw bad("k_min out of range 1...\(E)") }
        if let kMax { guard kMax >= kMin, kMax <= E else { throw bad("k_max out of range \(kMin)...\(E)") } }
        guard perturbLayers >= 0, perturbLayers <= model.moeLayerIndices.count else {
            throw bad("perturb layers must be in 0...\(model.moeLayerIndices.count)")
        }
        guard perturbLayers == 0 || baseline == .greedy else { throw bad("perturbing a few layers needs the greedy baseline") }
        // later tokens' raw log p (mean baseline) would add ~γ/(1−γ) tokens' worth of unpaired noise
        guard futureDiscount == 0 || baseline == .greedy else { throw bad("a future discount needs the greedy baseline") }
        // the greedy pass is where the budget's price is solved
        guard trainBudgets.isEmpty || baseline == .greedy else { throw bad("training budgets need the greedy baseline") }
        // (here, not in validateFields: the keyed setters may set the budgets before lambda)
        guard trainBudgets.isEmpty || lambda == 0 else {
            throw bad("with training budgets the price of compute is the budget's μ and λ is fitted: leave lambda at 0")
        }
    }
}

/// What the trainer reports after every update.
public struct AllocatorTrainingProgress: Sendable {
    public var update: Int
    public var updates: Int
    /// Sampled tokens so far (scored positions).
    public var tokens: Int
    /// Mean reward of the sampled rollouts, its log-likelihood part and its cost fraction Σk/(L·K).
    public var meanReward: Double
    public var meanLogProb: Double
    public var costFraction: Double
    /// The same for the argmax policy on the same windows (greedy baseline only, else nan).
    public var greedyLogProb: Double
    public var greedyCostFraction: Double
    public var meanKPerLayer: [Double]
    /// Training under the global price: per budget of `trainBudgets` (in that order) what its
    /// windows of this update did (empty without budgets).
    public var budgets: [BudgetRollout] = []
    public var ppo: PPOUpdateStats
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double
    public var etaSeconds: Double
}

/// The windows of one update that ran at one training budget.
public struct BudgetRollout: Sendable {
    public var budget: Float
    public var windows = 0
    /// Mean Σk/(L·K) of the sampled and of the greedy (inference) pass, the mean price μ solved,
    /// and the λ fitted for the reward.
    public var costFraction = 0.0
    public var greedyCostFraction = 0.0
    public var price = 0.0
    public var lambda = 0.0
}

/// PPO for Ada-K allocators on a frozen model (docs/DESIGN.md §4). Each update: teacher-forced windows
/// of the training tokens run with k sampled per (MoE layer, token) from the allocator; the reward
/// of token t, log p(x_{t+1}) − λ·Σ_l k_l/(L·K), is credited to every layer's action of that token
/// (see `CostCredit` and `futureDiscount` for the variants);
/// advantages = reward − baseline, normalised per batch; then `epochs` passes of the clipped
/// surrogate over shuffled minibatches with Adam and gradient clipping.
public final class AllocatorTrainer {
    public let model: Model
    public let settings: AllocatorTrainingSettings
    public let allocator: Allocator
    public let optimizer: PPOOptimizer
    public private(set) var updatesDone = 0
    public private(set) var tokensDone = 0
    /// Next window starts at this token.
    public private(set) var cursor = 0
    /// The PPO batch of the last update (advantages normalised), for inspection and tests.
    public private(set) var lastBatch: PPOBatch?
    /// Per training budget, the λ fit's decayed regression moments (see `lambdaMemory`).
    public private(set) var lambdaMoments: [LambdaMoments] = []
    let data: [Int32]
    let session: Session
    let trace: RoutingTrace
    let lo: Int, hi: Int

    /// Starts from the identity allocator (step 0 is exactly static Top-K) unless `allocator`
    /// (e.g. a checkpoint) is given.
    public init(model: Model, tokens: [Int32], settings: AllocatorTrainingSettings, allocator: Allocator? = nil) throws {
        try settings.validate(model: model)
        guard tokens.count >= settings.window else {
            throw AdaKError.invalidArgument("training data has \(tokens.count) tokens, fewer than one window (\(settings.window))")
        }
        self.model = model
        self.settings = settings
        data = tokens
        let a = allocator ?? Allocator.identity(for: model, sharpness: settings.initSharpness)
        self.allocator = a
        optimizer = PPOOptimizer(allocator: a, settings: settings.ppo)
        var p = SessionParams()
        p.contextSize = settings.window
        p.batchSize = min(settings.window, 512)
        p.threads = settings.threads
        session = try Session(model: model, params: p)
        try session.setAllocator(a)
        var r = RoutingConfig(policy: .adak)
        r.kMin = settings.kMin
        r.kMax = settings.kMax
        try session.setRouting(r)
        let hiK = r.upperBound(nExpert: model.config.nExpert, kNative: model.config.nExpertUsed)
        lo = min(settings.kMin, hiK)
        hi = hiK
        trace = RoutingTrace(model: model, sampling: true, recordHidden: true, seed: settings.seed)
        trace.sampleWindow = settings.sampleWindow
        a.trainingInfo["adak.train.method"] = .string("ppo")
        a.trainingInfo["adak.train.lambda"] = .float64(settings.lambda)
        a.trainingInfo["adak.train.window"] = .uint32(UInt32(settings.window))
        a.trainingInfo["adak.train.rollout_tokens"] = .uint32(UInt32(settings.rolloutTokens))
        a.trainingInfo["adak.train.epochs"] = .uint32(UInt32(settings.ppo.epochs))
        a.trainingInfo["adak.train.minibatch"] = .uint32(UInt32(settings.ppo.minibatch))
        a.trainingInfo["adak.train.clip"] = .float64(settings.ppo.clip)
        a.trainingInfo["adak.train.lr"] = .float64(settings.ppo.learningRate)
        a.trainingInfo["adak.train.weight_lr_scale"] = .float64(settings.ppo.weightLRScale)
        a.trainingInfo["adak.train.entropy_coef"] = .float64(settings.ppo.entropyCoef)
        a.trainingInfo["adak.train.max_grad_norm"] = .float64(settings.ppo.maxGradNorm)
        a.trainingInfo["adak.train.baseline"] = .string(settings.baseline.rawValue)
        a.trainingInfo["adak.train.cost_credit"] = .string(settings.costCredit.rawValue)
        a.trainingInfo["adak.train.future_discount"] = .float64(settings.futureDiscount)
        a.trainingInfo["adak.train.lambda_memory"] = settings.trainBudgets.isEmpty ? nil : .float64(settings.lambdaMemory)
        a.trainingInfo["adak.train.sample_window"] = settings.sampleWindow == 0 ? nil : .uint32(UInt32(settings.sampleWindow))
        a.trainingInfo["adak.train.perturb_layers"] = .uint32(UInt32(settings.perturbLayers))
        a.trainingInfo["adak.train.seed"] = .uint64(settings.seed)
        a.trainingInfo["adak.train.k_min"] = .uint32(UInt32(lo))
        a.trainingInfo["adak.train.k_max"] = .uint32(UInt32(hi))
        a.trainingInfo["adak.train.budgets"] = settings.trainBudgets.isEmpty ? nil
            : .string(settings.trainBudgets.map { String($0) }.joined(separator: ","))
    }

    /// A new run (fresh optimiser, counters at 0) that starts from the allocator at `path`, e.g.
    /// one trained with another reward; what made it is kept in `adak.train.init`.
    public convenience init(model: Model, tokens: [Int32], settings: AllocatorTrainingSettings, startingFrom path: String) throws {
        let a = try Allocator(path: path, model: model)
        let info = a.trainingInfo
        var origin = String(path.split(separator: "/").last ?? Substring(path))
        if let u = info["adak.train.updates"]?.doubleValue { origin += " after \(Int(u)) updates" }
        origin += ": " + (info["adak.train.curriculum"]?.stringValue ?? "")
        if let r = AllocatorTrainer.rewardSettings(info) { origin += "then \(r)" }
        try self.init(model: model, tokens: tokens, settings: settings, allocator: a)
        a.trainingInfo["adak.train.curriculum"] = nil
        a.trainingInfo["adak.train.init"] = .string(origin)
    }

    /// Updates planned in total (limited by `totalTokens`).
    public var plannedUpdates: Int {
        guard let t = settings.totalTokens else { return settings.updates }
        let perUpdate = rolloutWindows * (settings.window - 1)
        return min(settings.updates, max(1, (t + perUpdate - 1) / perUpdate))
    }

    var rolloutWindows: Int { max(1, (settings.rolloutTokens + settings.window - 2) / (settings.window - 1)) }

    /// The next window of training tokens (wrapping around); BOS first when the vocabulary adds it.
    func nextWindow() -> [Int32] {
        let w = settings.window
        if cursor + w > data.count { cursor = 0 }
        var win = Array(data[cursor..<cursor + w])
        cursor += w
        if model.tokenizer.addBOS, let bos = model.tokenizer.bos { win[0] = bos }
        return win
    }

    /// log p(x_{t+1}) for t = 0…n−2 from the session's logits of the last evaluate.
    func logProbs(of win: [Int32]) -> [Double] {
        let v = model.config.nVocab
        return session.withLogits { logits in
            (0..<(win.count - 1)).map { t in
                let row = logits.baseAddress! + t * v
                var mx = row[0]
                for i in 1..<v where row[i] > mx { mx = row[i] }
                var s = 0.0
                for i in 0..<v { s += exp(Double(row[i] - mx)) }
                return Double(row[Int(win[t + 1])] - mx) - log(s)
            }
        }
    }

    /// Raw advantage of one layer's action at one token with `CostCredit.layer`:
    /// (log p − log p_baseline) − λ·(k − k_baseline)/(L·K), where the baseline is the greedy pass
    /// (its log p and this layer's k in it) or, with the mean baseline, 0 and 0 (the per-batch
    /// normalisation then removes the mean).
    static func layerCreditAdvantage(logProb: Double, baselineLogProb: Double, k: Int, baselineK: Int,
                                     lambda: Double, layers: Int, kNative: Int) -> Double {
        (logProb - baselineLogProb) - lambda * Double(k - baselineK) / (Double(layers) * Double(kNative))
    }

    /// The later tokens' part of each token's credit with discount γ: F_t = Σ_{t' > t} γ^{t'−t}·g_{t'}
    /// over one window, where g is each token's log-likelihood advantage (exactly 0 for γ = 0).
    static func futureCredit(_ g: [Double], discount gamma: Double) -> [Double] {
        var f = [Double](repeating: 0, count: g.count)
        guard gamma > 0, g.count > 1 else { return f }
        for t in stride(from: g.count - 2, through: 0, by: -1) { f[t] = gamma * (g[t + 1] + f[t + 1]) }
        return f
    }

    /// What one rollout window measured, kept until the update's λ per budget is known.
    private struct WindowRecord {
        var budget: Int
        var logProb: [Double], baseLogProb: [Double], cost: [Double], baseCost: [Double]
        /// The discounted later tokens' log-likelihood advantages credited to each token.
        var future: [Double]
        /// k per slot and token in the greedy pass (empty without it).
        var baseK: [[Int32]]
    }

    /// The λ of each budget (settings.lambda without training budgets), fitted on the update's
    /// tokens at that budget (x = their cost difference to the greedy pass, y = their
    /// log-likelihood credit: own and discounted later advantages), with `lambdaMemory` > 0
    /// pooled with the earlier updates' moments (kept in `lambdaMoments`).
    private func rewardLambdas(_ records: [WindowRecord], budgets n: Int) -> [Double] {
        guard !settings.trainBudgets.isEmpty else { return [settings.lambda] }
        let d = settings.lambdaMemory
        if d > 0, lambdaMoments.count != n { lambdaMoments = Array(repeating: LambdaMoments(), count: n) }
        return (0..<n).map { b in
            var x: [Double] = [], y: [Double] = []
            for w in records where w.budget == b {
                for t in w.cost.indices {
                    x.append(w.cost[t] - w.baseCost[t])
                    y.append(w.logProb[t] - w.baseLogProb[t] + w.future[t])
                }
            }
            guard d > 0 else { return Self.fitLambda(x: x, y: y) }
            var m = LambdaMoments()
            for i in x.indices { m.add(x: x[i], y: y[i]) }
            lambdaMoments[b] = lambdaMoments[b].decayed(by: d) + m
            return lambdaMoments[b].slope
        }
    }

    /// The least-squares slope cov(x, y)/var(x), floored at 0 (0 when x does not vary): the
    /// log-likelihood one unit of cost buys at the current allocation.
    static func fitLambda(x: [Double], y: [Double]) -> Double {
        let n = Double(x.count)
        guard x.count > 1, x.count == y.count else { return 0 }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var cxy = 0.0, vx = 0.0
        for i in x.indices { cxy += (x[i] - mx) * (y[i] - my); vx += (x[i] - mx) * (x[i] - mx) }
        return vx > 1e-12 ? max(0, cxy / vx) : 0
    }

    /// Runs one update: rollouts, advantages, PPO. Returns what it measured.
    func step(startTime: Double) throws -> AllocatorTrainingProgress {
        let L = allocator.layers.count, K = Double(model.config.nExpertUsed)
        var batch = PPOBatch(nEmbd: allocator.nEmbd, nExpert: allocator.nExpert, slots: L, lo: lo, hi: hi)
        batch.sampleWindow = settings.sampleWindow
        let budgets = settings.trainBudgets
        var perBudget = budgets.map { BudgetRollout(budget: $0) }
        var kSum = [Double](repeating: 0, count: L)
        var n = 0
        var records: [WindowRecord] = []
        let greedyTrace = RoutingTrace(model: model, sampling: false, recordHidden: false)
        // the window count so far picks each window's budget (the same after a resume)
        let windowsBefore = tokensDone / (settings.window - 1)
        for w in 0..<rolloutWindows {
            let win = nextWindow()
            let m = win.count - 1
            var rec = WindowRecord(budget: 0, logProb: [], baseLogProb: [Double](repeating: 0, count: m),
                                   cost: [], baseCost: [Double](repeating: 0, count: m), future: [], baseK: [])
            var price: Float = 0
            if !budgets.isEmpty {
                rec.budget = (windowsBefore + w) % budgets.count
                // every window starts the price solve from μ = 0 (setBudget resets the controller),
                // not from the last window's μ: a resumed run then solves the same μ as one in a go
                try session.setBudget(budgets[rec.budget])
            }
            if settings.baseline == .greedy {
                // with a budget this is inference itself: measuring pass, μ solved, real pass
                greedyTrace.clear()
                session.trace = greedyTrace
                session.reset()
                try session.evaluate(win, allLogits: true)
                rec.baseLogProb = logProbs(of: win)
                rec.baseK = greedyTrace.k
                for t in 0..<m {
                    var c = 0.0
                    for s in 0..<L { c += Double(greedyTrace.k[s][t]) }
                    rec.baseCost[t] = c / (Double(L) * K)
                }
                if !budgets.isEmpty { price = session.router.knob.first ?? 0 }
            }
            trace.clear()
            var perturbed: Set<Int>? = nil
            if settings.perturbLayers > 0 {
                var slots = Array(0..<L)
                for i in 0..<settings.perturbLayers { slots.swapAt(i, i + trace.rng.below(L - i)) }
                perturbed = Set(slots[0..<settings.perturbLayers])
            }
            trace.sampledSlots = perturbed
            trace.price = price
            session.trace = trace
            session.reset()
            try session.evaluate(win, allLogits: true)
            session.trace = nil
            rec.logProb = logProbs(of: win)
            rec.future = Self.futureCredit((0..<m).map { rec.logProb[$0] - rec.baseLogProb[$0] }, discount: settings.futureDiscount)
            let d = allocator.nEmbd
            for t in 0..<m {
                var c = 0.0
                for s in 0..<L { c += Double(trace.k[s][t]) }
                rec.cost.append(c / (Double(L) * K))
                for s in 0..<L {
                    batch.k[s].append(trace.k[s][t])
                    batch.logProbOld[s].append(trace.logProb[s][t])
                    batch.active[s].append(perturbed?.contains(s) ?? true)
                    if settings.sampleWindow > 0 { batch.center[s].append(trace.center[s][t]) }
                    kSum[s] += Double(trace.k[s][t])
                }
                if !budgets.isEmpty { batch.price.append(price) }
            }
            for s in 0..<L { batch.hidden[s].append(contentsOf: trace.hidden[s][0..<(m * d)]) }
            if !budgets.isEmpty {
                perBudget[rec.budget].windows += 1
                perBudget[rec.budget].price += Double(price)
                perBudget[rec.budget].costFraction += rec.cost.reduce(0, +) / Double(m)
                perBudget[rec.budget].greedyCostFraction += rec.baseCost.reduce(0, +) / Double(m)
            }
            records.append(rec)
            n += m
        }
        trace.sampledSlots = nil
        trace.price = 0
        // advantages, now that each budget's λ is known
        let lambdas = rewardLambdas(records, budgets: max(budgets.count, 1))
        let greedy = settings.baseline == .greedy
        var sumR = 0.0, sumLP = 0.0, sumC = 0.0, sumGLP = 0.0, sumGC = 0.0
        for w in records {
            let lambda = lambdas[w.budget]
            for t in w.cost.indices {
                let r = w.logProb[t] - lambda * w.cost[t]
                let base = w.baseLogProb[t] - lambda * w.baseCost[t]
                sumR += r
                sumLP += w.logProb[t]
                sumC += w.cost[t]
                sumGLP += w.baseLogProb[t]
                sumGC += w.baseCost[t]
                let adv = Float(r - base + w.future[t])
                let i = batch.advantage[0].count
                for s in 0..<L {
                    switch settings.costCredit {
                    case .token: batch.advantage[s].append(adv)
                    case .layer:
                        let kb = greedy ? Int(w.baseK[s][t]) : 0
                        batch.advantage[s].append(Float(Self.layerCreditAdvantage(
                            logProb: w.logProb[t], baselineLogProb: w.baseLogProb[t], k: Int(batch.k[s][i]), baselineK: kb,
                            lambda: lambda, layers: L, kNative: model.config.nExpertUsed) + w.future[t]))
                    }
                }
            }
        }
        for i in perBudget.indices where perBudget[i].windows > 0 {
            let f = 1 / Double(perBudget[i].windows)
            perBudget[i].price *= f
            perBudget[i].costFraction *= f
            perBudget[i].greedyCostFraction *= f
            perBudget[i].lambda = lambdas[i]
        }
        batch.normalizeAdvantages()
        lastBatch = batch
        let st = optimizer.update(allocator: allocator, batch: batch, rng: &trace.rng)
        updatesDone += 1
        tokensDone += n
        let elapsed = AllocatorTrainer.now() - startTime
        let nn = Double(n)
        return AllocatorTrainingProgress(
            update: updatesDone, updates: plannedUpdates, tokens: tokensDone,
            meanReward: sumR / nn, meanLogProb: sumLP / nn, costFraction: sumC / nn,
            greedyLogProb: greedy ? sumGLP / nn : .nan, greedyCostFraction: greedy ? sumGC / nn : .nan,
            meanKPerLayer: kSum.map { $0 / nn }, budgets: perBudget, ppo: st, tokensPerSecond: 0, elapsedSeconds: elapsed, etaSeconds: 0)
    }

    /// Trains until `plannedUpdates`, calling `progress` after every update (return false to stop;
    /// the allocator then holds the last completed update). Checkpoints to `checkpointPath` (the
    /// allocator GGUF, with the optimiser state beside it at `checkpointPath + ".optim"`).
    @discardableResult
    public func run(checkpointPath: String? = nil, progress: ((AllocatorTrainingProgress) -> Bool)? = nil) throws -> Allocator {
        let t0 = AllocatorTrainer.now()
        let doneAtStart = updatesDone, tokensAtStart = tokensDone
        while updatesDone < plannedUpdates {
            var p = try step(startTime: t0)
            let secs = AllocatorTrainer.now() - t0
            p.tokensPerSecond = Double(tokensDone - tokensAtStart) / max(secs, 1e-9)
            let per = secs / Double(updatesDone - doneAtStart)
            p.etaSeconds = per * Double(plannedUpdates - updatesDone)
            if let path = checkpointPath, settings.checkpointEvery > 0, updatesDone % settings.checkpointEvery == 0 {
                try saveCheckpoint(path)
            }
            if let progress, !progress(p) {
                if let path = checkpointPath { try saveCheckpoint(path) }
                throw AdaKError.cancelled("allocator training cancelled after update \(updatesDone)")
            }
        }
        if let path = checkpointPath { try saveCheckpoint(path) }
        return allocator
    }

    // MARK: checkpoints

    /// Writes the allocator to `path` and the optimiser state (Adam moments and step, update and
    /// token counters, data cursor, generator state) to `path + ".optim"`.
    public func saveCheckpoint(_ path: String) throws {
        allocator.trainingInfo["adak.train.updates"] = .uint32(UInt32(updatesDone))
        allocator.trainingInfo["adak.train.tokens"] = .uint64(UInt64(tokensDone))
        try allocator.write(to: path)
        var w = GGUFWriter()
        w.set("general.architecture", .string("adak-allocator-optim"))
        w.set("adak.optim.version", .uint32(1))
        w.set("adak.optim.updates", .uint64(UInt64(updatesDone)))
        w.set("adak.optim.tokens", .uint64(UInt64(tokensDone)))
        w.set("adak.optim.cursor", .uint64(UInt64(cursor)))
        w.set("adak.optim.adam_step", .uint64(UInt64(optimizer.step)))
        w.set("adak.optim.rng", .array(trace.rng.state.map { .uint64($0) }))
        w.set("adak.optim.lambda", .float64(settings.lambda))
        if !lambdaMoments.isEmpty { w.set("adak.optim.lambda_moments", .array(lambdaMoments.flatMap(\.values).map { .float64($0) })) }
        for (i, l) in allocator.layers.enumerated() {
            try w.addTensor(name: "adam.m.\(l).weight", dims: [allocator.nEmbd, allocator.nExpert], values: optimizer.mW[i])
            try w.addTensor(name: "adam.v.\(l).weight", dims: [allocator.nEmbd, allocator.nExpert], values: optimizer.vW[i])
            try w.addTensor(name: "adam.m.\(l).bias", dims: [allocator.nExpert], values: optimizer.mB[i])
            try w.addTensor(name: "adam.v.\(l).bias", dims: [allocator.nExpert], values: optimizer.vB[i])
        }
        try w.write(to: path + ".optim")
    }

    /// A trainer that continues the run checkpointed at `path` on the same data. The reward's
    /// settings may change at the resume — λ, the entropy coefficient, the cost credit, the
    /// future discount (a
    /// curriculum: e.g. a run started at identity with one price continues at a higher one); the
    /// allocator then records the finished stages in `adak.train.curriculum`, e.g.
    /// "updates 1-70: lambda 8 entropy_coef 0 cost_credit token; ", and the current ones in the
    /// usual `adak.train.*` keys. The other settings are expected unchanged.
    public convenience init(resuming path: String, model: Model, tokens: [Int32], settings: AllocatorTrainingSettings) throws {
        let a = try Allocator(path: path, model: model)
        let before = AllocatorTrainer.rewardSettings(a.trainingInfo)
        let stages = a.trainingInfo["adak.train.curriculum"]?.stringValue ?? ""
        try self.init(model: model, tokens: tokens, settings: settings, allocator: a)
        let g = try GGUFFile(path: path + ".optim")
        guard g.int("adak.optim.version") == 1, let upd = g.int("adak.optim.updates"), let tok = g.int("adak.optim.tokens"),
              let cur = g.int("adak.optim.cursor"), let st = g.int("adak.optim.adam_step"),
              let rng = g.metadata["adak.optim.rng"]?.arrayValue, rng.count == 4 else {
            throw AdaKError.format("\(path).optim is not an allocator optimiser checkpoint")
        }
        for (i, l) in a.layers.enumerated() {
            for (name, count) in [("m.\(l).weight", a.nExpert * a.nEmbd), ("v.\(l).weight", a.nExpert * a.nEmbd), ("m.\(l).bias", a.nExpert), ("v.\(l).bias", a.nExpert)] {
                guard let t = g.tensor("adam.\(name)"), t.elementCount == count, t.type == 0 else {
                    throw AdaKError.format("optimiser checkpoint lacks adam.\(name)")
                }
                let v = try g.dequantize(t)
                switch name.first! {
                case "m": if name.hasSuffix("weight") { optimizer.mW[i] = v } else { optimizer.mB[i] = v }
                default: if name.hasSuffix("weight") { optimizer.vW[i] = v } else { optimizer.vB[i] = v }
                }
            }
        }
        updatesDone = upd
        tokensDone = tok
        cursor = cur % max(tokens.count, 1)
        optimizer.step = st
        let words: [UInt64] = rng.compactMap { if case .uint64(let v) = $0 { v } else { nil } }
        guard words.count == 4 else { throw AdaKError.format("\(path).optim: bad generator state") }
        trace.rng = TrainingRNG(state: words)
        // the λ fit's memory continues where the run stopped (none in files of earlier versions)
        if let mv = g.metadata["adak.optim.lambda_moments"]?.arrayValue {
            let v = mv.compactMap(\.doubleValue)
            guard v.count == mv.count, v.count % LambdaMoments.count == 0 else {
                throw AdaKError.format("\(path).optim: bad lambda moments")
            }
            if v.count == LambdaMoments.count * settings.trainBudgets.count {
                lambdaMoments = stride(from: 0, to: v.count, by: LambdaMoments.count).map {
                    LambdaMoments(values: Array(v[$0..<($0 + LambdaMoments.count)]))
                }
            }
        }
        if let before, let now = AllocatorTrainer.rewardSettings(a.trainingInfo), before != now {
            let first = AllocatorTrainer.curriculumEnd(stages) + 1
            a.trainingInfo["adak.train.curriculum"] = .string(stages + "updates \(first)-\(upd): \(before); ")
        }
    }

    /// "lambda L entropy_coef C cost_credit X" from an allocator's training metadata (nil when it
    /// has no λ, i.e. was not written by this trainer).
    static func rewardSettings(_ info: [String: GGUFValue]) -> String? {
        guard let l = info["adak.train.lambda"]?.doubleValue else { return nil }
        let c = info["adak.train.entropy_coef"]?.doubleValue ?? 0
        let x = info["adak.train.cost_credit"]?.stringValue ?? CostCredit.token.rawValue
        let g = info["adak.train.future_discount"]?.doubleValue ?? 0
        func f(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
        let b = info["adak.train.budgets"]?.stringValue.map { " budgets \($0)" } ?? ""
        let w = info["adak.train.sample_window"]?.doubleValue.map { " sample_window \(f($0))" } ?? ""
        return "lambda \(f(l)) entropy_coef \(f(c)) cost_credit \(x)" + (g == 0 ? "" : " future_discount \(f(g))") + b + w
    }

    /// The last update of the recorded curriculum stages (0: none).
    static func curriculumEnd(_ stages: String) -> Int {
        // stages are "updates A-B: …; " — the last one's B
        guard let last = stages.split(separator: ";").last(where: { $0.contains(":") }),
              let colon = last.firstIndex(of: ":"), let dash = last[..<colon].lastIndex(of: "-") else { return 0 }
        return Int(last[last.index(after: dash)..<colon]) ?? 0
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Weighted regression moments of y on x (n, Σx, Σy, Σx², Σxy) for the λ fit under training
/// budgets; decaying and adding them pools updates (`AllocatorTrainingSettings.lambdaMemory`).
public struct LambdaMoments: Sendable, Equatable {
    static let count = 5
    public var n = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0

    public init() {}
    init(values v: [Double]) { (n, sx, sy, sxx, sxy) = (v[0], v[1], v[2], v[3], v[4]) }
    var values: [Double] { [n, sx, sy, sxx, sxy] }

    mutating func add(x: Double, y: Double) {
        n += 1; sx += x; sy += y; sxx += x * x; sxy += x * y
    }
    func decayed(by d: Double) -> LambdaMoments { LambdaMoments(values: values.map { $0 * d }) }
    static func + (a: LambdaMoments, b: LambdaMoments) -> LambdaMoments {
        LambdaMoments(values: zip(a.values, b.values).map { $0 + $1 })
    }
    /// cov(x, y)/var(x) floored at 0, as `AllocatorTrainer.fitLambda` (0 when x does not vary).
    public var slope: Double {
        guard n > 1 else { return 0 }
        let vx = sxx - sx * sx / n, cxy = sxy - sx * sy / n
        return vx > 1e-12 ? max(0, cxy / vx) : 0
    }
}
