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
}

/// A pre-tokenizer: a chain of split rules.
struct PreTokenizer: Sendable {
    let rules: [PreTokenizerRule]

    /// The rule chain llama.cpp uses for a `tokenizer.ggml.pre` value, with the vocabulary flags
    /// that llama.cpp sets alongside it; nil for pre-tokenizers this implementation lacks.
    static func forPre(_ pre: String) -> (PreTokenizer, ignoreMerges: Bool, cleanSpaces: Bool, addBOS: Bool?)? {
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
        case "dbrx", "smaug-bpe", "glm4", "chatglm-bpe":
            return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), false, true, nil)
        case "stablelm2", "megrez":
            return (PreTokenizer(rules: [.llama3(maxDigits: 1)]), false, true, nil)
        default:
            if gpt2Family.contains(pre) { return (PreTokenizer(rules: [.gpt2]), false, true, nil) }
            if starcoderFamily.contains(pre) { return (PreTokenizer(rules: [.singleNumbers, .gpt2]), false, true, nil) }
            if llama3Family.contains(pre) { return (PreTokenizer(rules: [.llama3(maxDigits: 3)]), true, true, true) }
            if qwen2Family.contains(pre) { return (PreTokenizer(rules: [.llama3(maxDigits: 1)]), false, false, nil) }
            return nil
        }
    }

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
