/// Keeps sampled text inside a set of allowed answers ("yes" / "no", a list of labels): a token
/// is allowed while the text sampled so far plus its piece is a prefix of one of the choices;
/// once the text is a whole choice, end-of-generation tokens are allowed too (and only they,
/// when no choice continues it). The byte-level counterpart, for C hosts, of a grammar mask.
struct ChoiceConstraint {
    let choices: [[UInt8]]
    /// Text of the tokens sampled under the constraint so far.
    var text: [UInt8] = []

    init(_ choices: [[UInt8]]) throws {
        guard !choices.isEmpty, choices.count <= 4096 else {
            throw AdaKError.invalidArgument("choices: 1 to 4096 texts (\(choices.count) given)")
        }
        guard choices.allSatisfy({ !$0.isEmpty && $0.count <= 4096 }) else {
            throw AdaKError.invalidArgument("choices: every text needs 1 to 4096 bytes")
        }
        self.choices = choices
    }

    /// Sets every token the choices do not allow next to -infinity. `pieces` are the tokens'
    /// texts (`Tokenizer.piece(_, special: false)`).
    func mask(_ row: UnsafeMutableBufferPointer<Float>, pieces: [[UInt8]], tokenizer: Tokenizer) {
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
    }
}
