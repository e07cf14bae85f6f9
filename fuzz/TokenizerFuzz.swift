// libFuzzer harness for tokenizer input: arbitrary bytes are tokenized (plain, with special
// tokens parsed, with BOS/EOS added) and detokenized with both fixture vocabularies, a
// byte-level BPE one (SmolLM2) and a SentencePiece one (Gemma 3). The first input byte picks the
// vocabulary and the flags; the rest is the text. Also checks what must always hold: every id
// is in range and plain BPE text round-trips byte for byte.
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
    if entry.isBPE, !addSpecial, !parseSpecial, control & 0x80 == 0, back != text {
        fatalError("tokenizer fuzz: \(entry.name) does not round-trip \(text) (got \(back))")
    }
    for id in ids.prefix(8) { _ = t.piece(id, special: true) }
    return 0
}
