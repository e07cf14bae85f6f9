import Foundation

/// Paths to Tests/Fixtures (committed reference data; see its README) and a reader for .npy files.
enum Fixtures {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let root = repoRoot + "/Tests/Fixtures"

    static func path(_ rel: String) -> String { root + "/" + rel }

    /// The demo model downloaded by `make setup` (nil when absent).
    static var smolLM2: String? {
        let env = ProcessInfo.processInfo.environment
        let cache = env["ADAK_CACHE"] ?? (repoRoot + "/.cache")
        for p in [env["ADAK_SMOLLM2"], cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache + "/SmolLM2-135M-Instruct.Q4_1.gguf"] {
            if let p, FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }

    struct Array<T> {
        var shape: [Int]
        var values: [T]
    }

    /// Reads a little-endian C-order .npy of '<f4' or '<i4'.
    static func npy<T>(_ rel: String, as: T.Type) throws -> Array<T> {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(rel)))
        guard data.count > 10, data.prefix(6) == Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) else {
            throw NSError(domain: "npy", code: 1)
        }
        let major = data[6]
        let headerLen: Int
        let start: Int
        if major == 1 {
            headerLen = Int(data[8]) | Int(data[9]) << 8
            start = 10
        } else {
            headerLen = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
            start = 12
        }
        let header = String(decoding: data[start..<start + headerLen], as: UTF8.self)
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw NSError(domain: "npy", code: 2)
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = shape.reduce(1, *)
        let body = data.subdata(in: (start + headerLen)..<data.count)
        precondition(body.count == count * MemoryLayout<T>.size, "npy size mismatch for \(rel)")
        let values = body.withUnsafeBytes { raw in
            (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
        return Array(shape: shape, values: values)
    }
}
