import AdaK
import ArgumentParser
import Foundation

/// `adak perplexity`: llama-perplexity's protocol on a text file, with any routing.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file (llama-perplexity's protocol) under a routing policy.",
        discussion: """
            Protocol: the file is tokenised as llama_tokenize(text, add_special=true); the first \
            --chunks × --window tokens are cut into windows of --window tokens, each decoded from an \
            empty context (first token replaced by BOS when the vocabulary adds one); only the second \
            half of each window is scored: logits at positions window/2 … window−2 predict the next \
            token; ppl = exp(mean nll). Routing statistics cover every evaluated token.
            """)

    @Option(name: .shortAndLong, help: "GGUF model file") var model: String
    @Option(name: [.customShort("f"), .long], help: "Text file to score") var file: String
    @Option(help: "Window length in tokens") var window = 512
    @Option(help: "Number of windows (0: as many as the text holds)") var chunks = 0
    @Option(name: [.short, .long], help: "Threads (0: all cores)") var threads = 0
    @Option(help: "Write the result as JSON to this file") var json: String?
    @Option(help: "KV cache type: f32 or f16") var kvType = "f32"
    @OptionGroup var routing: RoutingOptions

    func run() throws {
        let m = try Model(path: model)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        let tokens = m.tokenizer.tokenize([UInt8](data), addSpecial: true, parseSpecial: false)
        var p = SessionParams()
        p.contextSize = window
        p.threads = threads
        p.batchSize = window
        guard let kv = KVCacheType(rawValue: kvType) else { throw ValidationError("--kv-type must be f32 or f16") }
        p.kvType = kv
        let s = try Session(model: m, params: p)
        try routing.apply(to: s)
        let r = try Perplexity.evaluate(session: s, tokens: tokens, window: window,
                                        maxChunks: chunks > 0 ? chunks : nil) { done, total in
            FileHandle.standardError.write("\rwindow \(done)/\(total)".data(using: .utf8)!)
            return true
        }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
        print("perplexity \(fmt(r.ppl, 4)) ± \(fmt(r.stderr, 4)) over \(r.scoredTokens) scored tokens (\(r.chunkMeanNLL.count) windows of \(window))")
        if m.config.isMoE { print(formatStats(s.stats)) }
        if let json {
            let st = s.stats
            let obj: [String: Any] = [
                "model": model, "file": file, "window": window, "chunks": r.chunkMeanNLL.count,
                "ppl": r.ppl, "ppl_stderr": r.stderr, "scored_tokens": r.scoredTokens,
                "routing": s.routing.policy.rawValue, "budget": s.routing.budget.map { Double($0) } ?? NSNull(),
                "mean_k": st.meanK, "mean_k_per_layer": st.meanKPerLayer, "k_histogram": st.kHistogram,
                "expert_fraction": st.expertFraction, "total_fraction": st.totalFraction,
            ]
            let out = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            try out.write(to: URL(fileURLWithPath: json))
        }
    }
}
