// main() for the tokenizer fuzz harness without libFuzzer: replays files and directories
// (the regression corpus) through the same checks (scripts/sanitize.sh links it under ASan).
#if canImport(Glibc)
import Glibc
#endif

@main
struct TokenizerReplay {
    static func replay(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            guard let dir = opendir(path) else { return 0 }
            defer { closedir(dir) }
            var n = 0
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if !name.hasPrefix(".") { n += replay(path + "/" + name) }
            }
            return n
        }
        guard let f = fopen(path, "rb") else { return 0 }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = fread(&buffer, 1, buffer.count, f)
            if got <= 0 { break }
            bytes += buffer[0..<got]
        }
        bytes.withUnsafeBufferPointer { p in
            if let base = p.baseAddress, p.count > 0 { _ = tokenizerFuzzOne(base, p.count) }
        }
        return 1
    }

    static func main() {
        var n = 0
        for path in CommandLine.arguments.dropFirst() { n += replay(path) }
        print("tokenizer_replay: \(n) inputs replayed with \(fuzzTokenizers.count) vocabularies, no crash")
    }
}
