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
    }
}
