import AdaK
import ArgumentParser

/// `adak quantize IN.gguf OUT.gguf TYPE`: llama.cpp's quantizer, byte for byte.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a GGUF model to a llama.cpp file type, writing the bytes llama.cpp's quantizer writes.",
        discussion: """
            Same output as llama.cpp's llama-quantize --allow-requantize IN OUT TYPE (no importance \
            matrix): the same mix of tensor types (e.g. Q4_K_M bumps some attn_v/ffn_down to Q6_K, \
            rows that are not a multiple of 256 fall back to 32-element types), the same quantised \
            bytes, metadata and layout. Already-quantized tensors are dequantised first. TYPE is one \
            of: \(QuantFileType.allCases.map(\.rawValue).joined(separator: ", ")).
            """)

    @Argument(help: "Input GGUF file") var input: String
    @Argument(help: "Output GGUF file") var output: String
    @Argument(help: "File type, e.g. Q4_K_M") var type: String
    @Option(name: [.short, .long], help: "Threads (0: all cores); the output does not depend on it") var threads = 0
    @Flag(help: "Refuse to requantize tensors that are already quantized") var noRequantize = false
    @Flag(help: "Print every tensor's type change") var verbose = false

    func run() throws {
        guard let ft = QuantFileType(name: type) else {
            throw ValidationError("unknown type '\(type)'; one of: \(QuantFileType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0") }
        var o = QuantizeOptions(fileType: ft)
        o.threads = threads
        o.allowRequantize = !noRequantize
        let r = try Quantizer.run(input: input, output: output, options: o)
        if verbose {
            for t in r.tensors {
                print("\(t.name): \(GGMLType.name(t.fromType)) -> \(GGMLType.name(t.toType)), \(t.bytes) bytes")
            }
        }
        var counts: [String: Int] = [:]
        for t in r.tensors { counts[GGMLType.name(t.toType), default: 0] += 1 }
        let mix = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("wrote \(output): \(ft.rawValue), \(r.outputBytes) bytes (\(mix)) in \((r.seconds * 100).rounded() / 100) s")
    }
}
