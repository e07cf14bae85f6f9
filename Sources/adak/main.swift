import AdaK
import ArgumentParser

@main
struct Adak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adak",
        abstract: "libadak: adaptive Mixture-of-Experts inference on the CPU.",
        subcommands: [Inspect.self, Bench.self, Carve.self, TrainAllocator.self, EvalRouting.self])
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
