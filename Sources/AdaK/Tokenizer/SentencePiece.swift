// SentencePiece-style vocabularies (`tokenizer.ggml.model = "llama"`), as llama.cpp's
// llm_tokenizer_spm_session does it: start from UTF-8 characters, repeatedly merge the adjacent
// pair whose concatenation is a vocabulary entry with the highest score (ties: leftmost), and
// emit every final piece that is not a token as byte-fallback tokens `<0xXX>`.

struct SPMModel: Sendable {
    /// Token of each byte: `<0xXX>`, else the one-byte token, else nil.
    private let byteToken: [Int32?]

    init(vocab: Vocab) {
        let hex = Array("0123456789ABCDEF".utf8)
        byteToken = (0..<256).map { b in
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]
            return vocab.id(of: name) ?? vocab.id(of: [UInt8(b)])
        }
    }

    private struct Bigram {
        var key: UInt64   // descending score, then ascending left index
        var right: Int32
        var size: Int32
    }

    /// Order-preserving key: a higher score gives a smaller key.
    @inline(__always)
    private static func scoreKey(_ score: Float, left: Int32) -> UInt64 {
        let s = score == 0 ? Float(0) : score  // -0 and +0 compare equal
        let bits = s.bitPattern
        let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(~ascending) << 32 | UInt64(UInt32(bitPattern: left))
    }

    /// Appends the tokens of `text` (spaces already escaped as U+2581).
    func encode(_ text: [UInt8], vocab: Vocab, into output: inout [Int32]) {
        guard !text.isEmpty else { return }
        var start: [Int32] = [], len: [Int32] = [], prev: [Int32] = [], next: [Int32] = []
        var offs = 0
        while offs < text.count {
            let n = min(UTF8Util.sequenceLength(text[offs]), text.count - offs)
            prev.append(Int32(start.count) - 1)
            start.append(Int32(offs))
            len.append(Int32(n))
            offs += n
            next.append(offs == text.count ? -1 : Int32(start.count))
        }
        var heap = MinHeap<Bigram>(key: { $0.key })
        text.withUnsafeBufferPointer { buf in
            func tryAdd(_ l: Int32, _ r: Int32) {
                guard l >= 0, r >= 0 else { return }
                let s = Int(start[Int(l)]), size = Int(len[Int(l)] + len[Int(r)])
                guard let id = vocab.id(of: UnsafeBufferPointer(rebasing: buf[s..<(s + size)])) else { return }
                heap.push(Bigram(key: Self.scoreKey(vocab.scores[Int(id)], left: l), right: r, size: Int32(size)))
            }
            for i in 1..<start.count { tryAdd(Int32(i - 1), Int32(i)) }
            while let bg = heap.pop() {
                let l = Int(UInt32(truncatingIfNeeded: bg.key)), r = Int(bg.right)
                guard len[l] != 0, len[r] != 0, len[l] + len[r] == bg.size else { continue }
                len[l] += len[r]
                len[r] = 0
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
                tryAdd(prev[l], Int32(l))
                tryAdd(Int32(l), next[l])
            }
            var i: Int32 = 0
            while i >= 0 {
                let s = Int(start[Int(i)]), e = s + Int(len[Int(i)])
                if let id = vocab.id(of: UnsafeBufferPointer(rebasing: buf[s..<e])) {
                    output.append(id)
                } else {
                    for b in buf[s..<e] {
                        if let id = byteToken[Int(b)] { output.append(id) }
                    }
                }
                i = next[Int(i)]
            }
        }
    }
}
