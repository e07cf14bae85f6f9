import AdaK
import ArgumentParser
import CAdaK
import Glibc

@main
struct Adak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adak",
        abstract: "libadak: adaptive Mixture-of-Experts inference on the CPU.",
        version: ADAK_VERSION_STRING,
        subcommands: [Generate.self, Chat.self, PerplexityCommand.self, Inspect.self, Bench.self, Convert.self, Carve.self,
                      TrainAllocator.self, EvalRouting.self, Quantize.self, Kernels.self])
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

    @Option(name: .shortAndLong, parsing: .unconditional,
            help: "Prompt text ('-': read it from standard input; may start with '-')") var prompt: String?
    @Option(name: [.customShort("f"), .long], help: "Read the prompt from this file") var file: String?
    @OptionGroup var decoding: DecodingOptions
    @Flag(help: "Parse special-token text such as <|im_start|> in the prompt") var special = false
    @Flag(help: "Send the prompt as a user message through the model's chat template (Instruct models)") var chat = false
    @Option(parsing: .unconditional, help: "With --chat: the system prompt (default: the template's own)") var system: String?
    @Flag(help: "Print the prompt before the generated text") var echo = false
    @Flag(help: "Print timing and why generation stopped to standard error") var verbose = false
    @Flag(help: "Print routing statistics (k per layer, FLOPs vs static Top-K) to standard error") var stats = false
    @OptionGroup var routing: RoutingOptions

    func validate() throws {
        try decoding.check()
        guard (prompt == nil) != (file == nil) else { throw ValidationError("give the prompt with -p TEXT, -p - (standard input) or -f FILE") }
        guard system == nil || chat else { throw ValidationError("--system needs --chat") }
    }

    func run() throws {
        let t0 = now()
        let promptBytes: [UInt8]
        if let file {
            guard let f = fopen(file, "rb") else { throw ValidationError("cannot read \(file): \(String(cString: strerror(errno)))") }
            promptBytes = readAll(f)
            fclose(f)
        } else if prompt == "-" {
            promptBytes = readAll(fdopen(0, "rb"))
        } else {
            promptBytes = Array((prompt ?? "").utf8)
        }
        let model = try Model(path: decoding.model)
        let session = try decoding.session(model)
        try routing.apply(to: session)
        let tokens: [Int32]
        if chat {
            let messages = (system.map { [ChatMessage(role: "system", content: $0)] } ?? [])
                + [ChatMessage(role: "user", content: String(decoding: promptBytes, as: UTF8.self))]
            tokens = model.tokenizeChat(try model.applyChatTemplate(messages))
        } else {
            tokens = model.tokenizer.tokenize(promptBytes, addSpecial: true, parseSpecial: special)
        }
        let t1 = now()
        if echo { emit(promptBytes) }
        var first: Double? = nil
        let generated = try session.generate(prompt: tokens, maxTokens: decoding.maxTokens) { _, piece in
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
                + "\(generated.count) tokens, \(tenths / 10).\(tenths % 10) tokens/s after the first, "
                + "stopped: \(session.stopReason?.name ?? "-")\n"
            emit(Array(line.utf8), to: 2)
        }
        if stats && model.config.isMoE { emit(Array((formatStats(session.stats) + "\n").utf8), to: 2) }
        if generated.isEmpty && session.stopReason == .endOfGeneration && !chat && model.tokenizer.chatTemplate != nil {
            emit(Array("note: the model ended its turn at once; an Instruct model wants its chat template: add --chat (or use `adak chat`)\n".utf8), to: 2)
        }
    }

}

/// Writes bytes straight to a file descriptor (unbuffered, so tokens appear as they come).
func emit(_ bytes: [UInt8], to fd: Int32 = 1) {
    bytes.withUnsafeBufferPointer { buffer in
        var offset = 0
        while offset < buffer.count, let base = buffer.baseAddress {
            let n = Glibc.write(fd, base + offset, buffer.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}

func ms(_ seconds: Double) -> Int { Int(seconds * 1000) }

/// Everything left in a stream.
func readAll(_ f: UnsafeMutablePointer<FILE>?) -> [UInt8] {
    guard let f else { return [] }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n <= 0 { break }
        out += chunk[..<n]
    }
    return out
}

/// Model, sampling and session flags shared by generate and chat.
struct DecodingOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "GGUF model file") var model: String
    @Option(name: [.customShort("n"), .long], parsing: .unconditional, help: "Maximum number of tokens to generate (per turn)") var maxTokens = 128
    @Option(parsing: .unconditional, help: "Temperature (0: greedy)") var temp: Float = 0.8
    @Option(parsing: .unconditional, help: "Top-k (0: off)") var topK = 40
    @Option(parsing: .unconditional, help: "Top-p (1: off)") var topP: Float = 0.95
    @Option(parsing: .unconditional, help: "Min-p (0: off)") var minP: Float = 0.05
    @Option(parsing: .unconditional, help: "Repetition penalty (1: off)") var repeatPenalty: Float = 1.0
    @Option(help: "Sampler seed") var seed: UInt64 = 0xADA
    @Option(name: [.short, .long], parsing: .unconditional, help: "Compute threads (0: all cores)") var threads = 0
    @Option(name: [.short, .customLong("ctx")], parsing: .unconditional, help: "Context size in tokens (0: min(model's, 4096))") var contextSize = 0
    @Option(help: "KV cache type: f32 (llama.cpp-exact with an f32 cache) or f16") var kvType = "f32"

    func check() throws {
        guard maxTokens >= 0 else { throw ValidationError("-n must be >= 0") }
        guard threads >= 0, contextSize >= 0 else { throw ValidationError("--threads and --ctx must be >= 0") }
        guard KVCacheType(rawValue: kvType) != nil else { throw ValidationError("--kv-type must be f32 or f16") }
    }

    func session(_ model: Model) throws -> Session {
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
        return try Session(model: model, params: params)
    }
}
