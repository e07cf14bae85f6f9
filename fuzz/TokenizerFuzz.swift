// libFuzzer harness for tokenizer input: arbitrary bytes are tokenized (plain, with special
// tokens parsed, with BOS/EOS added) and detokenized with both fixture vocabularies, a
// byte-level BPE one (SmolLM2) and a SentencePiece one (Gemma 3). The first input byte picks the
// vocabulary and the flags; the rest is the text. Also checks what must always hold: every id
// is in range and plain valid-UTF-8 text round-trips byte for byte through byte-level BPE.
import AdaK
#if canImport(Glibc)
import Glibc
#endif

/// The vocabularies, loaded once (ADAK_FUZZ_VOCABS: colon-separated .vocab.gguf paths).
nonisolated(unsafe) let fuzzTokenizers: [(name: String, tokenizer: Tokenizer, isBPE: Bool)] = {
    guard let list = getenv("ADAK_FUZZ_VOCABS").map({ String(cString: $0) }) else {
        fputs("tokenizer fuzz: set ADAK_FUZZ_VOCABS to the .vocab.gguf files\n", stderr)
        exit(2)
    }
    var result: [(String, Tokenizer, Bool)] = []
    for path in list.split(separator: ":").map(String.init) {
        do {
            let gguf = try GGUFFile(path: path)
            let model = gguf.string("tokenizer.ggml.model") ?? ""
            result.append((path, try Tokenizer(gguf: gguf), model == "gpt2"))
        } catch {
            fputs("tokenizer fuzz: cannot load \(path): \(error)\n", stderr)
            exit(2)
        }
    }
    return result
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func tokenizerFuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1, !fuzzTokenizers.isEmpty else { return 0 }
    let control = data[0]
    let text = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let entry = fuzzTokenizers[Int(control & 0x0f) % fuzzTokenizers.count]
    let addSpecial = control & 0x10 != 0, parseSpecial = control & 0x20 != 0
    let t = entry.tokenizer
    let ids = t.tokenize(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
    for id in ids where !t.isValid(id) {
        fatalError("tokenizer fuzz: \(entry.name) produced out-of-range id \(id)")
    }
    let back = t.detokenize(ids, removeSpecial: control & 0x40 != 0, unparseSpecial: control & 0x80 != 0)
    // Byte-level BPE round-trips valid UTF-8 exactly; invalid sequences become U+FFFD first
    // (as in llama.cpp), and bytes the vocabulary has no byte token for are dropped (as in
    // llama.cpp; SmolLM2 lacks 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, ...), so only valid text made
    // of representable bytes is held to the exact round trip.
    if entry.isBPE, !addSpecial, !parseSpecial, control & 0x80 == 0,
       String(validating: text, as: UTF8.self) != nil,
       text.allSatisfy({ representableBytes(t).contains($0) }), back != text {
        fatalError("tokenizer fuzz: \(entry.name) does not round-trip \(text) (got \(back))")
    }
    for id in ids.prefix(8) { _ = t.piece(id, special: true) }
    return 0
}

/// The bytes a byte-level BPE tokenizer can reproduce: each byte is probed inside a shortest valid
/// UTF-8 sequence that contains it, which must come back unchanged.
func representableBytes(_ t: Tokenizer) -> Set<UInt8> {
    if let cached = representableCache[ObjectIdentifier(t)] { return cached }
    var ok = Set<UInt8>()
    for b in 0...255 {
        let x = UInt8(b)
        let probe: [UInt8]
        switch x {
        case 0x00...0x7F: probe = [x]
        case 0x80...0xBF: probe = [0xC2, x]
        case 0xC2...0xDF: probe = [x, 0x80]
        case 0xE0: probe = [x, 0xA0, 0x80]
        case 0xE1...0xEF: probe = [x, 0x80, 0x80]
        case 0xF0: probe = [x, 0x90, 0x80, 0x80]
        case 0xF1...0xF4: probe = [x, 0x80, 0x80, 0x80]
        default: continue  // never in valid UTF-8
        }
        if t.detokenize(t.tokenize(probe, addSpecial: false, parseSpecial: false), removeSpecial: false,
                        unparseSpecial: false) == probe {
            ok.insert(x)
        }
    }
    representableCache[ObjectIdentifier(t)] = ok
    return ok
}

nonisolated(unsafe) var representableCache: [ObjectIdentifier: Set<UInt8>] = [:]
