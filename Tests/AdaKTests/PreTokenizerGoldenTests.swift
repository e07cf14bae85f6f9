import Foundation
import Testing
@testable import AdaK

/// The pre-tokenizers of gpt-oss (o200k, `gpt-4o`), DeepSeek V3 (`deepseek-v3`) on their real
/// vocabularies, and of DeepSeek-V2 (`deepseek-llm`), GLM-4 (`glm4`) and Granite MoE (`refact`) on
/// SmolLM2's vocabulary, against llama.cpp's tokenizations (fixtures README, tokenizer/pre-*;
/// Tests/Fixtures/tools/make_pretokenizer_goldens.py).
@Suite struct PreTokenizerGoldenTests {
    private func check(_ name: String, pre: String, vocabSize: Int) throws {
        let tok = try #require(TokenizerFixtures.load("tokenizer/\(name).vocab.gguf"), "cannot load tokenizer/\(name).vocab.gguf")
        #expect(tok.vocabSize == vocabSize)
        var pass = 0, total = 0
        var texts = Set<String>()
        var failures: [String] = []
        for c in try TokenizerFixtures.jsonLines("tokenizer/\(name).cases.jsonl") {
            let text = try #require(c.text), special = try #require(c.special), want = try #require(c.ids)
            let got = tok.tokenize(text, addSpecial: try #require(c.add_bos), parseSpecial: special)
            total += 1
            texts.insert(text)
            if got == want { pass += 1 } else {
                failures.append("\(pre) \(text.debugDescription) special=\(special): got \(got) want \(want)")
            }
        }
        for f in failures.prefix(10) { Issue.record(Comment(rawValue: f)) }
        #expect(pass == total, "\(name): \(pass)/\(total) tokenizations equal llama.cpp's")
        #expect(texts.count >= 300, "\(name): \(texts.count) strings")
    }

    @Test func gptOssO200k() throws { try check("pre-gpt-4o.o200k", pre: "gpt-4o", vocabSize: 200_019) }
    @Test func deepseekV3() throws { try check("pre-deepseek-v3.deepseek", pre: "deepseek-v3", vocabSize: 129_280) }
    @Test func deepseekV2() throws { try check("pre-deepseek-llm.smollm2", pre: "deepseek-llm", vocabSize: 49_156) }
    @Test func glm4() throws { try check("pre-glm4.smollm2", pre: "glm4", vocabSize: 49_158) }
    @Test func graniteMoE() throws { try check("pre-refact.smollm2", pre: "refact", vocabSize: 49_156) }

    /// GLM-4's vocabulary has no BOS unless the file names one (llama.cpp clears the default id 11).
    @Test func glm4HasNoDefaultBOS() throws {
        let tok = try #require(TokenizerFixtures.load("tokenizer/pre-glm4.smollm2.vocab.gguf"))
        #expect(tok.bos == nil)
    }
}
