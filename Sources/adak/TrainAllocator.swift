import AdaK
import ArgumentParser
import Foundation

/// `adak train-allocator`: PPO training of an Ada-K allocator on a frozen MoE model.
struct TrainAllocator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-allocator",
        abstract: "Train an Ada-K allocator with PPO (the model stays frozen).",
        discussion: """
            Reward per token: log p(next token) − λ·(Σ_l k_l)/(L·K). With --train-budgets the rollouts run
            under the global price instead: each window takes the next budget B of the list, its greedy pass is
            inference at --budget B (the shared price μ solved over the window) and k is sampled from
            softmax(logit_k − μ·k); λ is then fitted per budget and update (docs/DESIGN.md §8.5).
            Starts from the identity allocator (exactly static Top-K) unless --resume or --init-from. Writes OUT (allocator GGUF) and OUT.optim (optimiser
            state) every --checkpoint-every updates and at the end; --resume continues from them, and may
            change --lambda, --entropy-coef, --cost-credit and --future-discount (a curriculum, recorded in the allocator's
            adak.train.curriculum).
            """)

    @Option(name: .shortAndLong, help: "MoE model (GGUF)") var model: String
    @Option(help: "Training text (UTF-8)") var data: String
    @Option(help: "Output allocator (GGUF)") var out: String
    @Option(help: "Compute price λ in the reward (not with --train-budgets)") var lambda: Double?
    @Option(help: "Train under the global price at these expert-FLOPs budgets, e.g. 0.5,0.625,0.75 (one per window, in turn)")
    var trainBudgets: String?
    @Option(help: "With --train-budgets: memory d in [0, 1) of the λ fit, which pools the earlier updates' tokens weighted d^age (0: this update's only)")
    var lambdaMemory = 0.0
    @Option(help: "Sample k only within [g − w, g + w] around the greedy k g, from the policy renormalised there (0: no window)")
    var sampleWindow = 0
    @Option(help: "Start a new run (fresh optimiser) from this allocator file instead of the identity")
    var initFrom: String?
    @Option(help: "Sampled tokens per PPO update") var rolloutTokens = 2048
    @Option(help: "Tokens per teacher-forced window") var window = 256
    @Option(help: "PPO epochs per batch") var epochs = 4
    @Option(help: "Tokens per minibatch (all MoE layers of each)") var minibatch = 256
    @Option(help: "Clip range ε") var clip = 0.2
    @Option(help: "Adam learning rate") var lr = 3e-3
    @Option(help: "Learning rate of the allocator weights as a multiple of --lr (biases: --lr)") var weightLrScale = 1.0
    @Option(help: "Entropy bonus coefficient") var entropyCoef = 0.0
    @Option(help: "Gradient-norm clip (0: none)") var maxGradNorm = 1.0
    @Option(help: "Advantage baseline: greedy (self-critical, 2 passes per window) or mean") var baseline = "greedy"
    @Option(help: "Cost credit: token (every layer's action gets the token's whole cost) or layer (each layer only its own k's cost)") var costCredit = "token"
    @Option(help: "Discount γ in [0, 1) of later tokens' log p in a token's credit (0: its own next token only)") var futureDiscount = 0.0
    @Option(help: "MoE layers sampled per rollout window, the others at their argmax (0: all)") var perturbLayers = 0
    @Option(help: "Seed of sampling and shuffling") var seed: UInt64 = 0
    @Option(help: "Smallest k the allocator may choose") var kMin = 1
    @Option(help: "Largest k the allocator may choose (default: all experts)") var kMax: Int?
    @Option(help: "PPO updates") var updates = 50
    @Option(help: "Stop after this many sampled tokens") var totalTokens: Int?
    @Option(help: "Sharpness s of the starting identity allocator, bias −s·(k−K)²") var initSharpness: Float = 1
    @Option(help: "Checkpoint every N updates (0: only at the end)") var checkpointEvery = 5
    @Flag(help: "Continue from OUT and OUT.optim") var resume = false
    @Option(name: [.short, .long], help: "Threads (0: all cores)") var threads = 0

    func run() throws {
        guard let base = AdvantageBaseline(rawValue: baseline) else { throw ValidationError("--baseline must be greedy or mean") }
        guard let credit = CostCredit(rawValue: costCredit) else { throw ValidationError("--cost-credit must be token or layer") }
        var s = AllocatorTrainingSettings()
        if let trainBudgets {
            let bs = trainBudgets.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !bs.isEmpty, bs.allSatisfy({ $0 != nil }) else { throw ValidationError("--train-budgets: a comma-separated list of numbers") }
            s.trainBudgets = bs.map { $0! }
        }
        guard lambda != nil || !s.trainBudgets.isEmpty else { throw ValidationError("--lambda or --train-budgets is needed") }
        guard !(resume && initFrom != nil) else { throw ValidationError("--resume and --init-from exclude each other") }
        s.lambda = lambda ?? 0
        s.rolloutTokens = rolloutTokens
        s.window = window
        s.ppo.epochs = epochs
        s.ppo.minibatch = minibatch
        s.ppo.clip = clip
        s.ppo.learningRate = lr
        s.ppo.weightLRScale = weightLrScale
        s.ppo.entropyCoef = entropyCoef
        s.ppo.maxGradNorm = maxGradNorm
        s.baseline = base
        s.costCredit = credit
        s.futureDiscount = futureDiscount
        s.lambdaMemory = lambdaMemory
        s.sampleWindow = sampleWindow
        s.perturbLayers = perturbLayers
        s.seed = seed
        s.kMin = kMin
        s.kMax = kMax
        s.updates = updates
        s.totalTokens = totalTokens
        s.initSharpness = initSharpness
        s.checkpointEvery = checkpointEvery
        s.threads = threads
        let m = try Model(path: model)
        // tokenize only the prefix of the text the run can use (≈ 8 bytes per token is ample)
        let windowsPerUpdate = max(1, (rolloutTokens + window - 2) / (window - 1))
        let wanted = min(updates * windowsPerUpdate * window, totalTokens.map { $0 + windowsPerUpdate * window } ?? Int.max)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: data))
        var prefix = Array(bytes.prefix(wanted * 8 + 4096))
        if prefix.count < bytes.count { while let last = prefix.last, last != 10 { prefix.removeLast() } }
        let tokens = m.tokenizer.tokenize(prefix, addSpecial: false, parseSpecial: false)
        let trainer = try resume ? AllocatorTrainer(resuming: out, model: m, tokens: tokens, settings: s)
            : initFrom.map { try AllocatorTrainer(model: m, tokens: tokens, settings: s, startingFrom: $0) }
                ?? AllocatorTrainer(model: m, tokens: tokens, settings: s)
        let L = m.moeLayerIndices.count
        err("train-allocator: \(m.config.arch), \(L) MoE layers, \(m.config.nExpert) experts (K \(m.config.nExpertUsed)); \(tokens.count) data tokens; \(s.trainBudgets.isEmpty ? "λ \(s.lambda)" : "budgets \(trainBudgets!) (λ fitted, memory \(lambdaMemory))"); \(trainer.plannedUpdates) updates × \(windowsPerUpdate) windows of \(window); baseline \(baseline); cost credit \(costCredit); entropy coef \(entropyCoef); future discount \(futureDiscount); perturbed layers \(perturbLayers == 0 ? "all" : String(perturbLayers)); sampling window \(sampleWindow == 0 ? "none" : "±\(sampleWindow)"); threads \(threads == 0 ? "all" : String(threads))\n")
        try trainer.run(checkpointPath: out) { p in
            let ks = p.meanKPerLayer.map { fmt($0, 1) }.joined(separator: " ")
            var line = "upd \(p.update)/\(p.updates) tok \(p.tokens) R \(fmt(p.meanReward, 3)) logp \(fmt(p.meanLogProb, 3))"
            if p.greedyLogProb.isFinite { line += " (argmax \(fmt(p.greedyLogProb, 3)) cost \(fmt(p.greedyCostFraction, 3)))" }
            for b in p.budgets where b.windows > 0 {
                line += " [B \(fmt(Double(b.budget), 3)): cost \(fmt(b.costFraction, 3)) argmax \(fmt(b.greedyCostFraction, 3)) μ \(fmt(b.price, 2)) λ \(fmt(b.lambda, 2))]"
            }
            line += " cost \(fmt(p.costFraction, 3)) KL \(fmt(p.ppo.approxKL, 4)) clip \(fmt(p.ppo.clipFraction, 3)) H \(fmt(p.ppo.entropy, 3)) |g| \(fmt(p.ppo.gradNorm, 3))"
            line += " | \(fmt(p.tokensPerSecond, 1)) tok/s ETA \(Int(p.etaSeconds))s | mean k/layer \(ks)\n"
            err(line)
            return true
        }
        let secs = trainer.tokensDone
        print("wrote \(out) (\(trainer.updatesDone) updates, \(secs) sampled tokens)")
    }

    func err(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8)!) }
}
