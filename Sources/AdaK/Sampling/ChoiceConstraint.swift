/// Keeps sampled text inside a set of allowed answers: a list of texts ("yes" / "no", labels) or
/// the language of a regular expression (`RegexDFA`). A token is allowed while the text sampled
/// so far plus its piece can still become an answer; once the text is a whole answer,
/// end-of-generation tokens are allowed too (and only they, when nothing continues it). The
/// byte-level counterpart, for C hosts, of a grammar mask.
struct ChoiceConstraint {
    enum Answers {
        case texts([[UInt8]])
        case regex(RegexDFA)
    }
    let answers: Answers
    /// Text of the tokens sampled under the constraint so far.
    var text: [UInt8] = []

    init(_ choices: [[UInt8]]) throws {
        guard !choices.isEmpty, choices.count <= 4096 else {
            throw AdaKError.invalidArgument("choices: 1 to 4096 texts (\(choices.count) given)")
        }
        guard choices.allSatisfy({ !$0.isEmpty && $0.count <= 4096 }) else {
            throw AdaKError.invalidArgument("choices: every text needs 1 to 4096 bytes")
        }
        answers = .texts(choices)
    }

    /// Answers that match `pattern` as a whole (see `RegexDFA` for the syntax).
    init(regex pattern: String) throws {
        answers = .regex(try RegexDFA(pattern))
    }

    /// Sets every token the answers do not allow next to -infinity. `pieces` are the tokens'
    /// texts (`Tokenizer.piece(_, special: false)`).
    func mask(_ row: UnsafeMutableBufferPointer<Float>, pieces: [[UInt8]], tokenizer: Tokenizer) {
        switch answers {
        case .texts(let choices):
            let open = choices.filter { $0.count >= text.count && $0.starts(with: text) }
            let complete = open.contains { $0.count == text.count }
            for i in row.indices where row[i] > -Float.infinity {
                let p = pieces[i]
                var ok = false
                if p.isEmpty {
                    ok = complete && tokenizer.isEndOfGeneration(Int32(i))
                } else {
                    let n = text.count + p.count
                    ok = open.contains { $0.count >= n && $0[text.count..<n].elementsEqual(p) }
                }
                if !ok { row[i] = -.infinity }
            }
        case .regex(let dfa):
            let state = dfa.run(text)
            let complete = state.map { dfa.accepting[Int($0)] } ?? false
            for i in row.indices where row[i] > -Float.infinity {
                let p = pieces[i]
                let ok: Bool
                if let state {
                    ok = p.isEmpty ? complete && tokenizer.isEndOfGeneration(Int32(i)) : dfa.run(p, from: state) != nil
                } else {
                    ok = false
                }
                if !ok { row[i] = -.infinity }
            }
        }
    }
}
