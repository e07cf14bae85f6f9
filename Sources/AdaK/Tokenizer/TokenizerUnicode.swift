// Unicode helpers shared by the tokenizers: llama.cpp-compatible UTF-8 decoding, code point
// category flags (for the hand-written pre-tokenizer scanners) and GPT-2's byte <-> unicode map.

/// Category bits of one code point, as the pre-tokenizer regexes see them.
struct CodepointFlags: OptionSet {
    let rawValue: UInt8
    static let letter = CodepointFlags(rawValue: 1 << 0)      // \p{L}
    static let number = CodepointFlags(rawValue: 1 << 1)      // \p{N}
    static let punctuation = CodepointFlags(rawValue: 1 << 2) // \p{P}
    static let symbol = CodepointFlags(rawValue: 1 << 3)      // \p{S}
    static let mark = CodepointFlags(rawValue: 1 << 4)        // \p{M}
    static let other = CodepointFlags(rawValue: 1 << 5)       // separators, controls, unassigned
    static let whitespace = CodepointFlags(rawValue: 1 << 6)  // \s

    /// Flags of a code point. Every code point (also unassigned and out-of-range ones) has at
    /// least one bit set, so an empty value means "outside the text".
    static func of(_ cp: UInt32) -> CodepointFlags {
        if cp < 128 { return asciiTable[Int(cp)] }
        return nonASCII(cp)
    }

    private static let asciiTable: [CodepointFlags] = (0..<128).map { nonASCII(UInt32($0)) }

    private static func nonASCII(_ cp: UInt32) -> CodepointFlags {
        var f: CodepointFlags
        if let s = Unicode.Scalar(cp) {
            switch s.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                f = .letter
            case .decimalNumber, .letterNumber, .otherNumber:
                f = .number
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                 .initialPunctuation, .finalPunctuation, .otherPunctuation:
                f = .punctuation
            case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
                f = .symbol
            case .nonspacingMark, .spacingMark, .enclosingMark:
                f = .mark
            default:
                f = .other
            }
        } else {
            f = .other  // surrogates and values beyond U+10FFFF
        }
        if isWhitespace(cp) { f.insert(.whitespace) }
        return f
    }

    /// The White_Space set llama.cpp uses for `\s`.
    private static func isWhitespace(_ cp: UInt32) -> Bool {
        switch cp {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}

enum UTF8Util {
    /// Length of the UTF-8 sequence announced by a lead byte (1 for continuation bytes), as
    /// llama.cpp's `unicode_len_utf8` computes it.
    @inline(__always)
    static func sequenceLength(_ lead: UInt8) -> Int {
        switch lead >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    /// Decodes bytes to code points like llama.cpp's `unicode_cpts_from_utf8`: a malformed or
    /// truncated sequence yields U+FFFD and consumes one byte. Overlong forms and surrogates are
    /// not rejected (llama.cpp does not reject them either).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(bytes.count)
        let n = bytes.count
        var i = 0
        func cont(_ k: Int) -> Bool { k < n && bytes[k] & 0xC0 == 0x80 }
        while i < n {
            let b0 = bytes[i]
            if b0 & 0x80 == 0 {
                out.append(UInt32(b0)); i += 1
            } else if b0 & 0x40 == 0 {
                out.append(0xFFFD); i += 1
            } else if b0 & 0x20 == 0 {
                if cont(i + 1) {
                    out.append(UInt32(b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)); i += 2
                } else { out.append(0xFFFD); i += 1 }
            } else if b0 & 0x10 == 0 {
                if cont(i + 1) && cont(i + 2) {
                    out.append(UInt32(b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F))
                    i += 3
                } else { out.append(0xFFFD); i += 1 }
            } else if b0 & 0x08 == 0 {
                if cont(i + 1) && cont(i + 2) && cont(i + 3) {
                    out.append(UInt32(b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                               | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F))
                    i += 4
                } else { out.append(0xFFFD); i += 1 }
            } else {
                out.append(0xFFFD); i += 1
            }
        }
        return out
    }

    /// Appends the UTF-8 encoding of a code point (values beyond U+10FFFF become U+FFFD;
    /// surrogates are encoded as three bytes like llama.cpp does).
    @inline(__always)
    static func append(_ cp: UInt32, to out: inout [UInt8]) {
        switch cp {
        case 0..<0x80:
            out.append(UInt8(cp))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(cp >> 6)); out.append(0x80 | UInt8(cp & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(cp >> 12)); out.append(0x80 | UInt8((cp >> 6) & 0x3F))
            out.append(0x80 | UInt8(cp & 0x3F))
        case 0x10000...0x10FFFF:
            out.append(0xF0 | UInt8(cp >> 18)); out.append(0x80 | UInt8((cp >> 12) & 0x3F))
            out.append(0x80 | UInt8((cp >> 6) & 0x3F)); out.append(0x80 | UInt8(cp & 0x3F))
        default:
            out.append(0xEF); out.append(0xBF); out.append(0xBD)
        }
    }
}

/// GPT-2's reversible byte <-> printable-unicode mapping used by byte-level BPE vocabularies.
enum GPT2Bytes {
    /// Code point that stands for each byte.
    static let byteToCodepoint: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                map[b] = UInt32(b)
            } else {
                map[b] = 256 + n
                n += 1
            }
        }
        return map
    }()

    /// The byte a code point stands for, or nil if it is not part of the mapping.
    static func byte(for cp: UInt32) -> UInt8? {
        if cp < 256 {
            let b = Int(cp)
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) { return UInt8(b) }
            return nil
        }
        return codepointToByte[cp]
    }

    private static let codepointToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, cp) in byteToCodepoint.enumerated() where cp >= 256 { m[cp] = UInt8(b) }
        return m
    }()

    /// UTF-8 bytes of the code point standing for `b`.
    static let encodedByte: [[UInt8]] = byteToCodepoint.map { cp in
        var out: [UInt8] = []
        UTF8Util.append(cp, to: &out)
        return out
    }
}
