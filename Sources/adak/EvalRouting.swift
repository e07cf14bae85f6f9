import AdaK
import ArgumentParser
import Foundation

/// `adak eval-routing`: perplexity and expert-FLOPs fraction of one routing setting (the
/// llama-perplexity protocol: windows of 512, second half scored), as JSON for scripts/pareto.py.
struct EvalRouting: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-routing",
        abstract: "Perplexity and expert FLOPs of a routing setting on held-out text (JSON).")

    @Option(name: .shortAndLong, help: "MoE model (GGUF)") var model: String
    @Option(help: "Text file (UTF-8)") var text: String
    @Option(help: "Windows to score") var windows = 8
    @Option(help: "Tokens per window") var window = 512
    @Option(help: "Static k per MoE layer, comma-separated (overrides --routing)") var kSchedule: String?
    @Option(help: "Write the scored tokens (piece, mean k over layers, k per layer) as JSON here") var tokensOut: String?
    @Option(name: [.short, .long], help: "Threads (0: all cores)") var threads = 0
    @OptionGroup var routing: RoutingOptions

    func run() throws {
        let m = try Model(path: model)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: text))
        var prefix = Array(bytes.prefix(windows * window * 10 + 4096))
        if prefix.count < bytes.count { while let last = prefix.last, last != 10 { prefix.removeLast() } }
        let tokens = Array(m.tokenizer.tokenize(prefix, addSpecial: false, parseSpecial: false).prefix(windows * window))
        guard tokens.count == windows * window else { throw ValidationError("text has fewer than \(windows * window) tokens") }
        var p = SessionParams()
        p.contextSize = window
        p.batchSize = window
        p.threads = threads
        let s = try Session(model: m, params: p)
        try routing.apply(to: s)
        if let kSchedule {
            let ks = try kSchedule.split(separator: ",").map { v -> Int in
                guard let k = Int(v.trimmingCharacters(in: .whitespaces)), k >= 1, k <= m.config.nExpert else {
                    throw ValidationError("bad --k-schedule '\(kSchedule)'")
                }
                return k
            }
            let layers = m.moeLayerIndices
            guard ks.count == layers.count else { throw ValidationError("--k-schedule needs \(layers.count) values") }
            let table = Dictionary(uniqueKeysWithValues: zip(layers, ks))
            var r = s.routing
            r.forcedK = { layer, _ in table[layer] }
            try s.setRouting(r)
        }
        let trace = tokensOut != nil ? RoutingTrace(model: m, sampling: false, recordHidden: false) : nil
        s.trace = trace
        s.resetStats()
        let t0 = Date()
        let r = try Perplexity.evaluate(session: s, tokens: tokens, window: window, maxChunks: windows)
        let secs = Date().timeIntervalSince(t0)
        let st = s.stats
        var out: [String: Any] = [
            "ppl": r.ppl, "stderr": r.stderr, "scored_tokens": r.scoredTokens,
            "expert_fraction": st.expertFraction, "total_fraction": st.totalFraction, "mean_k": st.meanK,
            "mean_k_per_layer": st.meanKPerLayer, "k_histogram": st.kHistogram, "seconds": secs,
            "tokens_per_second": Double(tokens.count) / secs,
            // per-window mean nll: standard errors over windows and paired differences (scripts/eval_protocol.py)
            "window_nll": r.chunkMeanNLL,
        ]
        if let trace, let tokensOut {
            var pieces: [String] = [], meanK: [Double] = [], perLayer: [[Int32]] = []
            let tok = m.tokenizer
            for c in 0..<windows {
                for pos in (window / 2)..<(window - 1) {
                    let i = c * window + pos
                    let ks = trace.k.map { $0[i] }
                    pieces.append(String(decoding: tok.piece(tokens[i], special: false), as: UTF8.self))
                    meanK.append(Double(ks.reduce(0, +)) / Double(max(ks.count, 1)))
                    perLayer.append(ks)
                }
            }
            let obj: [String: Any] = ["pieces": pieces, "mean_k": meanK, "k": perLayer.map { $0.map(Int.init) }]
            try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: tokensOut))
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        FileHandle.standardError.write((formatStats(st) + "\n").data(using: .utf8)!)
    }
}
