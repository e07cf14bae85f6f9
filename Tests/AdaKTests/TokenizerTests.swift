import Foundation
import Testing
@testable import AdaK

/// Reference data produced by llama.cpp (see Tests/Fixtures/README.md §3 and §4).
enum TokenizerFixtures {
    static let root = Fixtures.root

    static let smollm2: Tokenizer? = load("tokenizer/smollm2.vocab.gguf")
    static let gemma3: Tokenizer? = load("tokenizer/gemma3.vocab.gguf")

    static func load(_ rel: String) -> Tokenizer? {
        guard let g = try? GGUFFile(path: root + "/" + rel) else { return nil }
        return try? Tokenizer(gguf: g)
    }

    /// One line of a cases file (fields of all case kinds; JSONDecoder keeps a leading U+FEFF
    /// in strings, JSONSerialization drops it).
    struct Case: Decodable {
        var kind: String?
        var text: String?
        var add_bos: Bool?
        var special: Bool?
        var ids: [Int32]?
        var remove_special: Bool?
        var unparse_special: Bool?
        var hex: String?
        var name: String?
        var prompt: String?
        var greedy_ids: [Int32]?
        var greedy_text: String?
    }

    static func jsonLines(_ rel: String) throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel))
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Case.self, from: Data($0)) }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Int32 data of a little-endian numpy v1/v2 file.
    static func npyInt32(_ rel: String) throws -> [Int32] {
        let d = try [UInt8](Data(contentsOf: URL(fileURLWithPath: root + "/" + rel)))
        let major = d[6]
        let headerLen = major == 1 ? Int(d[8]) | Int(d[9]) << 8 : Int(d[8]) | Int(d[9]) << 8 | Int(d[10]) << 16 | Int(d[11]) << 24
        let start = (major == 1 ? 10 : 12) + headerLen
        return stride(from: start, to: d.count, by: 4).map {
            Int32(bitPattern: UInt32(d[$0]) | UInt32(d[$0 + 1]) << 8 | UInt32(d[$0 + 2]) << 16 | UInt32(d[$0 + 3]) << 24)
        }
    }
}

@Suite struct TokenizerTests {
    /// Runs every golden case of one vocabulary; returns (passed, total) per kind.
    private func runCases(_ tok: Tokenizer, _ file: String) throws {
        var tokPass = 0, tokTotal = 0, detPass = 0, detTotal = 0
        var failures: [String] = []
        for c in try TokenizerFixtures.jsonLines(file) {
            switch c.kind {
            case "tokenize":
                let text = try #require(c.text)
                let addBOS = try #require(c.add_bos), special = try #require(c.special)
                let want = try #require(c.ids)
                let got = tok.tokenize(text, addSpecial: addBOS, parseSpecial: special)
                tokTotal += 1
                if got == want { tokPass += 1 } else {
                    failures.append("tokenize \(text.debugDescription) bos=\(addBOS) special=\(special): got \(got) want \(want)")
                }
            case "detokenize":
                let ids = try #require(c.ids)
                let rs = try #require(c.remove_special), us = try #require(c.unparse_special)
                let want = try #require(c.hex)
                let got = TokenizerFixtures.hex(tok.detokenize(ids, removeSpecial: rs, unparseSpecial: us))
                detTotal += 1
                if got == want { detPass += 1 } else {
                    failures.append("detokenize \(ids) rs=\(rs) us=\(us): got \(got) want \(want)")
                }
            default:
                Issue.record("unknown case kind in \(file)")
            }
        }
        for f in failures.prefix(15) { Issue.record(Comment(rawValue: f)) }
        #expect(tokPass == tokTotal, "\(file): tokenize \(tokPass)/\(tokTotal)")
        #expect(detPass == detTotal, "\(file): detokenize \(detPass)/\(detTotal)")
        #expect(tokTotal > 0 && detTotal > 0)
    }

    @Test func smollm2GoldenCases() throws {
        let tok = try #require(TokenizerFixtures.smollm2, "cannot load \(TokenizerFixtures.root)/tokenizer/smollm2.vocab.gguf")
        #expect(tok.vocabSize == 49152)
        #expect(tok.bos == 1 && tok.eos == 2 && !tok.addBOS && !tok.addEOS)
        #expect(tok.chatTemplate?.contains("<|im_start|>") == true)
        #expect(tok.isEndOfGeneration(2) && tok.isEndOfGeneration(0) && !tok.isEndOfGeneration(1))
        try runCases(tok, "tokenizer/smollm2.cases.jsonl")
    }

    @Test func gemma3GoldenCases() throws {
        let tok = try #require(TokenizerFixtures.gemma3, "cannot load \(TokenizerFixtures.root)/tokenizer/gemma3.vocab.gguf")
        #expect(tok.vocabSize == 262144)
        #expect(tok.bos == 2 && tok.eos == 1 && tok.addBOS && !tok.addEOS)
        #expect(tok.isEndOfGeneration(1) && tok.isEndOfGeneration(106) && !tok.isEndOfGeneration(2))
        try runCases(tok, "tokenizer/gemma3.cases.jsonl")
    }

    /// The prompts and greedy outputs of the real SmolLM2 run (fixtures §4).
    @Test func smollm2PromptCases() throws {
        let tok = try #require(TokenizerFixtures.smollm2)
        for c in try TokenizerFixtures.jsonLines("smollm2/cases.jsonl") {
            let prompt = try #require(c.prompt)
            let special = try #require(c.special), addBOS = try #require(c.add_bos)
            #expect(tok.tokenize(prompt, addSpecial: addBOS, parseSpecial: special) == c.ids, "\(c.name ?? "?")")
            let greedy = try #require(c.greedy_ids)
            let text = try #require(c.greedy_text)
            #expect(tok.detokenize(greedy, removeSpecial: false, unparseSpecial: true) == Array(text.utf8), "\(c.name ?? "?")")
        }
    }

    /// The whole evaluation text: the first 16384 ids must equal llama.cpp's perplexity tokens.
    /// (The time is printed, not asserted: speed is a benchmark's business, not a unit test's.)
    @Test func smollm2EvalText() throws {
        let tok = try #require(TokenizerFixtures.smollm2)
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: TokenizerFixtures.root + "/text/eval.txt")))
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure { ids = tok.tokenize(text, addSpecial: true, parseSpecial: false) }
        let reference = try TokenizerFixtures.npyInt32("smollm2/ppl_tokens.npy")
        #expect(reference.count == 16384)
        #expect(Array(ids.prefix(reference.count)) == reference)
        print("eval.txt: \(text.count) bytes -> \(ids.count) tokens in \(elapsed)")
    }

    @Test func degenerateInputs() throws {
        for tok in [TokenizerFixtures.smollm2, TokenizerFixtures.gemma3] {
            let tok = try #require(tok)
            // empty text: nothing, or only BOS when the vocabulary adds it
            #expect(tok.tokenize([], addSpecial: false, parseSpecial: false).isEmpty)
            #expect(tok.tokenize([], addSpecial: true, parseSpecial: true) == (tok.addBOS ? [tok.bos!] : []))
            // invalid UTF-8 (stray continuation, truncated sequences, 0xFF, overlong) must not trap
            let invalid: [UInt8] = [0x80, 0x41, 0xC3, 0xE2, 0x82, 0xFF, 0xF0, 0x9F, 0x98, 0x20, 0xC0, 0xAF, 0xF7, 0xBF, 0xBF, 0xBF]
            for special in [false, true] {
                let ids = tok.tokenize(invalid, addSpecial: special, parseSpecial: special)
                #expect(!ids.isEmpty && ids.allSatisfy(tok.isValid))
                _ = tok.detokenize(ids, removeSpecial: special, unparseSpecial: special)
            }
            // out-of-range ids
            for id: Int32 in [-1, Int32(tok.vocabSize), .max, .min] {
                #expect(!tok.isValid(id))
                #expect(tok.piece(id, special: true).isEmpty)
                #expect(tok.piece(id, special: false).isEmpty)
            }
            #expect(tok.detokenize([-5, Int32(tok.vocabSize)], removeSpecial: true, unparseSpecial: true).isEmpty)
            #expect(tok.detokenize([], removeSpecial: false, unparseSpecial: false).isEmpty)
        }
    }

    @Test func piecesOfSpecialTokens() throws {
        let smol = try #require(TokenizerFixtures.smollm2)
        #expect(smol.piece(1, special: true) == Array("<|im_start|>".utf8))
        #expect(smol.piece(1, special: false).isEmpty)
        let gemma = try #require(TokenizerFixtures.gemma3)
        #expect(gemma.piece(2, special: true) == Array("<bos>".utf8))
        #expect(gemma.piece(2, special: false).isEmpty)
    }

    @Test func unsupportedModelIsRejected() throws {
        var w = GGUFWriter()
        w.set("tokenizer.ggml.model", .string("t5"))
        w.set("tokenizer.ggml.tokens", .array([.string("a"), .string("b")]))
        let bytes = w.serialize()
        let g = try bytes.withUnsafeBytes { try GGUFFile(storage: MappedFile(copying: $0)) }
        #expect(throws: AdaKError.self) { _ = try Tokenizer(gguf: g) }
    }
}

@Suite struct TokenizerPreTokenizerTests {
    private func words(_ pre: String, _ text: String) throws -> [String] {
        let (p, _, _, _) = try #require(PreTokenizer.forPre(pre))
        let cps = text.unicodeScalars.map(\.value)
        var out: [String] = [], start = 0
        for len in p.split(cps, cps.map(CodepointFlags.of)) {
            out.append(String(String.UnicodeScalarView(cps[start..<(start + len)].compactMap(Unicode.Scalar.init))))
            start += len
        }
        return out
    }

    private let sample = "Hello world's 1234567 don't\n\n  x  "

    @Test func llama3Split() throws {
        #expect(try words("llama-bpe", sample) ==
                ["Hello", " world", "'s", " ", "123", "456", "7", " don", "'t", "\n\n", " ", " x", "  "])
        #expect(try words("llama-bpe", "IT'S ok!?\r\n") == ["IT", "'S", " ok", "!?\r\n"])
    }

    @Test func qwen2Split() throws {
        #expect(try words("qwen2", sample) ==
                ["Hello", " world", "'s", " ", "1", "2", "3", "4", "5", "6", "7", " don", "'t", "\n\n", " ", " x", "  "])
    }

    @Test func gpt2Split() throws {
        #expect(try words("olmo", sample) == ["Hello", " world", "'s", " 1234567", " don", "'t", "\n\n ", " x", "  "])
    }

    @Test func smollmSplit() throws {
        #expect(try words("smollm", sample) ==
                ["Hello", " world", "'s", " ", "1", "2", "3", "4", "5", "6", "7", " don", "'t", "\n\n ", " x", "  "])
    }

    @Test func defaultSplit() throws {
        #expect(try words("default", sample) ==
                ["Hello", " world", "'", "s", " ", "123", "456", "7", " don", "'", "t", "\n\n ", " x", "  "])
    }

    @Test func unknownPreIsRejected() {
        #expect(PreTokenizer.forPre("no-such-pre") == nil)
    }

    /// The tiny test models: a 256-token byte vocabulary (id == byte) with pre = "default".
    @Test func tinyByteVocabulary() throws {
        let g = try GGUFFile(path: TokenizerFixtures.root + "/models/tiny-olmoe.f32.gguf")
        let tok = try Tokenizer(gguf: g)
        let text = "Ada-K routing: every token picks 1..4 experts. Grüße, 世界 ✓ 0123456789"
        let ids = tok.tokenize(text, addSpecial: true, parseSpecial: false)
        let reference = try TokenizerFixtures.npyInt32("reference/tiny-olmoe.input_ids.npy")
        #expect(reference.first == tok.bos)
        #expect(Array(ids.prefix(63)) == Array(reference.dropFirst()))
        #expect(tok.detokenize(ids, removeSpecial: false, unparseSpecial: false) == Array(text.utf8))
    }
}
