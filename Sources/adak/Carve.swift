import AdaK
import ArgumentParser
import Foundation

struct Carve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Carve a dense GGUF model's FFNs into experts (an adak-moe GGUF).",
        discussion: """
            Calibrate and carve:  adak carve DENSE OUT --experts 16 --shared-fraction 0.25 --top-k 8 --calib TEXT [--seed 0] [--plan-out PLAN]
            Rebuild from a plan:  adak carve DENSE OUT --plan PLAN
            """)

    @Argument(help: "Dense GGUF model (llama, qwen2 or qwen3 architecture)") var dense: String
    @Argument(help: "Output MoE GGUF") var output: String
    @Option(help: "Routed experts per layer (must divide the FFN width)") var experts = 16
    @Option(help: "Fraction of neurons in the always-on shared expert") var sharedFraction: Float = 0.25
    @Option(help: "Native K written into the model") var topK = 8
    @Option(help: "Calibration text file (UTF-8)") var calib: String?
    @Option(help: "Seed of the clustering") var seed: UInt64 = 0
    @Option(help: "Write the carving plan here") var planOut: String?
    @Option(help: "Rebuild from this plan instead of calibrating") var plan: String?
    @Option(help: "Calibration tokens to capture") var calibTokens = 4096
    @Option(help: "Weight format of the experts: q8_0, q4_0 or f32") var expertType = "q8_0"
    @Option(help: "Comma-separated layers to carve (default: all)") var layers: String?
    @Option(help: "Threads (0: all cores)") var threads = 0
    @Option(help: "After carving, print a perplexity table on this text (fixtures ppl.json protocol: first 16384 tokens, 32 windows of 512, second halves scored)") var eval: String?
    @Option(help: "K values for --eval (comma-separated)") var evalK = "4,6,8,10,12,16"

    func run() throws {
        var o = CarveOptions()
        o.experts = experts
        o.sharedFraction = sharedFraction
        o.topK = topK
        o.seed = seed
        o.maxTokens = calibTokens
        o.threads = threads
        guard let type = WeightType(rawValue: expertType) else {
            throw ValidationError("--expert-type must be q8_0, q4_0 or f32")
        }
        o.expertType = type
        if let layers {
            o.layers = try layers.split(separator: ",").map {
                guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("bad --layers '\(layers)'") }
                return v
            }
        }
        if let plan {
            o.plan = try CarvePlan(path: plan)
        } else {
            guard let calib else { throw ValidationError("give --calib TEXT (or --plan PLAN)") }
            o.calibrationText = try String(contentsOfFile: calib, encoding: .utf8)
        }
        let start = Date()
        var lastStage = ""
        let result = try Carver.carve(dense: dense, output: output, options: o) { stage, done, total in
            let line = "\r\(stage.rawValue) \(done)/\(total)   "
            if stage.rawValue != lastStage && !lastStage.isEmpty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            lastStage = stage.rawValue
            FileHandle.standardError.write(line.data(using: .utf8)!)
            return true
        }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
        let secs = Date().timeIntervalSince(start)
        if let planOut { try result.write(to: planOut) }
        print("carved \(result.layers.count) layers: \(result.experts) experts × \(result.expertWidth) neurons + \(result.sharedCount) shared, native K \(result.expertUsed), experts \(type.rawValue)")
        if plan == nil {
            let recall = result.layers.map { String(format: "%.2f", $0.routerRecall) }.joined(separator: " ")
            print("calibration tokens \(result.calibrationTokens); router recall of the oracle top-\(result.expertUsed) per layer: \(recall)")
        }
        print(String(format: "wrote %@ in %.1f s", output, secs) + (planOut.map { ", plan \($0)" } ?? ""))
        if let eval { try evaluate(eval, plan: result) }
    }

    func evaluate(_ path: String, plan: CarvePlan) throws {
        let ks = try evalK.split(separator: ",").map {
            guard let k = Int($0), k >= 1, k <= plan.experts else { throw ValidationError("bad --eval-k '\(evalK)'") }
            return k
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let denseModel = try Model(path: dense)
        let window = 512, chunks = 32
        var prefix = Array(text.utf8.prefix(400_000))
        while let last = prefix.last, last != 10 { prefix.removeLast() }
        let tokens = Array(denseModel.tokenizer.tokenize(prefix, addSpecial: true, parseSpecial: false).prefix(window * chunks))
        guard tokens.count == window * chunks else { throw ValidationError("--eval text has fewer than \(window * chunks) tokens") }
        func ppl(_ m: Model, k: Int?) throws -> (PerplexityResult, Double) {
            var p = SessionParams()
            p.contextSize = window
            p.threads = threads
            p.routing.k = k
            let s = try Session(model: m, params: p)
            let t0 = Date()
            let r = try Perplexity.evaluate(session: s, tokens: tokens, window: window, maxChunks: chunks)
            return (r, Date().timeIntervalSince(t0))
        }
        print("| model | K | active FFN neurons | ppl | ± | ratio to dense | seconds |")
        print("|---|---|---|---|---|---|---|")
        let (d, dt) = try ppl(denseModel, k: nil)
        print(String(format: "| dense | – | 100%% | %.3f | %.3f | 1.00 | %.0f |", d.ppl, d.stderr, dt))
        let moe = try Model(path: output)
        for k in ks {
            let (r, t) = try ppl(moe, k: k)
            let active = Double(plan.sharedCount + k * plan.expertWidth) / Double(plan.nFF) * 100
            print(String(format: "| carved | %d | %.1f%% | %.3f | %.3f | %.2f | %.0f |", k, active, r.ppl, r.stderr, r.ppl / d.ppl, t))
        }
    }
}
