import Foundation
import Testing
@testable import AdaK

/// Issue 8: untrusted GGUF bytes and tokenizer input never crash, limits are enforced, and the
/// committed fuzz regression corpus (fuzz/regress/) is replayed on every test run.
@Suite struct ReliabilityTests {
    static let regress = Fixtures.repoRoot + "/fuzz/regress"

    static func files(in dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    /// Loads `bytes` as a model the way adak_model_load_from_buffer does; if it loads, evaluates
    /// one token and samples one. Returns whether it loaded; a crash is the failure.
    @discardableResult
    static func loadAndRun(_ bytes: [UInt8]) -> Bool {
        let model: Model
        do {
            let storage = try bytes.withUnsafeBytes { try MappedFile(copying: $0) }
            model = try Model(gguf: GGUFFile(storage: storage), params: ModelParams())
        } catch {
            #expect(error is AdaKError, "a load fails with an AdaKError, not \(error)")
            return false
        }
        var p = SessionParams()
        p.contextSize = 8
        p.threads = 1
        p.batchSize = 4
        if let session = try? Session(model: model, params: p), (try? session.evaluate([0])) != nil {
            let t = session.sample()
            #expect(t >= 0 && Int(t) < model.config.nVocab)
        }
        return true
    }

    @Test func ggufRegressionCorpus() throws {
        for path in Self.files(in: Self.regress + "/gguf") {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            Self.loadAndRun([UInt8](data))
        }
    }

    /// Every byte of the header of a small model overwritten in turn with 0xFF and 0x00: each
    /// variant loads or fails with an error, never crashes (a deterministic mini-fuzz).
    @Test func corruptedHeaderBytes() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/tiny-olmoe.q4_0.gguf"))))
        let headerEnd = try GGUFFile(path: Fixtures.path("models/tiny-olmoe.q4_0.gguf")).dataOffset
        #expect(Self.loadAndRun(original))
        var loaded = 0, variants = 0
        for offset in stride(from: 0, to: headerEnd, by: 9) {
            for value: UInt8 in [0xFF, 0x00] where original[offset] != value {
                var bytes = original
                bytes[offset] = value
                if Self.loadAndRun(bytes) { loaded += 1 }
                variants += 1
            }
        }
        #expect(variants > 500)
        #expect(loaded < variants)
    }

    /// Every truncation point in the header: always a format error.
    @Test func truncatedHeaders() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/tiny-qwen3moe.q4_0.gguf"))))
        for end in stride(from: 1, to: 6000, by: 7) {
            #expect(!Self.loadAndRun(Array(original[0..<end])))
        }
    }

    @Test func tokenizerRegressionCorpus() throws {
        let vocabs = ["tokenizer/smollm2.vocab.gguf", "tokenizer/gemma3.vocab.gguf"]
        let tokenizers = try vocabs.map { try Tokenizer(gguf: GGUFFile(path: Fixtures.path($0))) }
        // SmolLM2's vocabulary has no byte token for these ASCII bytes: they are dropped, as in
        // llama.cpp (found by the tokenizer fuzzer; fuzz/regress/tokenizer/bpe-unrepresentable-byte).
        let smol = tokenizers[0]
        for b: UInt8 in [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D] {
            #expect(smol.tokenize([b], addSpecial: false, parseSpecial: false).isEmpty)
        }
        #expect(smol.detokenize(smol.tokenize(Array("a\u{13}b".utf8), addSpecial: false, parseSpecial: false),
                                removeSpecial: false, unparseSpecial: false) == Array("ab".utf8))
        let representable = Set((0...127).map(UInt8.init)).subtracting([0x04, 0x06, 0x13, 0x14, 0x16, 0x1D])
            .union((0x80...0xF4).map(UInt8.init)).subtracting([0xC0, 0xC1, 0xF1, 0xF2])
        let inputs = try Self.files(in: Self.regress + "/tokenizer").map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
        // Plus the corner cases that tokenizers get wrong most often.
        let extra: [[UInt8]] = [[], [0xFF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0x00, 0x00],
                                Array("<|im_start|><|im_start|><unk><s></s>".utf8),
                                [UInt8](repeating: 0x20, count: 4096), [UInt8](repeating: 0x61, count: 4096)]
        for text in inputs + extra {
            for (i, t) in tokenizers.enumerated() {
                for (add, parse) in [(false, false), (true, true)] {
                    let ids = t.tokenize(text, addSpecial: add, parseSpecial: parse)
                    #expect(ids.allSatisfy { t.isValid($0) })
                    let back = t.detokenize(ids, removeSpecial: false, unparseSpecial: true)
                    if i == 0 && !add && !parse {
                        if String(validating: text, as: UTF8.self) != nil, text.allSatisfy({ representable.contains($0) }) {
                            #expect(back == text, "byte-level BPE round-trips valid UTF-8 of representable bytes")
                        } else {
                            // Invalid sequences come back as U+FFFD, as in llama.cpp.
                            #expect(String(validating: back, as: UTF8.self) != nil)
                        }
                    }
                }
            }
        }
    }

    @Test func limits() throws {
        #expect(throws: AdaKError.self) { try MappedFile(copying: UnsafeRawBufferPointer(start: nil, count: 0)) }
        let model = try Model(path: Fixtures.path("models/tiny-mixtral.q8_0.gguf"))
        var p = SessionParams()
        p.contextSize = ModelConfig.maxContext + 1
        #expect(throws: AdaKError.self) { try Session(model: model, params: p) }
        p.contextSize = 4
        let s = try Session(model: model, params: p)
        #expect(throws: AdaKError.self) { try s.evaluate([1, 2, 3, 4, 5]) }
        #expect(s.position == 0)
        try s.evaluate([1, 2, 3, 4])
        #expect(throws: AdaKError.self) { try s.evaluate([1]) }
        #expect(s.position == 4)
    }
}
