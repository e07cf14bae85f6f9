import AdaK
import ArgumentParser

/// `adak convert HF_DIR OUT.gguf`: the same mapping the loader uses, written to a file.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Hugging Face checkpoint folder (config.json, safetensors, tokenizer.json) to GGUF.",
        discussion: """
            Writes the tensor names, layouts and metadata llama.cpp's convert_hf_to_gguf.py writes \
            (q/k rows permuted for arch llama, experts stacked), so llama.cpp loads the file. \
            Supported: MixtralForCausalLM, LlamaForCausalLM, OlmoeForCausalLM, Qwen2MoeForCausalLM, \
            Qwen3MoeForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GraniteMoeForCausalLM, \
            DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, GptOssForCausalLM (unquantised weights) \
            with a byte-level BPE tokenizer.json.
            """)

    @Argument(help: "Hugging Face checkpoint folder") var input: String
    @Argument(help: "Output GGUF file") var output: String
    @Option(help: "f32: every tensor in f32 (llama.cpp --outtype f32); source: matrices keep their F16/BF16 dtype")
    var outtype = "f32"
    @Option(help: "general.name (default: the folder name in title case)") var name: String?

    func run() throws {
        guard let t = HFConvertOptions.OutType(rawValue: outtype) else {
            throw ValidationError("--outtype must be one of: \(HFConvertOptions.OutType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard HFCheckpoint.isCheckpoint(input) else {
            throw ValidationError("'\(input)' is not a folder with a config.json")
        }
        var o = HFConvertOptions()
        o.outType = t
        o.name = name
        let w = try HFCheckpoint.gguf(directory: input, options: o)
        try w.write(to: output)
        let g = try GGUFFile(path: output)
        print("wrote \(output): arch \(g.string("general.architecture") ?? "?"), \(g.tensors.count) tensors, \(g.storage.count) bytes")
    }
}
