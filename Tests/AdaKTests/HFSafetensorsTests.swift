import Foundation
import Testing
@testable import AdaK

/// The strict JSON reader and the safetensors header checks: malformed input is an AdaKError, never a crash.
@Suite struct HFSafetensorsTests {
    /// A safetensors image: 8-byte length, header text, `dataBytes` zero bytes (or an explicit length field).
    static func image(header: String, dataBytes: Int, lengthField: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (lengthField ?? UInt64(header.utf8.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header.utf8)
        out.append(contentsOf: [UInt8](repeating: 0, count: dataBytes))
        return out
    }

    static func open(_ bytes: [UInt8]) throws -> SafetensorsFile {
        let storage = try bytes.withUnsafeBytes { try MappedFile(copying: $0) }
        return try SafetensorsFile(storage: storage, origin: "test.safetensors")
    }

    /// The error's message, asserting it is the expected case.
    static func failure(_ bytes: [UInt8]) -> AdaKError? {
        do { _ = try open(bytes); return nil } catch let e as AdaKError { return e } catch { return nil }
    }

    static func expectFormat(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e = failure(bytes) else {
            Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
            return
        }
        guard case .format(let m) = e else {
            Issue.record("expected .format, got \(e)", sourceLocation: sourceLocation)
            return
        }
        #expect(m.contains(fragment), "message: \(m)", sourceLocation: sourceLocation)
    }

    @Test func validFileParses() throws {
        let h = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}}"#
        var bytes = Self.image(header: h, dataBytes: 0)
        for v: Float in [1, 2, 3, 4, 5, 6] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        for v: UInt16 in [0x3F80, 0xC000, 0x0000, 0x4040] { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        let f = try Self.open(bytes)
        #expect(f.metadata == ["format": "pt"])
        #expect(f.tensors.map(\.name) == ["a", "b"])
        #expect(try f.floats(f.tensor("a")!) == [1, 2, 3, 4, 5, 6])
        #expect(try f.floats(f.tensor("b")!) == [1, -2, 0, 3])
    }

    @Test func malformedHeadersAreClearErrors() {
        let t = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        Self.expectFormat(Self.image(header: "{" + t + ",}", dataBytes: 8), "invalid JSON")
        Self.expectFormat(Self.image(header: "{" + t, dataBytes: 8), "invalid JSON")
        Self.expectFormat(Self.image(header: "[1,2]", dataBytes: 0), "does not start with '{'")
        Self.expectFormat(Self.image(header: "{" + t + "}", dataBytes: 8, lengthField: 1 << 20), "past the end of the file")
        Self.expectFormat(Self.image(header: "{" + t + "}", dataBytes: 8, lengthField: UInt64.max), "exceeds the limit")
        Self.expectFormat([1, 2, 3], "too short")
        // offsets outside the data
        Self.expectFormat(Self.image(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4), "run past the data")
        Self.expectFormat(Self.image(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, dataBytes: 8), "reversed")
        Self.expectFormat(Self.image(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, dataBytes: 8), "reversed or negative")
        // dtype × shape vs byte count
        Self.expectFormat(Self.image(header: #"{"t":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8), "needs 4 bytes")
        Self.expectFormat(Self.image(header: #"{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, dataBytes: 8), "overflows")
        // overlap, hole, trailing bytes
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12), "overlap")
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), "belong to no tensor")
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 8), "end of the data")
        // structure
        Self.expectFormat(Self.image(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4), "missing dtype")
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, dataBytes: 4), "bad dimension")
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, dataBytes: 4), "two integers")
        Self.expectFormat(Self.image(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), "duplicate key")
        // unknown dtype: well-formed but unsupported
        if case .unsupported(let m)? = Self.failure(Self.image(header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, dataBytes: 1)) {
            #expect(m.contains("unknown dtype"))
        } else {
            Issue.record("expected .unsupported for an unknown dtype")
        }
    }

    @Test func nonFloatTensorsAreUnsupportedAsWeights() throws {
        let f = try Self.open(Self.image(header: #"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4))
        #expect(throws: AdaKError.self) { _ = try f.floats(f.tensor("a")!) }
    }

    @Test func jsonIsStrict() throws {
        #expect(try JSON.parse(#"{"a":[1,-2.5e1,true,null,"x\u00e9\ud83d\ude00\n"],"b":{}}"#) ==
                .object({ var o = JSONObject(); _ = o.insert("a", .array([.integer(1), .number(-25), .bool(true), .null, .string("xé😀\n")])); _ = o.insert("b", .object(JSONObject())); return o }()))
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "NaN", "\"\\x\"", "\"\u{01}\"", "\"\\ud800\"",
                    "[1] 2", "{\"a\" 1}", "tru", "1e999", "{\"a\":1,\"a\":2}", "'a'"] {
            #expect(throws: AdaKError.self, "\(bad)") { _ = try JSON.parse(bad) }
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: AdaKError.self) { _ = try JSON.parse(deep) }
        // invalid UTF-8 inside a string
        let raw: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
        #expect(throws: AdaKError.self) { _ = try raw.withUnsafeBytes { try JSON.parse($0) } }
        #expect(try JSON.parse("123456789012345678") == .integer(123456789012345678))
    }

    @Test func unsupportedTokenizerIsClearError() throws {
        // SentencePiece-style BPE (byte_fallback) is not byte-level BPE.
        let tj = #"{"model":{"type":"BPE","byte_fallback":true,"vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Metaspace"}}"#
        let err: AdaKError? = {
            do {
                _ = try HFTokenizerJSON.preType(try JSON.parse(tj)["pre_tokenizer"], hasMerges: false) { AdaKError.unsupported($0) }
                return nil
            } catch let e as AdaKError { return e } catch { return nil }
        }()
        #expect(err == .unsupported("pre-tokenizer 'Metaspace' is not supported"))
        #expect(HFTokenizerJSON.byteLevelDecoded("ā") == "\u{01}")
        #expect(HFTokenizerJSON.byteLevelDecoded("<|im_end|>") == "<|im_end|>")
        #expect(HFTokenizerJSON.byteLevelDecoded("a b") == "a b")
    }

    @Test func sizeLabelAndNameFollowGGUFPy() {
        #expect(HFCheckpoint.roundedCount(107_840) == "108K")
        #expect(HFCheckpoint.roundedCount(7_240_000_000) == "7.2B")
        #expect(HFCheckpoint.roundedCount(135_000_000) == "135M")
        #expect(HFCheckpoint.roundedCount(500) == "0.50K")
        #expect(HFCheckpoint.titleCase("qwen2moe") == "Qwen2Moe")
        #expect(HFCheckpoint.titleCase("tiny-mixtral") == "Tiny Mixtral")
    }
}

/// tokenizer.json → GGUF keys → our Tokenizer, with merges in both forms and an added token.
@Suite struct HFTokenizerJSONTests {
    @Test func mergesPreTokenizerAndAddedTokens() throws {
        let dir = try HFCheckpointTests.tempDir("tok")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(Character(Unicode.Scalar(GPT2Bytes.byteToCodepoint[b])!))] = b }
        vocab["he"] = 256
        vocab["hel"] = 257
        vocab["Ġw"] = 258
        let tj: [String: Any] = [
            "added_tokens": [["id": 259, "content": "<|im_end|>", "special": true, "normalized": false],
                             ["id": 260, "content": "<tool>", "special": false, "normalized": false]],
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": HFTokenizerJSON.qwen2Regex], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": [["h", "e"], "he l", ["Ġ", "w"]], "ignore_merges": false],
        ]
        try JSONSerialization.data(withJSONObject: tj).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        try JSONSerialization.data(withJSONObject: ["eos_token": "<|im_end|>", "add_bos_token": false])
            .write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        var w = GGUFWriter()
        w.set("general.architecture", .string("qwen2"))
        try HFTokenizerJSON.addKeys(to: &w, directory: dir, config: .object(JSONObject()), vocabSize: 264)
        let g = try w.serialize().withUnsafeBytes { try GGUFFile(storage: MappedFile(copying: $0)) }
        #expect(g.string("tokenizer.ggml.pre") == "qwen2")
        #expect(g.stringArray("tokenizer.ggml.merges") == ["h e", "he l", "Ġ w"])
        #expect(g.stringArray("tokenizer.ggml.tokens")?.suffix(5) == ["<|im_end|>", "<tool>", "[PAD261]", "[PAD262]", "[PAD263]"])
        #expect(g.intArray("tokenizer.ggml.token_type")?.suffix(5) == [3, 4, 5, 5, 5])
        #expect(g.int("tokenizer.ggml.eos_token_id") == 259)
        let tok = try Tokenizer(gguf: g)
        #expect(tok.tokenize("hello world", addSpecial: false, parseSpecial: false) == [257, 108, 111, 258, 111, 114, 108, 100])
        #expect(tok.tokenize("hi<|im_end|>", addSpecial: false, parseSpecial: true) == [104, 105, 259])
        #expect(tok.tokenize("<tool>", addSpecial: false, parseSpecial: false) == [260])
    }
}
