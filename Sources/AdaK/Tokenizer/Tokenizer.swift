// The tokenizer of a GGUF model: vocabulary loading, special-token handling and the public API.
// Behaviour follows llama.cpp's llama_vocab (src/llama-vocab.cpp) so that token ids and text
// agree with it exactly: llama_tokenize, llama_token_to_piece and llama_detokenize semantics.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// llama.cpp's token attributes (bit flags).
struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt32
    static let unknown = TokenAttributes(rawValue: 1 << 0)
    static let unused = TokenAttributes(rawValue: 1 << 1)
    static let normal = TokenAttributes(rawValue: 1 << 2)
    static let control = TokenAttributes(rawValue: 1 << 3)
    static let userDefined = TokenAttributes(rawValue: 1 << 4)
    static let byte = TokenAttributes(rawValue: 1 << 5)
    static let lstrip = TokenAttributes(rawValue: 1 << 7)
    static let rstrip = TokenAttributes(rawValue: 1 << 8)

    /// From a GGUF `tokenizer.ggml.token_type` value.
    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }
    init(rawValue: UInt32) { self.rawValue = rawValue }
}

/// Token texts with a hash index from bytes to id (no per-lookup allocation).
struct Vocab: Sendable {
    private let blob: [UInt8]
    private let offsets: [Int]
    let scores: [Float]
    private let slots: [Int32]
    private let mask: Int

    var count: Int { offsets.count - 1 }

    /// `texts` must be non-empty strings; for duplicates the first id wins.
    init(texts: [[UInt8]], scores: [Float]) {
        var blob: [UInt8] = []
        blob.reserveCapacity(texts.reduce(0) { $0 + $1.count })
        var offsets = [0]
        offsets.reserveCapacity(texts.count + 1)
        for t in texts { blob += t; offsets.append(blob.count) }
        self.blob = blob
        self.offsets = offsets
        self.scores = scores
        var cap = 16
        while cap < texts.count * 2 { cap <<= 1 }
        mask = cap - 1
        var slots = [Int32](repeating: -1, count: cap)
        blob.withUnsafeBufferPointer { b in
            for id in 0..<texts.count {
                let key = UnsafeBufferPointer(rebasing: b[offsets[id]..<offsets[id + 1]])
                var i = Int(truncatingIfNeeded: Self.hash(key)) & (cap - 1)
                var duplicate = false
                while slots[i] >= 0 {
                    let o = Int(slots[i])
                    if offsets[o + 1] - offsets[o] == key.count
                        && b[offsets[o]..<offsets[o + 1]].elementsEqual(key) { duplicate = true; break }
                    i = (i + 1) & (cap - 1)
                }
                if !duplicate { slots[i] = Int32(id) }
            }
        }
        self.slots = slots
    }

    @inline(__always)
    private static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h ^ (h >> 29)
    }

    /// Bytes of a token's text.
    func text(_ id: Int32) -> ArraySlice<UInt8> { blob[offsets[Int(id)]..<offsets[Int(id) + 1]] }

    /// The id whose text is exactly `key`.
    func id(of key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var i = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return blob.withUnsafeBufferPointer { b -> Int32? in
            while true {
                let id = slots[i]
                if id < 0 { return nil }
                let s = offsets[Int(id)], e = offsets[Int(id) + 1]
                if e - s == key.count && (key.count == 0 || memcmp(b.baseAddress! + s, key.baseAddress!, key.count) == 0) {
                    return id
                }
                i = (i + 1) & mask
            }
        }
    }

    func id(of key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { id(of: $0) } }
}

/// A model's tokenizer, read from the `tokenizer.*` keys of a GGUF file. Supports byte-level BPE
/// (`tokenizer.ggml.model = "gpt2"`) with the common `tokenizer.ggml.pre` pre-tokenizers, and
/// SentencePiece-style vocabularies (`"llama"`). Immutable after loading; safe to share.
public final class Tokenizer: @unchecked Sendable {
    private enum Model {
        case bpe(BPEModel)
        case spm(SPMModel)
    }

    private let model: Model
    private let vocab: Vocab
    private let attrs: [TokenAttributes]
    /// Control, user-defined and unknown tokens, longest text first: the order in which
    /// llama.cpp cuts them out of the text.
    private let specialTokens: [Int32]
    private let eogTokens: Set<Int32>
    private let addSpacePrefix: Bool
    private let cleanSpaces: Bool

    /// Number of tokens in the vocabulary.
    public var vocabSize: Int { vocab.count }
    /// Beginning-of-sequence token (`tokenizer.ggml.bos_token_id`, else llama.cpp's default).
    public let bos: Int32?
    /// End-of-sequence token (`tokenizer.ggml.eos_token_id`, else llama.cpp's default).
    public let eos: Int32?
    /// Whether `tokenize(addSpecial: true)` prepends BOS (`tokenizer.ggml.add_bos_token`, else
    /// llama.cpp's default for the vocabulary type and pre-tokenizer).
    public let addBOS: Bool
    /// Whether `tokenize(addSpecial: true)` appends EOS (`tokenizer.ggml.add_eos_token`).
    public let addEOS: Bool
    /// The Jinja chat template (`tokenizer.chat_template`), if the file has one.
    public let chatTemplate: String?

    /// Loads the tokenizer of a GGUF file. Throws `.format` for missing or inconsistent keys and
    /// `.unsupported` for tokenizer models or pre-tokenizers this library does not implement.
    public init(gguf: GGUFFile) throws {
        guard let modelName = gguf.string("tokenizer.ggml.model") else {
            throw AdaKError.format("tokenizer: missing tokenizer.ggml.model")
        }
        guard let tokenStrings = gguf.stringArray("tokenizer.ggml.tokens"), !tokenStrings.isEmpty else {
            throw AdaKError.format("tokenizer: missing or empty tokenizer.ggml.tokens")
        }
        let n = tokenStrings.count
        guard n < Int(Int32.max) else { throw AdaKError.format("tokenizer: \(n) tokens is too many") }
        let texts: [[UInt8]] = tokenStrings.enumerated().map { i, s in
            s.isEmpty ? Array("[EMPTY_\(i)]".utf8) : Array(s.utf8)
        }
        var scores = [Float](repeating: 0, count: n)
        if gguf["tokenizer.ggml.scores"] != nil {
            guard let s = gguf.floatArray("tokenizer.ggml.scores"), s.count >= n else {
                throw AdaKError.format("tokenizer: tokenizer.ggml.scores is not a numeric array of \(n) values")
            }
            scores = Array(s[0..<n])
        }
        var attrs = [TokenAttributes](repeating: .normal, count: n)
        if gguf["tokenizer.ggml.token_type"] != nil {
            guard let t = gguf.intArray("tokenizer.ggml.token_type"), t.count >= n else {
                throw AdaKError.format("tokenizer: tokenizer.ggml.token_type is not an integer array of \(n) values")
            }
            for i in 0..<n { attrs[i] = TokenAttributes(tokenType: t[i]) }
        }
        let vocab = Vocab(texts: texts, scores: scores)
        self.vocab = vocab

        // Vocabulary type defaults, as llama.cpp sets them before reading the optional keys.
        var bos: Int32?, eos: Int32?
        var addBOS = false, addEOS = false, addSpacePrefix = false, cleanSpaces = false
        let pre = gguf.string("tokenizer.ggml.pre") ?? ""
        switch modelName {
        case "llama":
            bos = 1; eos = 2
            addSpacePrefix = true; addBOS = true
            model = .spm(SPMModel(vocab: vocab))
        case "gpt2":
            guard let merges = gguf.stringArray("tokenizer.ggml.merges") else {
                throw AdaKError.format("tokenizer: byte-level BPE vocabulary without tokenizer.ggml.merges")
            }
            guard let (preTokenizer, ignoreMerges, clean, preAddsBOS) = PreTokenizer.forPre(pre) else {
                throw AdaKError.unsupported("tokenizer: pre-tokenizer '\(pre)' is not supported")
            }
            bos = PreTokenizer.clearsDefaultBOS(pre) ? nil : 11; eos = 11
            cleanSpaces = clean
            addBOS = preAddsBOS ?? false
            model = .bpe(BPEModel(vocab: vocab, merges: merges, preTokenizer: preTokenizer, ignoreMerges: ignoreMerges))
        default:
            throw AdaKError.unsupported("tokenizer: tokenizer model '\(modelName)' is not supported")
        }
        if let v = gguf.bool("tokenizer.ggml.add_space_prefix") { addSpacePrefix = v }

        // Special token ids: defaults outside the vocabulary are dropped, keys outside it ignored.
        func special(_ key: String, _ def: Int32?) -> Int32? {
            var id = def
            if let d = id, d >= n { id = nil }
            if let v = gguf.int("tokenizer.ggml.\(key)"), v >= 0, v < n { id = Int32(v) }
            return id
        }
        bos = special("bos_token_id", bos)
        eos = special("eos_token_id", eos)
        var eot = special("eot_token_id", nil)
        var eom = special("eom_token_id", nil)
        var fimPre = special("fim_pre_token_id", nil), fimSuf = special("fim_suf_token_id", nil)
        var fimMid = special("fim_mid_token_id", nil)
        fimPre = special("prefix_token_id", fimPre)
        fimSuf = special("suffix_token_id", fimSuf)
        fimMid = special("middle_token_id", fimMid)
        var fimPad = special("fim_pad_token_id", nil), fimRep = special("fim_rep_token_id", nil)
        var fimSep = special("fim_sep_token_id", nil)

        if let v = gguf.bool("tokenizer.ggml.add_bos_token") { addBOS = v }
        if let v = gguf.bool("tokenizer.ggml.add_eos_token") { addEOS = v }
        if addBOS && bos == nil {
            throw AdaKError.format("tokenizer: tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set")
        }
        if addEOS && eos == nil {
            throw AdaKError.format("tokenizer: tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set")
        }

        // llama.cpp finds unset EOT/EOM/FIM tokens by their text and forces them to CONTROL.
        // One pass collects the ids of every token whose text is one of the names looked for.
        let eotNames = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                        "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"]
        let fimNames = [["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                         "<|code_prefix|>", "<|prefix|>"],
                        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                         "<|code_suffix|>", "<|suffix|>"],
                        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                         "<|code_middle|>", "<|middle|>"],
                        ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
                        ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
                        ["<|file_sep|>"]]
        let eogNames = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                        "<｜end▁of▁sentence｜>", "[e~["]
        let renderedNames = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]
        var named: [String: [Int]] = [:]
        do {
            let all = Set(eotNames + fimNames.joined() + eogNames + renderedNames + ["<|eom_id|>"])
            let maxLen = all.map(\.utf8.count).max() ?? 0
            let firstBytes = Set(all.compactMap(\.utf8.first))
            for id in 0..<n {
                let t = vocab.text(Int32(id))
                guard t.count <= maxLen, let f = t.first, firstBytes.contains(f) else { continue }
                let s = String(decoding: t, as: UTF8.self)
                if all.contains(s) { named[s, default: []].append(id) }
            }
        }
        func ids(_ names: [String]) -> [Int] { names.flatMap { named[$0] ?? [] }.sorted() }
        func detect(_ slot: inout Int32?, _ names: [String]) {
            guard slot == nil, let id = ids(names).first else { return }
            slot = Int32(id)
            attrs[id].insert(.control)
        }
        detect(&eot, eotNames)
        detect(&eom, ["<|eom_id|>"])
        detect(&fimPre, fimNames[0])
        detect(&fimSuf, fimNames[1])
        detect(&fimMid, fimNames[2])
        detect(&fimPad, fimNames[3])
        detect(&fimRep, fimNames[4])
        detect(&fimSep, fimNames[5])

        // End-of-generation tokens.
        var eog = Set<Int32>([fimPad, fimRep, fimSep].compactMap { $0 })
        for id in ids(eogNames) {
            eog.insert(Int32(id))
            attrs[id].insert(.control)
        }
        // gpt-oss: these are always rendered
        for id in ids(renderedNames) { attrs[id] = .userDefined }
        for id in [eos, eot, eom].compactMap({ $0 }) { eog.insert(id) }
        // o200k_harmony / solar-open: "<|end|>" is not an end of generation there
        let eogTexts = eog.map { String(decoding: vocab.text($0), as: UTF8.self) }
        let hasEnd = eogTexts.contains("<|end|>"), hasCall = eogTexts.contains("<|call|>") || eogTexts.contains("<|calls|>")
        if hasEnd && hasCall && (eogTexts.contains("<|return|>") || eogTexts.contains("<|flush|>")),
           let endId = eog.first(where: { vocab.text($0).elementsEqual("<|end|>".utf8) }) {
            eog.remove(endId)
            attrs[Int(endId)] = .userDefined
        }

        // Per-model attributes llama.cpp sets by name.
        let special = (0..<n).filter { !attrs[$0].isDisjoint(with: [.control, .userDefined, .unknown]) }
        let modelNameLower = (gguf.string("general.name") ?? "").lowercased()
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].contains(where: { pre.contains($0) }),
           let mask = vocab.id(of: Array("<mask>".utf8)) {
            attrs[Int(mask)].insert(.lstrip)
        } else if modelNameLower.contains("phi-3") || modelNameLower.contains("phi3") {
            for id in special { attrs[id].insert(.rstrip) }
            if let id = vocab.id(of: Array("</s>".utf8)) { attrs[Int(id)].insert(.rstrip) }
            for name in ["<unk>", "<s>", "<|endoftext|>"] {
                if let id = vocab.id(of: Array(name.utf8)) { attrs[Int(id)].remove(.rstrip) }
            }
        }

        self.specialTokens = special.sorted { a, b in
            let la = vocab.text(Int32(a)).count, lb = vocab.text(Int32(b)).count
            return la != lb ? la > lb : a < b
        }.map { Int32($0) }
        self.attrs = attrs
        self.eogTokens = eog
        self.bos = bos
        self.eos = eos
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.cleanSpaces = cleanSpaces
        self.chatTemplate = gguf.string("tokenizer.chat_template")
    }

    // MARK: - Tokenize

    private enum Fragment {
        case text(Int, Int)   // byte range start..<end of the input
        case token(Int32)
    }

    /// Converts text to token ids with `llama_tokenize(vocab, text, add_special, parse_special)`
    /// semantics: `addSpecial` adds BOS/EOS as the vocabulary asks; `parseSpecial` lets control
    /// tokens written in the text become single ids (user-defined tokens always do).
    public func tokenize(_ text: [UInt8], addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        text.withUnsafeBufferPointer { buf in
            let fragments = partition(buf, parseSpecial: parseSpecial)
            var out: [Int32] = []
            out.reserveCapacity(text.count / 3 + 4)
            if addSpecial && addBOS, let bos { out.append(bos) }
            switch model {
            case .spm(let spm):
                var prevSpecial = true  // a space prefix goes before the first text too
                for f in fragments {
                    switch f {
                    case .text(let s, let e):
                        var t: [UInt8] = []
                        t.reserveCapacity(e - s + 3)
                        if addSpacePrefix && prevSpecial { t += [0xE2, 0x96, 0x81] }
                        for b in buf[s..<e] {
                            if b == 0x20 { t += [0xE2, 0x96, 0x81] } else { t.append(b) }
                        }
                        spm.encode(t, vocab: vocab, into: &out)
                        prevSpecial = false
                    case .token(let id):
                        out.append(id)
                        prevSpecial = true
                    }
                }
            case .bpe(let bpe):
                for f in fragments {
                    switch f {
                    case .text(let s, let e):
                        bpe.encode(UnsafeBufferPointer(rebasing: buf[s..<e]), vocab: vocab, into: &out)
                    case .token(let id):
                        out.append(id)
                    }
                }
            }
            if addSpecial && addEOS, let eos { out.append(eos) }
            return out
        }
    }

    /// `tokenize` on the UTF-8 bytes of `text`.
    public func tokenize(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        tokenize(Array(text.utf8), addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    /// Cuts special tokens out of the text like llama.cpp's tokenizer_st_partition: for each
    /// special token, longest first, every leftmost non-overlapping occurrence in the remaining
    /// raw text becomes a token fragment. Control and unknown tokens only with `parseSpecial`.
    private func partition(_ buf: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        guard buf.count > 0 else { return [] }
        var fragments: [Fragment] = [.text(0, buf.count)]
        for id in specialTokens {
            let a = attrs[Int(id)]
            if !parseSpecial && !a.isDisjoint(with: [.control, .unknown]) { continue }
            let needle = vocab.text(id)
            guard let first = needle.first else { continue }
            var out: [Fragment] = []
            var changed = false
            needle.withUnsafeBufferPointer { nb in
                for f in fragments {
                    guard case .text(var s, let e) = f else { out.append(f); continue }
                    while s < e {
                        guard let m = Self.find(nb, first, in: buf, from: s, to: e) else { break }
                        changed = true
                        var leftEnd = m
                        if a.contains(.lstrip) { while leftEnd > s && Self.isCSpace(buf[leftEnd - 1]) { leftEnd -= 1 } }
                        if leftEnd > s { out.append(.text(s, leftEnd)) }
                        out.append(.token(id))
                        s = m + nb.count
                        if a.contains(.rstrip) { while s < e && Self.isCSpace(buf[s]) { s += 1 } }
                    }
                    if s < e { out.append(.text(s, e)) }
                }
            }
            if changed { fragments = out }
        }
        return fragments
    }

    @inline(__always)
    private static func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }

    /// First occurrence of `needle` in buf[from..<to].
    private static func find(_ needle: UnsafeBufferPointer<UInt8>, _ first: UInt8, in buf: UnsafeBufferPointer<UInt8>,
                             from: Int, to: Int) -> Int? {
        let n = needle.count
        guard let base = buf.baseAddress, let nbase = needle.baseAddress else { return nil }
        var p = from
        while to - p >= n {
            guard let hit = memchr(base + p, Int32(first), to - p - n + 1) else { return nil }
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + i, nbase, n) == 0 { return i }
            p = i + 1
        }
        return nil
    }

    // MARK: - Pieces and detokenize

    /// Bytes of one token, like `llama_token_to_piece(vocab, id, buf, lstrip: 0, special)`:
    /// control and unknown tokens only with `special`; empty for an out-of-range id.
    public func piece(_ id: Int32, special: Bool) -> [UInt8] {
        guard isValid(id) else { return [] }
        let a = attrs[Int(id)]
        if !special && !a.isDisjoint(with: [.unknown, .control]) { return [] }
        let text = vocab.text(id)
        if !a.isDisjoint(with: [.unknown, .control, .userDefined]) { return Array(text) }
        if a.contains(.normal) {
            switch model {
            case .spm: return Self.unescapeWhitespace(text)
            case .bpe: return Self.decodeByteLevel(text)
            }
        }
        if a.contains(.byte) {
            guard case .spm = model else { return [] }
            return [Self.byteValue(text)]
        }
        return []
    }

    /// `<0xXX>` -> XX (strtol semantics: stops at the first non-hex digit).
    private static func byteValue(_ text: ArraySlice<UInt8>) -> UInt8 {
        var v: UInt8 = 0
        for c in text.dropFirst(3).prefix(2) {
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return v
            }
            v = v << 4 | d
        }
        return v
    }

    /// U+2581 -> space.
    private static func unescapeWhitespace(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0xE2 && i + 2 < text.endIndex && text[i + 1] == 0x96 && text[i + 2] == 0x81 {
                out.append(0x20); i += 3
            } else {
                out.append(text[i]); i += 1
            }
        }
        return out
    }

    /// GPT-2 code points -> bytes; an unmapped code point becomes llama.cpp's
    /// "[UNK_BYTE_0x<utf8 hex><token text>]".
    private static func decodeByteLevel(_ text: ArraySlice<UInt8>) -> [UInt8] {
        let cps = Array(text).withUnsafeBufferPointer { UTF8Util.decode($0) }
        var out: [UInt8] = []
        out.reserveCapacity(cps.count)
        for cp in cps {
            if let b = GPT2Bytes.byte(for: cp) {
                out.append(b)
            } else {
                var utf8: [UInt8] = []
                UTF8Util.append(cp, to: &utf8)
                out += Array("[UNK_BYTE_0x".utf8)
                let hex = Array("0123456789abcdef".utf8)
                for c in utf8 { out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)]) }
                out += text
                out.append(0x5D)
            }
        }
        return out
    }

    /// Text of a token sequence, like `llama_detokenize(vocab, ids, remove_special, unparse_special)`:
    /// `removeSpecial` drops a leading BOS / trailing EOS the vocabulary adds itself;
    /// `unparseSpecial` renders control tokens as their text.
    public func detokenize(_ ids: [Int32], removeSpecial: Bool, unparseSpecial: Bool) -> [UInt8] {
        var ids = ids[...]
        var removeSpace = addSpacePrefix
        if removeSpecial && addBOS, let first = ids.first, first == bos {
            removeSpace = false
            ids = ids.dropFirst()
        }
        if removeSpecial && addEOS, let last = ids.last, last == eos {
            ids = ids.dropLast()
        }
        var text: [UInt8] = []
        for id in ids {
            var p = piece(id, special: unparseSpecial)[...]
            if removeSpace, p.first == 0x20 { p = p.dropFirst() }
            removeSpace = false
            text += p
        }
        if cleanSpaces { Self.cleanUpSpaces(&text) }
        return text
    }

    /// llama.cpp's clean_up_tokenization_spaces passes, byte for byte.
    private static func cleanUpSpaces(_ text: inout [UInt8]) {
        let space: UInt8 = 0x20, quote: UInt8 = 0x27
        // " ?", " !", " .", " ,"
        let total1 = text.count
        var total = total1 > 0 ? 1 : 0
        var i = 1
        while i < total1 {
            let x = text[i]
            if text[i - 1] == space && (x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C) { total -= 1 }
            text[total] = x; total += 1
            i += 1
        }
        // " ' " -> "'"
        let total2 = total
        total = total2 > 0 ? 1 : 0
        i = 1
        while i < total2 {
            let x = text[i]
            if x == quote && i + 1 < total2 && text[i - 1] == space && text[i + 1] == space {
                total -= 1
                i += 1
                text[i] = 0
            }
            text[total] = x; total += 1
            i += 1
        }
        // " 's", " 'm", " 're", " 've"
        let total3 = total
        total = total3 > 0 ? 1 : 0
        i = 1
        while i < total3 {
            let x = text[i]
            if text[i - 1] == space && x == quote && i + 1 < total3 {
                let x1 = text[i + 1]
                if x1 == 0x73 || x1 == 0x6D {
                    total -= 1
                } else if x1 != 0x74 && x1 != 0x64 && i + 2 < total3 {
                    let x2 = text[i + 2]
                    if (x1 == 0x72 && x2 == 0x65) || (x1 == 0x76 && x2 == 0x65) { total -= 1 }
                }
            }
            text[total] = x; total += 1
            i += 1
        }
        text.removeSubrange(total...)
    }

    // MARK: - Token classes

    /// End-of-generation tokens: EOS, EOT, EOM and the tokens llama.cpp treats as EOG by their
    /// text (`<|im_end|>`, `<end_of_turn>`, `<|endoftext|>`, FIM pad/repo/separator, ...).
    public func isEndOfGeneration(_ id: Int32) -> Bool { eogTokens.contains(id) }

    /// Whether `id` is a token of this vocabulary.
    public func isValid(_ id: Int32) -> Bool { id >= 0 && Int(id) < vocab.count }
}
