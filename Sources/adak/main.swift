import AdaK
import ArgumentParser
import Glibc

@main
struct Adak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adak",
        abstract: "libadak: adaptive Mixture-of-Experts inference on the CPU.",
        subcommands: [Generate.self, PerplexityCommand.self, Inspect.self, Bench.self, Convert.self, Carve.self,
                      TrainAllocator.self, EvalRouting.self, Quantize.self])
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a GGUF file's metadata and tensors.")
    @Argument(help: "GGUF file") var file: String
    @Flag(help: "Print every tensor") var tensors = false

    func run() throws {
        let g = try GGUFFile(path: file)
        print("GGUF v\(g.version), \(g.metadata.count) metadata keys, \(g.tensors.count) tensors, alignment \(g.alignment)")
        for k in g.metadataKeys {
            guard let v = g.metadata[k] else { continue }
            switch v {
            case .array(let a): print("  \(k) = [\(a.count) values]")
            case .string(let s): print("  \(k) = \"\(s.count > 120 ? String(s.prefix(120)) + "…" : s)\"")
            default: print("  \(k) = \(v)")
            }
        }
        if tensors {
            for t in g.tensors { print("  \(t.name)  \(t.typeName)  \(t.dims)") }
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streaming it to standard output.")

    @Option(name: .shortAndLong, help: "GGUF model file") var model: String
    @Option(name: .shortAndLong, help: "Prompt text") var prompt: String
    @Option(name: [.customShort("n"), .long], help: "Maximum number of tokens to generate") var maxTokens = 128
    @Option(help: "Temperature (0: greedy)") var temp: Float = 0.8
    @Option(help: "Top-k (0: off)") var topK = 40
    @Option(help: "Top-p (1: off)") var topP: Float = 0.95
    @Option(help: "Min-p (0: off)") var minP: Float = 0.05
    @Option(help: "Repetition penalty (1: off)") var repeatPenalty: Float = 1.0
    @Option(help: "Sampler seed") var seed: UInt64 = 0xADA
    @Option(name: [.short, .long], help: "Compute threads (0: all cores)") var threads = 0
    @Option(name: [.short, .customLong("ctx")], help: "Context size in tokens (0: min(model's, 4096))") var contextSize = 0
    @Option(help: "KV cache type: f32 (llama.cpp-exact with an f32 cache) or f16") var kvType = "f32"
    @Flag(help: "Parse special-token text such as <|im_start|> in the prompt") var special = false
    @Flag(help: "Print the prompt before the generated text") var echo = false
    @Flag(help: "Print timing to standard error") var verbose = false
    @Flag(help: "Print routing statistics (k per layer, FLOPs vs static Top-K) to standard error") var stats = false
    @OptionGroup var routing: RoutingOptions

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("-n must be >= 0") }
        guard threads >= 0, contextSize >= 0 else { throw ValidationError("--threads and --ctx must be >= 0") }
        guard KVCacheType(rawValue: kvType) != nil else { throw ValidationError("--kv-type must be f32 or f16") }
    }

    func run() throws {
        let t0 = now()
        let model = try Model(path: self.model)
        var params = SessionParams()
        params.contextSize = contextSize
        params.threads = threads
        params.kvType = KVCacheType(rawValue: kvType) ?? .f32
        params.sampling.temperature = temp
        params.sampling.topK = topK
        params.sampling.topP = topP
        params.sampling.minP = minP
        params.sampling.repeatPenalty = repeatPenalty
        params.sampling.seed = seed
        let session = try Session(model: model, params: params)
        try routing.apply(to: session)
        let tokens = model.tokenizer.tokenize(Array(prompt.utf8), addSpecial: true, parseSpecial: special)
        let t1 = now()
        if echo { emit(Array(prompt.utf8)) }
        var first: Double? = nil
        let generated = try session.generate(prompt: tokens, maxTokens: maxTokens) { _, piece in
            if first == nil { first = now() }
            emit(piece)
            return true
        }
        emit(Array("\n".utf8))
        if verbose {
            let t2 = now()
            let prefill = (first ?? t2) - t1
            let decode = t2 - (first ?? t2)
            let tenths = generated.count > 1 && decode > 0 ? Int(Double(generated.count - 1) / decode * 10) : 0
            let line = "load \(ms(t1 - t0)) ms, prompt \(tokens.count) tokens + first token \(ms(prefill)) ms, "
                + "\(generated.count) tokens, \(tenths / 10).\(tenths % 10) tokens/s after the first\n"
            emit(Array(line.utf8), to: 2)
        }
        if stats && model.config.isMoE { emit(Array((formatStats(session.stats) + "\n").utf8), to: 2) }
    }

    /// Writes bytes straight to a file descriptor (unbuffered, so tokens appear as they come).
    private func emit(_ bytes: [UInt8], to fd: Int32 = 1) {
        bytes.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let n = Glibc.write(fd, base + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    private func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    private func ms(_ seconds: Double) -> Int { Int(seconds * 1000) }
}
