// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), as llama.cpp's llm_tokenizer_bpe_session does
// it: pre-tokenize, map every byte to its GPT-2 code point, then repeatedly merge the adjacent
// pair with the lowest merge rank (ties: leftmost). Symbols are ids, not strings: vocabulary
// entries keep their token id, and merge parts that are not in the vocabulary get extra ids.

/// A binary min-heap over entries ordered by a 64-bit key.
struct MinHeap<Element> {
    private(set) var items: [Element] = []
    let key: (Element) -> UInt64

    init(key: @escaping (Element) -> UInt64) { self.key = key }

    var isEmpty: Bool { items.isEmpty }
    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        let k = key(e)
        while i > 0 {
            let parent = (i - 1) / 2
            if key(items[parent]) <= k { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            let k = key(last)
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var c = l
                if l + 1 < n && key(items[l + 1]) < key(items[l]) { c = l + 1 }
                if key(items[c]) >= k { break }
                items.swapAt(i, c)
                i = c
            }
        }
        return top
    }
}

struct BPEModel: Sendable {
    let preTokenizer: PreTokenizer
    let ignoreMerges: Bool
    /// (left symbol << 32 | right symbol) -> (rank << 32 | merged symbol)
    private let pairs: [UInt64: UInt64]
    /// Symbol of each raw byte (its GPT-2 code point as a token, or an extra symbol).
    private let byteSymbol: [Int32]
    /// GPT-2-encoded text of the extra symbols (id - vocabulary size).
    private let extraText: [[UInt8]]
    private let vocabSize: Int32

    init(vocab: Vocab, merges: [String], preTokenizer: PreTokenizer, ignoreMerges: Bool) {
        self.preTokenizer = preTokenizer
        self.ignoreMerges = ignoreMerges
        let n = Int32(vocab.count)
        vocabSize = n
        var extraIds: [[UInt8]: Int32] = [:]
        var extra: [[UInt8]] = []
        func symbol(_ text: [UInt8]) -> Int32 {
            if let id = vocab.id(of: text) { return id }
            if let id = extraIds[text] { return id }
            let id = n + Int32(extra.count)
            extra.append(text)
            extraIds[text] = id
            return id
        }
        byteSymbol = (0..<256).map { symbol(GPT2Bytes.encodedByte[$0]) }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            // llama.cpp splits at the first space after the first byte.
            let bytes = Array(merge.utf8)
            guard bytes.count >= 2, let sp = bytes[1...].firstIndex(of: 0x20) else { continue }
            let left = Array(bytes[..<sp]), right = Array(bytes[(sp + 1)...])
            guard !right.isEmpty else { continue }
            let key = UInt64(UInt32(bitPattern: symbol(left))) << 32 | UInt64(UInt32(bitPattern: symbol(right)))
            if table[key] != nil { continue }  // the first rank of a duplicated merge wins
            let merged = symbol(left + right)
            table[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        }
        pairs = table
        extraText = extra
    }

    private struct Bigram {
        var key: UInt64      // rank << 32 | left index
        var right: Int32
        var leftSym: Int32
        var rightSym: Int32
    }

    /// Appends the tokens of one raw-text fragment.
    func encode(_ text: UnsafeBufferPointer<UInt8>, vocab: Vocab, into output: inout [Int32]) {
        let cps = UTF8Util.decode(text)
        let flags = cps.map(CodepointFlags.of)
        let lengths = preTokenizer.split(cps, flags)

        var word: [UInt8] = []
        var syms: [Int32] = [], prev: [Int32] = [], next: [Int32] = []
        var heap = MinHeap<Bigram>(key: { $0.key })
        var start = 0
        for len in lengths {
            word.removeAll(keepingCapacity: true)
            for i in start..<(start + len) { UTF8Util.append(cps[i], to: &word) }
            start += len
            if word.isEmpty { continue }

            if ignoreMerges {
                var encoded: [UInt8] = []
                for b in word { encoded += GPT2Bytes.encodedByte[Int(b)] }
                if let id = vocab.id(of: encoded) { output.append(id); continue }
            }
            if word.count == 1 {
                emit(byteSymbol[Int(word[0])], vocab: vocab, into: &output)
                continue
            }

            let m = word.count
            syms.removeAll(keepingCapacity: true)
            prev.removeAll(keepingCapacity: true)
            next.removeAll(keepingCapacity: true)
            for (i, b) in word.enumerated() {
                syms.append(byteSymbol[Int(b)])
                prev.append(Int32(i - 1))
                next.append(i + 1 < m ? Int32(i + 1) : -1)
            }
            heap.removeAll()
            func addPair(_ l: Int32, _ r: Int32) {
                guard l >= 0, r >= 0 else { return }
                let ls = syms[Int(l)], rs = syms[Int(r)]
                let k = UInt64(UInt32(bitPattern: ls)) << 32 | UInt64(UInt32(bitPattern: rs))
                guard let v = pairs[k] else { return }
                heap.push(Bigram(key: (v >> 32) << 32 | UInt64(UInt32(l)), right: r, leftSym: ls, rightSym: rs))
            }
            for i in 1..<m { addPair(Int32(i - 1), Int32(i)) }
            while let bg = heap.pop() {
                let l = Int(UInt32(truncatingIfNeeded: bg.key)), r = Int(bg.right)
                // stale if either side was merged away or has grown since the pair was queued
                guard syms[l] == bg.leftSym, syms[r] == bg.rightSym, next[l] == bg.right else { continue }
                let k = UInt64(UInt32(bitPattern: bg.leftSym)) << 32 | UInt64(UInt32(bitPattern: bg.rightSym))
                syms[l] = Int32(truncatingIfNeeded: pairs[k]! & 0xFFFF_FFFF)
                syms[r] = -1
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
                addPair(prev[l], Int32(l))
                addPair(Int32(l), next[l])
            }
            var i: Int32 = 0
            while i >= 0 {
                emit(syms[Int(i)], vocab: vocab, into: &output)
                i = next[Int(i)]
            }
        }
    }

    /// A finished symbol: its token, or (not in the vocabulary) the single-byte tokens of its
    /// encoded text that exist, as llama.cpp does.
    @inline(__always)
    private func emit(_ sym: Int32, vocab: Vocab, into output: inout [Int32]) {
        if sym < vocabSize { output.append(sym); return }
        for b in extraText[Int(sym - vocabSize)] {
            if let id = vocab.id(of: [b]) { output.append(id) }
        }
    }
}
