#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`, `config.json`) into the GGUF
/// `tokenizer.ggml.*` keys llama.cpp's converter writes, so the tokenizer is then built by
/// `Tokenizer(gguf:)` exactly as for a GGUF file.
///
/// Supported: byte-level BPE (`model.type = "BPE"` with a `ByteLevel` pre-tokenizer), with the
/// GPT-2 regex (`ByteLevel` with `use_regex`), or a `Split` by the Qwen2 or Llama 3 regex followed
/// by `ByteLevel`, or no regex at all when there are no merges (then splitting cannot change the
/// result); normalizer null or NFC (llama.cpp does not normalise either). Anything else —
/// SentencePiece-style BPE (`byte_fallback`, `Metaspace`), Unigram, WordPiece — is `.unsupported`.
enum HFTokenizerJSON {
    /// llama.cpp token types.
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5 }

    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Adds the tokenizer keys for the folder `dir` to `w`. `vocabSize` is config.json's
    /// `vocab_size` (the embedding rows), or nil to use the tokenizer's own size.
    static func addKeys(to w: inout GGUFWriter, directory dir: String, config: JSONValue, vocabSize: Int?) throws {
        let path = dir + "/tokenizer.json"
        guard access(path, F_OK) == 0 else {
            throw AdaKError.io("\(dir): tokenizer.json not found (only tokenizer.json tokenizers are supported)")
        }
        let tj = try JSON.parse(file: path)
        func unsupported(_ what: String) -> AdaKError { AdaKError.unsupported("\(path): \(what)") }
        func bad(_ what: String) -> AdaKError { AdaKError.format("\(path): \(what)") }

        guard let model = tj["model"]?.objectValue else { throw bad("missing \"model\"") }
        let modelType = model["type"]?.stringValue ?? "BPE"
        guard modelType == "BPE" else { throw unsupported("tokenizer model '\(modelType)' is not supported (byte-level BPE is)") }
        if model["byte_fallback"]?.boolValue == true {
            throw unsupported("SentencePiece-style BPE (byte_fallback) is not supported; byte-level BPE is")
        }
        if let n = tj["normalizer"], !n.isNull {
            guard n["type"]?.stringValue == "NFC" else {
                throw unsupported("normalizer '\(n["type"]?.stringValue ?? n.kind)' is not supported")
            }
        }

        // Merges: "a b" strings or [a, b] pairs.
        var merges: [String] = []
        if let ms = model["merges"]?.arrayValue {
            merges.reserveCapacity(ms.count)
            for m in ms {
                if let s = m.stringValue {
                    merges.append(s)
                } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                    guard !a.utf8.contains(0x20), !b.utf8.contains(0x20) else {
                        throw unsupported("merge [\"\(a)\", \"\(b)\"] contains a space and cannot be written as \"a b\"")
                    }
                    merges.append(a + " " + b)
                } else {
                    throw bad("merges must be strings or pairs of strings")
                }
            }
        }

        // Pre-tokenizer → llama.cpp `tokenizer.ggml.pre`.
        let pre = try preType(tj["pre_tokenizer"], hasMerges: !merges.isEmpty, unsupported: unsupported)
        let ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        guard ignoreMerges == (pre == "llama-bpe") else {
            throw unsupported("ignore_merges = \(ignoreMerges) does not match pre-tokenizer '\(pre)'")
        }

        // Vocabulary and added tokens.
        guard let vocabObj = model["vocab"]?.objectValue else { throw bad("missing model.vocab") }
        var byId: [Int: String] = [:]
        var idOf: [String: Int] = [:]
        for (tok, v) in vocabObj.entries {
            guard let id = v.intValue, id >= 0, id < Int(Int32.max) else { throw bad("vocab id of '\(tok)' is not a valid id") }
            guard byId[id] == nil else { throw bad("two tokens share id \(id)") }
            byId[id] = tok
            idOf[tok] = id
        }
        struct Added { var content: String; var special: Bool; var normalized: Bool }
        var added: [Int: Added] = [:]
        for a in tj["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, id >= 0, id < Int(Int32.max), let content = a["content"]?.stringValue else {
                throw bad("added token without id or content")
            }
            let special = a["special"]?.boolValue ?? false
            added[id] = Added(content: content, special: special, normalized: a["normalized"]?.boolValue ?? !special)
            if let old = byId[id], old != content { idOf[old] = nil }
            byId[id] = content
            idOf[content] = id
        }
        let maxId = byId.keys.max() ?? -1
        let n = vocabSize ?? (maxId + 1)
        guard n > maxId else { throw AdaKError.format("\(dir): tokenizer has id \(maxId) but vocab_size is \(n)") }
        guard n > 0 else { throw bad("empty vocabulary") }

        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(n)
        types.reserveCapacity(n)
        for id in 0..<n {
            guard var tok = byId[id] else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(TokenType.unused.rawValue))
                continue
            }
            var type = TokenType.normal
            if let a = added[id] {
                // llama.cpp expects control and user-defined tokens pre-normalised: a token that is
                // not normalised is passed through the byte-level decoder, as the converter does.
                if !a.normalized { tok = byteLevelDecoded(tok) }
                if a.special || looksSpecial(tok) {
                    type = .control
                } else {
                    tok = tok.replacingAll("\u{2581}", with: " ")
                    type = .userDefined
                }
            }
            tokens.append(.string(tok))
            types.append(.int32(type.rawValue))
        }

        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string(pre))
        w.set("tokenizer.ggml.tokens", .array(tokens))
        w.set("tokenizer.ggml.token_type", .array(types))

        // Special tokens: tokenizer_config.json names them, config.json gives ids as a fallback.
        let tcPath = dir + "/tokenizer_config.json"
        let tc: JSONValue = access(tcPath, F_OK) == 0 ? try JSON.parse(file: tcPath) : .object(JSONObject())
        let kinds = [("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("sep", "seperator"),
                     ("pad", "padding"), ("cls", "cls"), ("mask", "mask")]
        for (hf, gguf) in kinds {
            var id: Int? = nil
            if let t = tc["\(hf)_token"] {
                let content = t.stringValue ?? t["content"]?.stringValue
                if let c = content, let i = idOf[c] { id = i }
            }
            if id == nil, let v = config["\(hf)_token_id"] {
                id = v.intValue ?? v.arrayValue?.first?.intValue
            }
            if let i = id, i >= 0, i < n {
                w.set("tokenizer.ggml.\(gguf)_token_id", .uint32(UInt32(i)))
            }
        }
        w.set("tokenizer.ggml.merges", array: merges.map { .string($0) }, elementType: GGUFValue.string("").typeCode)
        for k in ["bos", "eos"] {
            if let b = tc["add_\(k)_token"]?.boolValue { w.set("tokenizer.ggml.add_\(k)_token", .bool(b)) }
        }
        if access(dir + "/chat_template.jinja", F_OK) == 0 {
            let f = try MappedFile(path: dir + "/chat_template.jinja")
            w.set("tokenizer.chat_template", .string(String(decoding: UnsafeRawBufferPointer(start: f.base, count: f.count), as: UTF8.self)))
        } else if let t = tc["chat_template"]?.stringValue {
            w.set("tokenizer.chat_template", .string(t))
        } else if let list = tc["chat_template"]?.arrayValue,
                  let d = list.first(where: { $0["name"]?.stringValue == "default" }) ?? list.first,
                  let t = d["template"]?.stringValue {
            w.set("tokenizer.chat_template", .string(t))
        }
    }

    static func preType(_ p: JSONValue?, hasMerges: Bool, unsupported: (String) -> AdaKError) throws -> String {
        guard let p, !p.isNull, let type = p["type"]?.stringValue else {
            throw unsupported("no pre-tokenizer: only byte-level BPE is supported")
        }
        func byteLevel(_ v: JSONValue) throws -> Bool {  // returns use_regex
            if v["add_prefix_space"]?.boolValue == true {
                throw unsupported("ByteLevel add_prefix_space = true is not supported")
            }
            return v["use_regex"]?.boolValue ?? true
        }
        switch type {
        case "ByteLevel":
            if try byteLevel(p) { return "gpt-2" }
            guard !hasMerges else { throw unsupported("ByteLevel pre-tokenizer without a regex is not supported") }
            return "default"   // with no merges every byte is its own token: splitting cannot matter
        case "Sequence":
            guard let list = p["pretokenizers"]?.arrayValue, list.count == 2,
                  list[0]["type"]?.stringValue == "Split", list[1]["type"]?.stringValue == "ByteLevel",
                  try byteLevel(list[1]) == false,
                  let regex = list[0]["pattern"]?["Regex"]?.stringValue,
                  list[0]["behavior"]?.stringValue == "Isolated", list[0]["invert"]?.boolValue != true else {
                throw unsupported("pre-tokenizer sequence is not supported (Split by a known regex + ByteLevel is)")
            }
            switch regex {
            case qwen2Regex: return "qwen2"
            case llama3Regex: return "llama-bpe"
            default: throw unsupported("pre-tokenizer regex is not one of the supported ones (Qwen2, Llama 3)")
            }
        default:
            throw unsupported("pre-tokenizer '\(type)' is not supported")
        }
    }

    /// What the byte-level decoder makes of a token: bytes if every character stands for one,
    /// else the text unchanged; invalid UTF-8 becomes U+FFFD.
    static func byteLevelDecoded(_ s: String) -> String {
        var bytes: [UInt8] = []
        for u in s.unicodeScalars {
            guard let b = GPT2Bytes.byte(for: u.value) else { return s }
            bytes.append(b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// llama.cpp's converter also treats these added tokens as control tokens.
    static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) { return true }
        if t.hasPrefix("<|") && t.hasSuffix("|>") { return true }
        if t.hasPrefix("<\u{FF5C}") && t.hasSuffix("\u{FF5C}>") { return true }
        if t.hasPrefix("<unused") && t.hasSuffix(">") { return true }
        return false
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, self.contains(target) else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
