/// A regular expression compiled to a DFA over UTF-8 bytes, for constrained sampling
/// (`Session.setRegex`, `adak_session_set_regex`): the whole generated text must match it.
///
/// The subset: literal characters (any UTF-8), `.` (any character but `\n`), classes `[a-z_]`
/// and `[^...]` with ranges, `\d \D \w \W \s \S` (ASCII meanings) in and out of classes, escapes
/// `\n \r \t \f \v \0 \xHH \u{H...} \uHHHH` and `\` before any punctuation, groups `(...)` and
/// `(?:...)`, alternation `|`, quantifiers `* + ? {m} {m,} {m,n}` (m, n <= 1000; a lazy `?`
/// after them is accepted and changes nothing, since only the language counts), `^` first and
/// `$` last (the match is always of the whole text). Anything else (look-around, back
/// references, `\b`, `\p{..}`, possessive quantifiers, inline flags) is refused with a message.
struct RegexDFA: Sendable {
    /// next[state * 256 + byte]: the following state, or -1 when no match can follow.
    let next: [Int32]
    /// Whether the text read so far is a whole match.
    let accepting: [Bool]
    static let maxStates = 10_000
    static let maxNFAStates = 200_000

    /// State after `bytes` read from `state` (0 = the start), nil when no match can follow.
    func run<S: Sequence>(_ bytes: S, from state: Int32 = 0) -> Int32? where S.Element == UInt8 {
        var s = state
        for b in bytes {
            s = next[Int(s) << 8 | Int(b)]
            if s < 0 { return nil }
        }
        return s
    }

    init(_ pattern: String) throws {
        var parser = RegexParser(Array(pattern.unicodeScalars))
        let ast = try parser.parse()
        var nfa = NFA()
        let start = nfa.newState()
        let end = try nfa.build(ast, from: start)
        (next, accepting) = try nfa.determinize(start: start, accept: end)
    }
}

/// Syntax tree of a pattern; character sets are code point ranges.
private indirect enum RegexNode {
    case empty
    case set([ClosedRange<UInt32>])
    case concat([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?)
}

private struct RegexParser {
    let s: [Unicode.Scalar]
    var i = 0
    init(_ s: [Unicode.Scalar]) { self.s = s }

    static let maxCount = 1000

    func invalid(_ why: String) -> AdaKError { .invalidArgument("regex: \(why) at offset \(i)") }
    func unsupported(_ what: String) -> AdaKError {
        .unsupported("regex: \(what) (offset \(i)) is not supported; the subset is literals, classes, ., *, +, ?, {m,n}, |, groups")
    }

    mutating func parse() throws -> RegexNode {
        if i < s.count && s[i] == "^" { i += 1 }
        let node = try alternation()
        if i < s.count { throw s[i] == ")" ? invalid("unbalanced ')'") : invalid("unexpected '\(s[i])'") }
        return node
    }

    mutating func alternation() throws -> RegexNode {
        var branches = [try concatenation()]
        while i < s.count && s[i] == "|" {
            i += 1
            branches.append(try concatenation())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func concatenation() throws -> RegexNode {
        var items: [RegexNode] = []
        while i < s.count && s[i] != "|" && s[i] != ")" {
            if s[i] == "$" {
                // the end anchor: only as the pattern's last character (matches are whole-text)
                guard i + 1 == s.count else { throw unsupported("'$' before the end of the pattern") }
                i += 1
                break
            }
            var atom = try self.atom()
            while i < s.count, let (lo, hi) = try quantifier() {
                if i < s.count && s[i] == "?" { i += 1 }  // lazy: same language
                if i < s.count && s[i] == "+" { throw unsupported("a possessive quantifier") }
                atom = .repetition(atom, min: lo, max: hi)
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
    }

    /// `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}` at i (consumed), or nil.
    mutating func quantifier() throws -> (Int, Int?)? {
        switch s[i] {
        case "*": i += 1; return (0, nil)
        case "+": i += 1; return (1, nil)
        case "?": i += 1; return (0, 1)
        case "{":
            i += 1
            let lo = try number()
            var hi: Int? = lo
            if i < s.count && s[i] == "," {
                i += 1
                hi = i < s.count && s[i] == "}" ? nil : try number()
            }
            guard i < s.count && s[i] == "}" else { throw invalid("'{' without a closing '}' (write '\\{' for the character)") }
            i += 1
            if let hi, hi < lo { throw invalid("{\(lo),\(hi)}: the maximum is below the minimum") }
            return (lo, hi)
        default:
            return nil
        }
    }

    mutating func number() throws -> Int {
        var n = 0, digits = 0
        while i < s.count, s[i].isASCII, let d = Int(String(s[i])) {
            n = n * 10 + d
            digits += 1
            i += 1
            if n > Self.maxCount { throw invalid("a repetition count above \(Self.maxCount)") }
        }
        if digits == 0 { throw invalid("a repetition count is missing") }
        return n
    }

    mutating func atom() throws -> RegexNode {
        let c = s[i]
        switch c {
        case "(":
            i += 1
            if i < s.count && s[i] == "?" {
                guard i + 1 < s.count && s[i + 1] == ":" else { throw unsupported("'(?' groups other than '(?:'") }
                i += 2
            }
            let inner = try alternation()
            guard i < s.count && s[i] == ")" else { throw invalid("'(' without a closing ')'") }
            i += 1
            return inner
        case "[":
            i += 1
            return .set(try characterClass())
        case ".":
            i += 1
            return .set(CodepointSet.complement([0x0A...0x0A]))
        case "\\":
            i += 1
            return .set(try escape(inClass: false))
        case "*", "+", "?", "{":
            throw invalid("'\(c)' has nothing to repeat")
        case "^":
            throw unsupported("'^' after the start of the pattern")
        default:
            i += 1
            return .set([c.value...c.value])
        }
    }

    /// After `[`: the class up to its `]`.
    mutating func characterClass() throws -> [ClosedRange<UInt32>] {
        var negate = false
        if i < s.count && s[i] == "^" { negate = true; i += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        var first = true
        while true {
            guard i < s.count else { throw invalid("'[' without a closing ']'") }
            if s[i] == "]" && !first { i += 1; break }
            first = false
            let lo = try classAtom()
            if i + 1 < s.count && s[i] == "-" && s[i + 1] != "]" {
                i += 1
                let hi = try classAtom()
                guard lo.count == 1, hi.count == 1, lo[0].lowerBound == lo[0].upperBound,
                      hi[0].lowerBound == hi[0].upperBound else {
                    throw invalid("a class range needs single characters at both ends")
                }
                guard lo[0].lowerBound <= hi[0].lowerBound else { throw invalid("a class range out of order") }
                ranges.append(lo[0].lowerBound...hi[0].lowerBound)
            } else {
                ranges += lo
            }
        }
        return negate ? CodepointSet.complement(ranges) : CodepointSet.normalize(ranges)
    }

    mutating func classAtom() throws -> [ClosedRange<UInt32>] {
        let c = s[i]
        i += 1
        if c == "\\" { return try escape(inClass: true) }
        if c == "[" && i < s.count && (s[i] == ":" || s[i] == "=" || s[i] == ".") {
            throw unsupported("POSIX classes like [:alpha:]")
        }
        return [c.value...c.value]
    }

    /// After `\`: the characters the escape stands for.
    mutating func escape(inClass: Bool) throws -> [ClosedRange<UInt32>] {
        guard i < s.count else { throw invalid("a pattern ending in '\\'") }
        let c = s[i]
        i += 1
        let digit: [ClosedRange<UInt32>] = [0x30...0x39]
        let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
        let space: [ClosedRange<UInt32>] = [0x09...0x0D, 0x20...0x20]
        switch c {
        case "d": return digit
        case "D": return CodepointSet.complement(digit)
        case "w": return word
        case "W": return CodepointSet.complement(word)
        case "s": return space
        case "S": return CodepointSet.complement(space)
        case "n": return [0x0A...0x0A]
        case "r": return [0x0D...0x0D]
        case "t": return [0x09...0x09]
        case "f": return [0x0C...0x0C]
        case "v": return [0x0B...0x0B]
        case "0": return [0...0]
        case "x": return [try hex(2)]
        case "u":
            if i < s.count && s[i] == "{" {
                i += 1
                var n: UInt32 = 0, digits = 0
                while i < s.count && s[i] != "}" {
                    guard s[i].isASCII, let d = UInt32(String(s[i]), radix: 16), digits < 6 else {
                        throw invalid("a bad \\u{...} escape")
                    }
                    n = n * 16 + d
                    digits += 1
                    i += 1
                }
                guard i < s.count, digits > 0 else { throw invalid("a bad \\u{...} escape") }
                i += 1
                guard n <= 0x10FFFF, !(0xD800...0xDFFF).contains(n) else { throw invalid("\\u{\(String(n, radix: 16))} is not a character") }
                return [n...n]
            }
            return [try hex(4)]
        case "b" where inClass: return [0x08...0x08]
        case "1"..."9": throw unsupported("back references")
        case "b", "B", "A", "z", "Z", "G": throw unsupported("the assertion '\\\(c)'")
        case "p", "P": throw unsupported("Unicode properties (\\p{...})")
        default:
            guard c.isASCII, !(c.properties.isAlphabetic || ("0"..."9").contains(c)) else {
                throw invalid("the unknown escape '\\\(c)'")
            }
            return [c.value...c.value]  // an escaped punctuation character stands for itself
        }
    }

    mutating func hex(_ n: Int) throws -> ClosedRange<UInt32> {
        guard i + n <= s.count else { throw invalid("a short hexadecimal escape") }
        var v: UInt32 = 0
        for _ in 0..<n {
            guard s[i].isASCII, let d = UInt32(String(s[i]), radix: 16) else { throw invalid("a bad hexadecimal escape") }
            v = v * 16 + d
            i += 1
        }
        guard !(0xD800...0xDFFF).contains(v) else { throw invalid("a surrogate code point") }
        return v...v
    }
}

/// Sets of Unicode scalar values as sorted, disjoint ranges.
private enum CodepointSet {
    static let universe: [ClosedRange<UInt32>] = [0...0xD7FF, 0xE000...0x10FFFF]

    static func normalize(_ r: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for x in r.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, x.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, x.upperBound)
            } else {
                out.append(x)
            }
        }
        return out
    }

    static func complement(_ r: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var lo: UInt32 = 0
        for x in normalize(r + [0xD800...0xDFFF]) {
            if x.lowerBound > lo { out.append(lo...(x.lowerBound - 1)) }
            lo = x.upperBound + 1
        }
        if lo <= 0x10FFFF { out.append(lo...0x10FFFF) }
        return out
    }

    /// The UTF-8 encodings of the scalars in lo...hi as sequences of byte ranges.
    static func utf8Sequences(_ lo: UInt32, _ hi: UInt32) -> [[ClosedRange<UInt8>]] {
        // split where the encoded length changes
        for bound: UInt32 in [0x7F, 0x7FF, 0xFFFF] where lo <= bound && hi > bound {
            return utf8Sequences(lo, bound) + utf8Sequences(bound + 1, hi)
        }
        if hi <= 0x7F { return [[UInt8(lo)...UInt8(hi)]] }
        let n = hi <= 0x7FF ? 2 : (hi <= 0xFFFF ? 3 : 4)
        // split until every byte position ranges independently
        for k in 1..<n {
            let m: UInt32 = (1 << (6 * UInt32(k))) - 1
            if lo & ~m != hi & ~m {
                if lo & m != 0 { return utf8Sequences(lo, lo | m) + utf8Sequences((lo | m) + 1, hi) }
                if hi & m != m { return utf8Sequences(lo, (hi & ~m) - 1) + utf8Sequences(hi & ~m, hi) }
            }
        }
        let a = encode(lo), b = encode(hi)
        return [(0..<a.count).map { a[$0]...b[$0] }]
    }

    static func encode(_ c: UInt32) -> [UInt8] { Array(String(Unicode.Scalar(c)!).utf8) }
}

/// Thompson NFA over bytes: epsilon edges and byte-range edges.
private struct NFA {
    var eps: [[Int32]] = []
    var edges: [[(lo: UInt8, hi: UInt8, to: Int32)]] = []

    mutating func newState() -> Int {
        eps.append([])
        edges.append([])
        return eps.count - 1
    }

    mutating func checkSize() throws {
        if eps.count > RegexDFA.maxNFAStates {
            throw AdaKError.invalidArgument("regex: the pattern is too large (more than \(RegexDFA.maxNFAStates) automaton states)")
        }
    }

    /// Adds `node` after state `s`; returns the state where it ends.
    mutating func build(_ node: RegexNode, from s: Int) throws -> Int {
        try checkSize()
        switch node {
        case .empty:
            return s
        case .set(let ranges):
            let e = newState()
            for r in ranges {
                for seq in CodepointSet.utf8Sequences(r.lowerBound, r.upperBound) {
                    var cur = s
                    for (k, br) in seq.enumerated() {
                        let to = k == seq.count - 1 ? e : newState()
                        edges[cur].append((br.lowerBound, br.upperBound, Int32(to)))
                        cur = to
                    }
                }
            }
            return e
        case .concat(let items):
            var cur = s
            for n in items { cur = try build(n, from: cur) }
            return cur
        case .alternation(let branches):
            let e = newState()
            for b in branches {
                let start = newState()
                eps[s].append(Int32(start))
                eps[try build(b, from: start)].append(Int32(e))
            }
            return e
        case .repetition(let n, let lo, let hi):
            var cur = s
            for _ in 0..<lo { cur = try build(n, from: cur) }
            if let hi {
                for _ in lo..<hi {
                    let e = newState()
                    eps[cur].append(Int32(e))
                    let start = newState()
                    eps[cur].append(Int32(start))
                    eps[try build(n, from: start)].append(Int32(e))
                    cur = e
                }
                return cur
            }
            let loop = newState()
            eps[cur].append(Int32(loop))
            let start = newState()
            eps[loop].append(Int32(start))
            eps[try build(n, from: start)].append(Int32(loop))
            return loop
        }
    }

    func closure(_ states: [Int32]) -> [Int32] {
        var seen = Set(states)
        var stack = states
        while let x = stack.popLast() {
            for y in eps[Int(x)] where seen.insert(y).inserted { stack.append(y) }
        }
        return seen.sorted()
    }

    /// Subset construction; states from which no accepting state can be reached become -1.
    func determinize(start: Int, accept: Int) throws -> ([Int32], [Bool]) {
        var index: [[Int32]: Int32] = [:]
        var sets: [[Int32]] = []
        var next: [Int32] = []
        func add(_ set: [Int32]) throws -> Int32 {
            if let k = index[set] { return k }
            guard sets.count < RegexDFA.maxStates else {
                throw AdaKError.invalidArgument("regex: the pattern needs more than \(RegexDFA.maxStates) DFA states")
            }
            let k = Int32(sets.count)
            index[set] = k
            sets.append(set)
            next += [Int32](repeating: -1, count: 256)
            return k
        }
        _ = try add(closure([Int32(start)]))
        var k = 0
        while k < sets.count {
            var targets = [[Int32]](repeating: [], count: 256)
            for st in sets[k] {
                for e in edges[Int(st)] {
                    for b in Int(e.lo)...Int(e.hi) { targets[b].append(e.to) }
                }
            }
            for b in 0..<256 where !targets[b].isEmpty {
                next[k << 8 | b] = try add(closure(targets[b]))
            }
            k += 1
        }
        let accepting = sets.map { $0.contains(Int32(accept)) }
        // live states: those that can still reach an accepting one
        var from = [[Int32]](repeating: [], count: sets.count)
        for j in next.indices where next[j] >= 0 { from[Int(next[j])].append(Int32(j >> 8)) }
        var live = accepting
        var stack = (0..<sets.count).filter { accepting[$0] }
        while let t = stack.popLast() {
            for s in from[t] where !live[Int(s)] {
                live[Int(s)] = true
                stack.append(Int(s))
            }
        }
        for j in next.indices where next[j] >= 0 && !live[Int(next[j])] { next[j] = -1 }
        if !live[0] { throw AdaKError.invalidArgument("regex: the pattern matches no text at all") }
        return (next, accepting)
    }
}
