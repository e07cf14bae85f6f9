// Pre-tokenizers of byte-level BPE vocabularies: hand-written scanners that reproduce the regex
// splits llama.cpp applies for each `tokenizer.ggml.pre` value (src/llama-vocab.cpp and the
// custom GPT-2 / LLaMA-3 splitters of src/unicode.cpp). Each rule refines the current segments:
// both the matches and the text between matches become segments.

/// One regex step of a pre-tokenizer.
enum PreTokenizerRule: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    case gpt2
    /// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` with D = 3 (LLaMA 3) or 1 (Qwen2).
    case llama3(maxDigits: Int)
    /// `\p{N}`: every number code point on its own.
    case singleNumbers
    /// `\p{N}+`
    case numberRuns
    /// `[0-9][0-9][0-9]`
    case asciiDigitTriples
    /// `[\p{P}\$\+<=>\^~\|]+` (with a backtick in the class for Falcon).
    case punctuationRuns(backtick: Bool)
    /// `\p{N}{1,n}`
    case numberGroups(max: Int)
    /// `[\r\n]`: every line break on its own.
    case lineBreaks
    /// `\s?[ranges]+` (with `leadingSpace`) or `[ranges]+` over code points. llama.cpp runs these
    /// on the raw code points with non-ASCII whitespace turned into `\v`, so no whitespace code
    /// point is ever inside a range.
    case rangeRuns([ClosedRange<UInt32>], leadingSpace: Bool)
    /// `\s+$`: the whitespace that ends a segment.
    case trailingWhitespace
    /// DeepSeek V3's main split: `[ASCII punct][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
    /// ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case deepseek3
    /// o200k (GPT-4o, gpt-oss): `[^\r\n\p{L}\p{N}]?U*W+C?|[^\r\n\p{L}\p{N}]?U+W*C?|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+` with U = a letter that is not a-z,
    /// W = a letter that is not A-Z, C = an English contraction. (llama.cpp evaluates it with
    /// std::regex on text where every non-ASCII letter stands for one placeholder character, so a
    /// non-ASCII letter counts as both "upper" and "lower" there; this is what is reproduced.)
    case gpt4o
}

/// A pre-tokenizer: a chain of split rules.
struct PreTokenizer: Sendable {
    let rules: [PreTokenizerRule]

    /// The rule chain llama.cpp uses for a `tokenizer.ggml.pre` value, with the vocabulary flags
    /// that llama.cpp sets alongside it; nil for pre-tokenizers this implementation lacks.
    static func forPre(_ pre: String) -> (PreTokenizer, ignoreMerges: Bool, cleanSpaces: Bool, addBOS: Bool?)? {
        let deepseek3Family = ["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"]
        let gpt4oFamily = ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"]
        let gpt2Family = ["gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                          "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe",
                          "mpt", "olmo", "jais", "exaone4"]
        let starcoderFamily = ["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"]
        let llama3Family = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                            "lfm2", "jina-v5-nano"]
        let qwen2Family = ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"]
        switch pre {
        case "", "default":
            return (PreTokenizer(rules: [.punctuationRuns(backtick: false), .gpt2, .numberRuns, .asciiDigitTriples]),
                    false, true, nil)
        case "falcon":
            return (PreTokenizer(rules: [.punctuationRuns(backtick: true), .gpt2, .asciiDigitTriples]), false, true, nil)
        case "trillion", "granite-docling":
            return (PreTokenizer(rules: [.gpt2]), false, false, nil)
        case "smollm", "command-r":
            return (PreTokenizer(rules: [.singleNumbers, .gpt2]), false, false, nil)
        case "dbrx", "smaug-bpe", "chatglm-bpe":
            return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), false, true, nil)
        case "glm4", "glm5":
            return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), true, true, nil)
        case "deepseek-llm":
            return (PreTokenizer(rules: [.lineBreaks, .rangeRuns(DeepSeekRanges.letters, leadingSpace: true),
                                         .rangeRuns(DeepSeekRanges.punctuation, leadingSpace: true),
                                         .trailingWhitespace, .rangeRuns(DeepSeekRanges.cjkHangul, leadingSpace: false),
                                         .numberRuns]), false, false, nil)
        case "stablelm2", "megrez":
            return (PreTokenizer(rules: [.llama3(maxDigits: 1)]), false, true, nil)
        default:
            if gpt2Family.contains(pre) { return (PreTokenizer(rules: [.gpt2]), false, true, nil) }
            if starcoderFamily.contains(pre) { return (PreTokenizer(rules: [.singleNumbers, .gpt2]), false, true, nil) }
            if llama3Family.contains(pre) { return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), true, true, true) }
            if qwen2Family.contains(pre) { return (PreTokenizer(rules: [.llama3(maxDigits: 1)]), false, false, nil) }
            if deepseek3Family.contains(pre) {
                return (PreTokenizer(rules: [.numberGroups(max: 3), .rangeRuns(DeepSeekRanges.hanKana, leadingSpace: false),
                                             .deepseek3]), false, false, nil)
            }
            if gpt4oFamily.contains(pre) { return (PreTokenizer(rules: [.gpt4o]), false, false, nil) }
            return nil
        }
    }

    /// Pre-tokenizers whose vocabularies have no BOS token unless the GGUF names one (llama.cpp
    /// clears its default BOS id 11 for them).
    static func clearsDefaultBOS(_ pre: String) -> Bool { ["chatglm-bpe", "glm4", "glm5"].contains(pre) }

    /// Splits code points (with their precomputed flags) into word lengths.
    func split(_ cps: [UInt32], _ flags: [CodepointFlags]) -> [Int] {
        var segments = [cps.count]
        for rule in rules {
            var out: [Int] = []
            out.reserveCapacity(segments.count * 2)
            var start = 0
            for len in segments {
                let end = start + len
                switch rule {
                case .gpt2: Self.gpt2(cps, flags, start, end, &out)
                case .llama3(let d): Self.llama3(cps, flags, start, end, d, &out)
                case .singleNumbers:
                    Self.runs(start, end, &out) { p in flags[p].contains(.number) ? 1 : 0 }
                case .numberRuns:
                    Self.runs(start, end, &out) { p in
                        var q = p
                        while q < end && flags[q].contains(.number) { q += 1 }
                        return q - p
                    }
                case .asciiDigitTriples:
                    Self.runs(start, end, &out) { p in
                        guard p + 3 <= end else { return 0 }
                        for q in p..<(p + 3) where !(0x30...0x39).contains(cps[q]) { return 0 }
                        return 3
                    }
                case .punctuationRuns(let backtick):
                    Self.runs(start, end, &out) { p in
                        var q = p
                        while q < end && Self.isPunctuationClass(cps[q], flags[q], backtick) { q += 1 }
                        return q - p
                    }
                case .numberGroups(let n):
                    Self.runs(start, end, &out) { p in
                        var q = p
                        while q < end && q - p < n && flags[q].contains(.number) { q += 1 }
                        return q - p
                    }
                case .lineBreaks:
                    Self.runs(start, end, &out) { p in cps[p] == 0x0D || cps[p] == 0x0A ? 1 : 0 }
                case .rangeRuns(let ranges, let leadingSpace):
                    func inRanges(_ q: Int) -> Bool {
                        q < end && !flags[q].contains(.whitespace) && ranges.contains { $0.contains(cps[q]) }
                    }
                    Self.runs(start, end, &out) { p in
                        var q = p
                        if leadingSpace && flags[p].contains(.whitespace) && inRanges(p + 1) { q += 1 }
                        guard inRanges(q) else { return 0 }
                        while inRanges(q) { q += 1 }
                        return q - p
                    }
                case .trailingWhitespace:
                    var t = end
                    while t > start && flags[t - 1].contains(.whitespace) { t -= 1 }
                    Self.runs(start, end, &out) { p in p == t ? end - t : 0 }
                case .deepseek3:
                    Self.runs(start, end, &out) { p in Self.deepseek3Match(cps, flags, p, end) }
                case .gpt4o:
                    Self.runs(start, end, &out) { p in Self.gpt4oMatch(cps, flags, p, end) }
                }
                start = end
            }
            segments = out
        }
        return segments
    }

    /// `[\p{P}\$\+<=>\^~\|]`: llama.cpp evaluates it on a "collapsed" text where ASCII stays
    /// itself and other code points stand for their category, so every ASCII punctuation and
    /// symbol except the backtick matches, and beyond ASCII exactly \p{P}.
    private static func isPunctuationClass(_ cp: UInt32, _ f: CodepointFlags, _ backtick: Bool) -> Bool {
        switch cp {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x5F, 0x7B...0x7E: return true
        case 0x60: return backtick
        case 0..<0x80: return false
        default: return f.contains(.punctuation) && !f.contains(.whitespace)
        }
    }

    /// Leftmost, non-overlapping matches of a pattern given as "match length at p" (0 = none).
    private static func runs(_ start: Int, _ end: Int, _ out: inout [Int], _ matchAt: (Int) -> Int) {
        var gap = start
        var p = start
        while p < end {
            let n = matchAt(p)
            if n > 0 {
                if p > gap { out.append(p - gap) }
                out.append(n)
                p += n
                gap = p
            } else {
                p += 1
            }
        }
        if end > gap { out.append(end - gap) }
    }

    private static let noFlags = CodepointFlags([])

    @inline(__always) private static func isLineBreak(_ c: UInt32) -> Bool { c == 0x0D || c == 0x0A }
    @inline(__always) private static func isASCIILetter(_ c: UInt32) -> Bool {
        (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
    }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` (ASCII case-insensitive) at p, or 0.
    private static func contraction(_ cps: [UInt32], _ p: Int, _ end: Int) -> Int {
        guard p + 1 < end, cps[p] == 0x27 else { return 0 }
        @inline(__always) func lower(_ c: UInt32) -> UInt32 { (0x41...0x5A).contains(c) ? c + 0x20 : c }
        let n1 = lower(cps[p + 1])
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return 2 }
        guard p + 2 < end else { return 0 }
        let n2 = lower(cps[p + 2])
        return (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) ? 3 : 0
    }

    /// Length of the whitespace alternatives `\s*[\r\n]+|\s+(?!\S)|\s+` at p (0 if p is not
    /// whitespace): up to the last line break of the run, else the run but its last code point
    /// when more text follows it.
    private static func whitespaceMatch(_ cps: [UInt32], _ fl: [CodepointFlags], _ p: Int, _ end: Int) -> Int {
        var q = p, afterBreak = -1
        while q < end && fl[q].contains(.whitespace) {
            if isLineBreak(cps[q]) { afterBreak = q + 1 }
            q += 1
        }
        if afterBreak >= 0 { return afterBreak - p }
        if q - p > 1 && q < end { return q - p - 1 }
        return q - p
    }

    /// One match of DeepSeek V3's main split at p (0 = none), alternatives tried in order as
    /// std::regex (ECMAScript) does.
    private static func deepseek3Match(_ cps: [UInt32], _ fl: [CodepointFlags], _ p: Int, _ end: Int) -> Int {
        @inline(__always) func letterOrMark(_ q: Int) -> Bool { q < end && !fl[q].isDisjoint(with: [.letter, .mark]) }
        @inline(__always) func punctOrSymbol(_ q: Int) -> Bool {
            q < end && !fl[q].isDisjoint(with: [.punctuation, .symbol]) && !fl[q].contains(.whitespace)
        }
        let c = cps[p]
        // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
        if c < 0x80 && punctOrSymbol(p) && p + 1 < end && isASCIILetter(cps[p + 1]) {
            var q = p + 1
            while q < end && isASCIILetter(cps[q]) { q += 1 }
            return q - p
        }
        // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        let prefix = !isLineBreak(c) && fl[p].isDisjoint(with: [.letter, .punctuation, .symbol])
        var q = prefix && letterOrMark(p + 1) ? p + 1 : p
        if letterOrMark(q) {
            while letterOrMark(q) { q += 1 }
            return q - p
        }
        // ?[\p{P}\p{S}]+[\r\n]*
        q = c == 0x20 && punctOrSymbol(p + 1) ? p + 1 : p
        if punctOrSymbol(q) {
            while punctOrSymbol(q) { q += 1 }
            while q < end && isLineBreak(cps[q]) { q += 1 }
            return q - p
        }
        return whitespaceMatch(cps, fl, p, end)
    }

    /// One match of the o200k split at p (0 = none), alternatives and backtracking as std::regex
    /// runs them on llama.cpp's collapsed text.
    private static func gpt4oMatch(_ cps: [UInt32], _ fl: [CodepointFlags], _ p: Int, _ end: Int) -> Int {
        @inline(__always) func letter(_ q: Int) -> Bool { q < end && fl[q].contains(.letter) }
        @inline(__always) func upper(_ q: Int) -> Bool { letter(q) && !(0x61...0x7A).contains(cps[q]) }
        @inline(__always) func lower(_ q: Int) -> Bool { letter(q) && !(0x41...0x5A).contains(cps[q]) }
        @inline(__always) func number(_ q: Int) -> Bool { q < end && fl[q].contains(.number) }
        @inline(__always) func other(_ q: Int) -> Bool {
            q < end && fl[q].isDisjoint(with: [.whitespace, .letter, .number])
        }
        let c = cps[p]
        // [^\r\n\p{L}\p{N}]? then U*W+ (U* gives back letters until W+ can start) or else U+W*
        let q = !isLineBreak(c) && !letter(p) && !number(p) ? p + 1 : p
        var u = 0
        while upper(q + u) { u += 1 }
        var k = u
        while k >= 0 && !lower(q + k) { k -= 1 }
        if k >= 0 || u > 0 {
            var e = q + (k >= 0 ? k : u)
            while k >= 0 && lower(e) { e += 1 }
            return e + contraction(cps, e, end) - p
        }
        // \p{N}{1,3}
        if number(p) {
            var e = p
            while number(e) && e - p < 3 { e += 1 }
            return e - p
        }
        // ?[^\s\p{L}\p{N}]+[\r\n/]*
        var e = c == 0x20 && other(p + 1) ? p + 1 : p
        if other(e) {
            while other(e) { e += 1 }
            while e < end && (isLineBreak(cps[e]) || cps[e] == 0x2F) { e += 1 }
            return e - p
        }
        return whitespaceMatch(cps, fl, p, end)
    }
    private static let wsLetterNumber: CodepointFlags = [.whitespace, .letter, .number]

    private static func gpt2(_ cps: [UInt32], _ fl: [CodepointFlags], _ start: Int, _ end: Int, _ out: inout [Int]) {
        @inline(__always) func flags(_ p: Int) -> CodepointFlags { p < end ? fl[p] : noFlags }
        var pos = start
        var prev = start
        @inline(__always) func emit(_ e: Int) { if e > prev { out.append(e - prev) }; prev = e }
        while pos < end {
            let cp = cps[pos]
            let f = fl[pos]
            // 's|'t|'re|'ve|'m|'ll|'d
            if cp == 0x27 && pos + 1 < end {
                let n1 = cps[pos + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { pos += 2; emit(pos); continue }
                if pos + 2 < end {
                    let n2 = cps[pos + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        pos += 3; emit(pos); continue
                    }
                }
            }
            let space = cp == 0x20
            let f2 = space ? flags(pos + 1) : f
            // ' ?\p{L}+', ' ?\p{N}+'
            if f2.contains(.letter) || f2.contains(.number) {
                let cls: CodepointFlags = f2.contains(.letter) ? .letter : .number
                if space { pos += 1 }
                while flags(pos).contains(cls) { pos += 1 }
                emit(pos); continue
            }
            // ' ?[^\s\p{L}\p{N}]+'
            if f2.isDisjoint(with: wsLetterNumber) && !f2.isEmpty {
                if space { pos += 1 }
                while true {
                    let g = flags(pos)
                    if g.isEmpty || !g.isDisjoint(with: wsLetterNumber) { break }
                    pos += 1
                }
                emit(pos); continue
            }
            var nws = 0
            while flags(pos + nws).contains(.whitespace) { nws += 1 }
            // '\s+(?!\S)': leave the last space for the next word
            if nws > 1 && pos + nws < end { pos += nws - 1; emit(pos); continue }
            if nws > 0 { pos += nws; emit(pos); continue }
            pos += 1; emit(pos)
        }
    }

    private static func llama3(_ cps: [UInt32], _ fl: [CodepointFlags], _ start: Int, _ end: Int, _ maxDigits: Int,
                               _ out: inout [Int]) {
        @inline(__always) func flags(_ p: Int) -> CodepointFlags { p < end ? fl[p] : noFlags }
        @inline(__always) func isNewline(_ p: Int) -> Bool { p < end && (cps[p] == 0x0D || cps[p] == 0x0A) }
        @inline(__always) func lower(_ c: UInt32) -> UInt32 { (0x41...0x5A).contains(c) ? c + 0x20 : c }
        var pos = start
        var prev = start
        @inline(__always) func emit(_ e: Int) { if e > prev { out.append(e - prev) }; prev = e }
        while pos < end {
            let cp = cps[pos]
            let f = fl[pos]
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if cp == 0x27 && pos + 1 < end {
                let n1 = lower(cps[pos + 1])
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { pos += 2; emit(pos); continue }
                if pos + 2 < end {
                    let n2 = lower(cps[pos + 2])
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        pos += 3; emit(pos); continue
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(cp == 0x0D || cp == 0x0A || f.contains(.number)) {
                if f.contains(.letter) || flags(pos + 1).contains(.letter) {
                    pos += 1
                    while flags(pos).contains(.letter) { pos += 1 }
                    emit(pos); continue
                }
            }
            // \p{N}{1,maxDigits}
            if f.contains(.number) {
                var ini = pos
                while flags(pos).contains(.number) {
                    pos += 1
                    if pos - ini >= maxDigits { emit(pos); ini = pos }
                }
                emit(pos); continue
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let space = cp == 0x20
            let f2 = space ? flags(pos + 1) : f
            if f2.isDisjoint(with: wsLetterNumber) {
                if space { pos += 1 }
                while true {
                    let g = flags(pos)
                    if g.isEmpty || !g.isDisjoint(with: wsLetterNumber) { break }
                    pos += 1
                }
                while isNewline(pos) { pos += 1 }
                emit(pos); continue
            }
            var nws = 0
            var afterLastNewline = -1
            while flags(pos + nws).contains(.whitespace) {
                if isNewline(pos + nws) { afterLastNewline = pos + nws + 1 }
                nws += 1
            }
            // \s*[\r\n]+
            if afterLastNewline >= 0 { pos = afterLastNewline; emit(pos); continue }
            // \s+(?!\S)
            if nws > 1 && pos + nws < end { pos += nws - 1; emit(pos); continue }
            // \s+
            if nws > 0 { pos += nws; emit(pos); continue }
            pos += 1; emit(pos)
        }
    }
}

/// The code point classes of DeepSeek's pre-tokenizer regexes (tokenizer.json of
/// deepseek-llm-7b-base and DeepSeek-V2 for `deepseek-llm`, DeepSeek-V3 for `deepseek-v3`).
enum DeepSeekRanges {
    /// `[A-Za-zµÀ-ÖØ-öø-ƺ…𞤀-𞥃]`: cased letters of Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee…
    static let letters: [ClosedRange<UInt32>] = [
        0x41...0x5A, 0x61...0x7A, 0xB5...0xB5, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x1BA, 0x1BC...0x1BF,
        0x1C4...0x293, 0x295...0x2AF, 0x370...0x373, 0x376...0x377, 0x37B...0x37D, 0x37F...0x37F,
        0x386...0x386, 0x388...0x38A, 0x38C...0x38C, 0x38E...0x3A1, 0x3A3...0x3F5, 0x3F7...0x481,
        0x48A...0x52F, 0x531...0x556, 0x10A0...0x10C5, 0x13A0...0x13F5, 0x13F8...0x13FD, 0x1C90...0x1CBA,
        0x1CBD...0x1CBF, 0x1D00...0x1D2B, 0x1D6B...0x1D77, 0x1D79...0x1D9A, 0x1E00...0x1F15, 0x1F18...0x1F1D,
        0x1F20...0x1F45, 0x1F48...0x1F4D, 0x1F50...0x1F57, 0x1F59...0x1F59, 0x1F5B...0x1F5B, 0x1F5D...0x1F5D,
        0x1F5F...0x1F7D, 0x1F80...0x1FB4, 0x1FB6...0x1FBC, 0x1FBE...0x1FBE, 0x1FC2...0x1FC4, 0x1FC6...0x1FCC,
        0x1FD0...0x1FD3, 0x1FD6...0x1FDB, 0x1FE0...0x1FEC, 0x1FF2...0x1FF4, 0x1FF6...0x1FFC, 0x2102...0x2102,
        0x2107...0x2107, 0x210A...0x2113, 0x2115...0x2115, 0x2119...0x211D, 0x2124...0x2124, 0x2126...0x2126,
        0x2128...0x2128, 0x212A...0x212D, 0x212F...0x2134, 0x2139...0x2139, 0x213C...0x213F, 0x2145...0x2149,
        0x214E...0x214E, 0x2183...0x2184, 0x2C00...0x2C7B, 0x2C7E...0x2CE4, 0x2CEB...0x2CEE, 0x2CF2...0x2CF3,
        0xA640...0xA66D, 0xA680...0xA69B, 0xA722...0xA76F, 0xA771...0xA787, 0xA78B...0xA78E, 0xAB70...0xABBF,
        0xFB00...0xFB06, 0xFB13...0xFB17, 0xFF21...0xFF3A, 0xFF41...0xFF5A, 0x10400...0x1044F,
        0x104B0...0x104D3, 0x104D8...0x104FB, 0x10C80...0x10CB2, 0x10CC0...0x10CF2, 0x118A0...0x118DF,
        0x1E900...0x1E943,
    ]
    /// `[!-/:-~！-／：-～‘-‟　-。]`: ASCII punctuation and letters, their full-width forms, quotes.
    static let punctuation: [ClosedRange<UInt32>] = [
        0x21...0x2F, 0x3A...0x7E, 0xFF01...0xFF0F, 0xFF1A...0xFF5E, 0x2018...0x201F, 0x3000...0x3002,
    ]
    /// `[一-龥ࠀ-一가-퟿]`
    static let cjkHangul: [ClosedRange<UInt32>] = [0x4E00...0x9FA5, 0x0800...0x4E00, 0xAC00...0xD7FF]
    /// `[一-龥぀-ゟ゠-ヿ]`: CJK ideographs, Hiragana, Katakana.
    static let hanKana: [ClosedRange<UInt32>] = [0x4E00...0x9FA5, 0x3040...0x309F, 0x30A0...0x30FF]
}
