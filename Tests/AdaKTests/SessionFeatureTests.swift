import Foundation
import Testing
@testable import AdaK

/// Stop reasons, stop strings, logit bias, the logits hook, state save/load, rewind and copy,
/// on the demo SmolLM2 model.
@Suite(.serialized) struct SessionFeatureTests {
    static func session(_ m: Model, ctx: Int = 256, sampling: SamplingParams = .greedy) throws -> Session {
        var p = SessionParams()
        p.contextSize = ctx
        p.threads = 2
        p.sampling = sampling
        return try Session(model: m, params: p)
    }

    /// A one-question chat. With `system` nil the template's default system prompt is used
    /// (with it this 135M Q4_1 model answers the France question with a list of French words, as
    /// llama.cpp's greedy decoding of the same tokens does; with a plain system prompt it says Paris).
    static func chatPrompt(_ m: Model, _ q: String, system: String? = nil) throws -> [Int32] {
        let msgs = (system.map { [ChatMessage(role: "system", content: $0)] } ?? []) + [ChatMessage(role: "user", content: q)]
        return m.tokenizeChat(try m.applyChatTemplate(msgs))
    }

    static func lastLogits(_ s: Session) -> [Float] {
        let v = s.model.config.nVocab
        return s.withLogits { Array($0[($0.count - v)...]) }
    }

    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    /// Generates and returns (tokens, streamed text).
    static func run(_ s: Session, _ prompt: [Int32], _ n: Int, stopAfter: Int = .max) throws -> ([Int32], [UInt8]) {
        var text: [UInt8] = []
        var count = 0
        let toks = try s.generate(prompt: prompt, maxTokens: n) { _, piece in
            text += piece
            count += 1
            return count < stopAfter
        }
        return (toks, text)
    }

    @Test func everyGenerateSaysWhyItStopped() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompt = try Self.chatPrompt(m, "What is the capital of France?", system: "You are a helpful assistant.")
        let s = try Self.session(m)
        let (answer, text) = try Self.run(s, prompt, 64)
        #expect(s.stopReason == .endOfGeneration)
        #expect(String(decoding: text, as: UTF8.self).contains("Paris"))
        #expect(answer.count < 64)

        s.reset()
        let (five, _) = try Self.run(s, prompt, 5)
        #expect(five.count == 5 && s.stopReason == .maxTokens)

        s.reset()
        let (three, _) = try Self.run(s, prompt, 20, stopAfter: 3)
        #expect(three.count == 3 && s.stopReason == .callback)

        let story = try Self.chatPrompt(m, "Tell me a long story about a dragon.")
        let small2 = try Self.session(m, ctx: story.count + 10)
        let (full, _) = try Self.run(small2, story, 300)
        #expect(small2.stopReason == .contextFull)
        #expect(full.count == 11, "the context takes 10 more tokens, plus the last one handed out unevaluated")
    }

    @Test func stopStringsMatchAcrossTokens() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompt = try Self.chatPrompt(m, "Tell me a long story about a dragon.")
        let s = try Self.session(m)
        let (toks, text) = try Self.run(s, prompt, 40)
        #expect(toks.count == 40)
        // a stop string from the middle of token 10 to the middle of token 12
        let pieces = toks.map { m.tokenizer.piece($0, special: false) }
        let start = pieces[..<10].reduce(0) { $0 + $1.count } + pieces[10].count / 2
        let end = pieces[..<12].reduce(0) { $0 + $1.count } + max(pieces[12].count / 2, 1)
        let stop = Array(text[start..<end])
        let firstAt = StopMatcher.firstMatch(in: text, stops: [stop])!
        s.reset()
        s.stopStrings = [Array("never appears\u{1}".utf8), stop]
        var streamed: [UInt8] = []
        let got = try s.generate(prompt: prompt, maxTokens: 40) { _, piece in streamed += piece; return true }
        #expect(s.stopReason == .stopString)
        #expect(streamed == Array(text[..<firstAt]), "the text before the stop string, nothing of it")
        #expect(got == Array(toks[..<got.count]) && got.count <= 13)

        // held-back text comes out when the generation ends otherwise
        s.reset()
        s.stopStrings = [Array((String(decoding: text, as: UTF8.self) + "#").utf8)]
        var all: [UInt8] = []
        _ = try s.generate(prompt: prompt, maxTokens: 40) { _, p in all += p; return true }
        #expect(s.stopReason == .maxTokens && all == text)
    }

    @Test func stopMatcherHoldsOnlyPossibleStarts() {
        let stops = [Array("END".utf8), Array("<|x|>".utf8)]
        #expect(StopMatcher.heldSuffix(Array("abcE".utf8), stops: stops) == 1)
        #expect(StopMatcher.heldSuffix(Array("abcEN".utf8), stops: stops) == 2)
        #expect(StopMatcher.heldSuffix(Array("abc<|".utf8), stops: stops) == 2)
        #expect(StopMatcher.heldSuffix(Array("abcN".utf8), stops: stops) == 0)
        #expect(StopMatcher.firstMatch(in: Array("a<|x|>bEND".utf8), stops: stops) == 1)
    }

    @Test func logitBiasSteersAndBans() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompt = try Self.chatPrompt(m, "What is the capital of France?")
        let s = try Self.session(m)
        let first = try Self.run(s, prompt, 1).0[0]
        s.reset()
        try s.setLogitBias([first: -.infinity])
        let banned = try Self.run(s, prompt, 1).0[0]
        #expect(banned != first)
        s.reset()
        let forced = m.tokenizer.tokenize("zebra", addSpecial: false, parseSpecial: false)[0]
        try s.setLogitBias([forced: 100])
        #expect(try Self.run(s, prompt, 1).0[0] == forced)
        #expect(throws: AdaKError.self) { try s.setLogitBias([Int32(m.config.nVocab): 1]) }
        #expect(throws: AdaKError.self) { try s.setLogitBias([1: .nan]) }
        // the session's own logits are untouched by the bias
        s.reset()
        try s.evaluate(prompt)
        let raw = Self.lastLogits(s)
        _ = s.sample()
        #expect(Self.sameBits(raw, Self.lastLogits(s)))
    }

    @Test func logitsHookConstrainsSampling() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompt = try Self.chatPrompt(m, "Write a poem.")
        let digits = Set((0...9).map { m.tokenizer.tokenize("\($0)", addSpecial: false, parseSpecial: false)[0] })
        var sampling = SamplingParams()
        sampling.seed = 7
        let s = try Self.session(m, sampling: sampling)
        var calls = 0
        s.logitsHook = { row in
            calls += 1
            for i in row.indices where !digits.contains(Int32(i)) { row[i] = -.infinity }
        }
        let (toks, _) = try Self.run(s, prompt, 12)
        #expect(toks.count == 12 && toks.allSatisfy { digits.contains($0) })
        #expect(calls == 12)
        s.reset()
        s.logitsHook = { row in for i in row.indices { row[i] = -.infinity } }
        #expect(throws: AdaKError.self) { _ = try Self.run(s, prompt, 3) }
    }

    @Test func saveFreeLoadContinueIsBitIdentical() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prompt = try Self.chatPrompt(m, "Tell me a long story about a dragon.")
        var sampling = SamplingParams()   // temperature 0.8: the random stream must carry over too
        sampling.seed = 42
        sampling.repeatPenalty = 1.1
        let a = try Self.session(m, sampling: sampling)
        let (a1, _) = try Self.run(a, prompt, 8)
        let (a2, _) = try Self.run(a, [], 12)
        let aLogits = Self.lastLogits(a)

        var b: Session? = try Self.session(m, sampling: sampling)
        let (b1, _) = try Self.run(b!, prompt, 8)
        let saved = b!.saveState()
        let path = NSTemporaryDirectory() + "adak-state-\(getpid()).bin"
        try b!.saveState(toFile: path)
        b = nil   // freed
        let c = try Self.session(m, ctx: 512, sampling: sampling)
        try c.loadState(fromFile: path)
        #expect(c.position == prompt.count + 7 && c.tokens == prompt + b1.dropLast())
        let (c2, _) = try Self.run(c, [], 12)
        #expect(b1 == a1 && c2 == a2)
        #expect(Self.sameBits(aLogits, Self.lastLogits(c)))
        print("state: \(saved.count) bytes for \(prompt.count + 7) tokens; continued 12 tokens identical")

        // damaged, truncated, foreign or mismatched states are refused and leave the session as it was
        let d = try Self.session(m, sampling: sampling)
        var bad = saved
        bad[bad.count / 2] ^= 1
        #expect(throws: AdaKError.self) { try d.loadState(bad) }
        #expect(throws: AdaKError.self) { try d.loadState(Array(saved.prefix(saved.count - 100))) }
        #expect(throws: AdaKError.self) { try d.loadState([UInt8](repeating: 0, count: 64)) }
        let tiny = try Session(model: Model(path: Fixtures.path("models/tiny-mixtral.f32.gguf")))
        #expect(throws: AdaKError.self) { try tiny.loadState(saved) }
        var p16 = SessionParams()
        p16.kvType = .f16
        #expect(throws: AdaKError.self) { try Session(model: m, params: p16).loadState(saved) }
        #expect(throws: AdaKError.self) { try Self.session(m, ctx: 16).loadState(saved) }
        #expect(throws: AdaKError.self) { try d.loadState(fromFile: path + ".missing") }
        #expect(d.position == 0)
        unlink(path)
    }

    @Test func rewindEqualsAFreshSession() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let p1 = try Self.chatPrompt(m, "What is the capital of France?")
        let p2 = m.tokenizer.tokenize("The capital of France is Paris.", addSpecial: false, parseSpecial: false)
        let p3 = m.tokenizer.tokenize("I do not know.", addSpecial: false, parseSpecial: false)
        let a = try Self.session(m)
        try a.evaluate(p1)
        try a.evaluate(p2)
        _ = try Self.run(a, [], 5)
        try a.truncate(to: p1.count)
        #expect(a.position == p1.count && a.tokens == p1 && a.logitRows == 0)
        try a.evaluate(p3, allLogits: true)
        let fresh = try Self.session(m)
        try fresh.evaluate(p1)
        try fresh.evaluate(p3, allLogits: true)
        let la = a.withLogits { Array($0) }, lf = fresh.withLogits { Array($0) }
        #expect(Self.sameBits(la, lf))
        #expect(throws: AdaKError.self) { try a.truncate(to: a.position + 1) }
        #expect(throws: AdaKError.self) { try a.truncate(to: -1) }
        try a.truncate(to: 0)
        #expect(a.position == 0 && a.tokens.isEmpty)
    }

    @Test func copiedSessionDivergesIndependently() throws {
        guard let m = try SmolLM2Tests.model() else { return }
        let prefix = try Self.chatPrompt(m, "Name a colour.")
        let x = m.tokenizer.tokenize("Blue", addSpecial: false, parseSpecial: false)
        let y = m.tokenizer.tokenize("Green is", addSpecial: false, parseSpecial: false)
        let a = try Self.session(m)
        try a.evaluate(prefix)
        let b = try a.copy()
        #expect(Self.sameBits(Self.lastLogits(a), Self.lastLogits(b)) && b.tokens == a.tokens)
        try a.evaluate(x)
        try b.evaluate(y)
        for (s, suffix) in [(a, x), (b, y)] {
            let f = try Self.session(m)
            try f.evaluate(prefix)
            try f.evaluate(suffix)
            #expect(Self.sameBits(Self.lastLogits(s), Self.lastLogits(f)))
            #expect(s.tokens == prefix + suffix)
        }
    }
}
