import AdaK
import CAdaKKernels
import Foundation
import XCTest

/// `adak quantize` against llama.cpp's quantizer (references made by
/// Tests/Fixtures/tools/make_quant_refs.py, see Tests/Fixtures/README.md): every row quantiser on
/// random and edge-case rows, and whole files (every tensor's hash and the file's hash).
final class QuantizeTests: XCTestCase {
    /// GGML type numbers of rows.json's type names.
    static let rowTypes: [String: Int32] = [
        "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11,
        "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ4_NL": 20, "IQ4_XS": 23, "MXFP4": 39,
    ]

    static func hexBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count / 2)
        var hi: UInt8? = nil
        for c in s.utf8 {
            let v = c <= 57 ? c - 48 : (c | 0x20) - 87
            if let h = hi { out.append(h << 4 | v); hi = nil } else { hi = v }
        }
        return out
    }

    /// Each quantiser on rows of 512 (random, all zero, one huge value, tiny, all positive, half
    /// zero, coarse steps, one value that overflows the scale, one NaN): same bytes as ggml's
    /// ggml_quantize_chunk, and rejected exactly when ggml_validate_row_data rejects ggml's row.
    func testRowsMatchLlamaCpp() throws {
        let refs = try JSON.parse(file: Fixtures.path("quant/rows.json"))
        let n = try XCTUnwrap(refs["n"]?.intValue)
        let rows = try XCTUnwrap(refs["rows"]?.objectValue)
        let types = try XCTUnwrap(refs["refs"]?.objectValue)
        XCTAssertEqual(Set(types.keys), Set(Self.rowTypes.keys))
        var checked = 0
        for (typeName, perRow) in types.entries {
            let type = try XCTUnwrap(Self.rowTypes[typeName])
            for (rowName, ref) in try XCTUnwrap(perRow.objectValue).entries {
                let bytes = Self.hexBytes(try XCTUnwrap(rows[rowName]?.stringValue))
                let x = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                XCTAssertEqual(x.count, n)
                var out = [UInt8](repeating: 0, count: Int(akq_row_bytes(type, Int64(n))))
                let rc = akq_quantize_row(type, x, &out, Int64(n))
                let valid = try XCTUnwrap(ref["valid"]?.boolValue)
                XCTAssertEqual(rc == 0, valid, "\(typeName) row \(rowName): rc \(rc)")
                if valid, rc == 0 {
                    XCTAssertEqual(out, Self.hexBytes(try XCTUnwrap(ref["bytes"]?.stringValue)), "\(typeName) row \(rowName)")
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 14 * 9)
    }

    /// Random rows with mixed scales.
    static func randomRows(_ nrows: Int, _ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<(nrows * n)).map { i in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(s >> 40) / Float(1 << 24) - 0.5
            return (i / n) % 5 == 0 ? u * 1e-3 : u * Float(1 + (i / n) % 7)
        }
    }

    /// The AVX2 path of the IQ4 scale search equals its scalar reference, and no quantiser's
    /// bytes depend on the thread count.
    func testScalarEqualsSIMDAndThreadCountIndependent() throws {
        let n = 512, nrows = 96
        let x = Self.randomRows(nrows, n, seed: 42)
        for type in Self.rowTypes.values.sorted() {
            let rb = Int(akq_row_bytes(type, Int64(n)))
            func run(threads: Int32, scalar: Bool) -> [UInt8] {
                var out = [UInt8](repeating: 0, count: rb * nrows)
                akk_force_scalar(scalar ? 1 : 0)
                defer { akk_force_scalar(0) }
                XCTAssertEqual(akq_quantize_rows(type, x, &out, Int64(nrows), Int64(n), threads, nil), 0)
                return out
            }
            let reference = run(threads: 1, scalar: true)
            XCTAssertEqual(run(threads: 1, scalar: false), reference, "type \(type): SIMD != scalar")
            XCTAssertEqual(run(threads: 3, scalar: false), reference, "type \(type): 3 threads != 1")
        }
    }

    /// Hashes of a GGUF file as the generator records them: "<type> <16 hex digits>" per tensor.
    /// Reads the tensor table itself: GGUFFile (the model loader's reader) does not take IQ4/MXFP4.
    static func tensorHashes(_ path: String) throws -> [String: String] {
        let f = try MappedFile(path: path)
        let p = UnsafeRawBufferPointer(start: f.base, count: f.count)
        var off = 0
        func u32() -> UInt32 { defer { off += 4 }; return p.loadUnaligned(fromByteOffset: off, as: UInt32.self) }
        func u64() -> Int { defer { off += 8 }; return Int(p.loadUnaligned(fromByteOffset: off, as: UInt64.self)) }
        func str() -> String { let n = u64(); defer { off += n }; return String(decoding: p[off..<(off + n)], as: UTF8.self) }
        func skip(_ type: UInt32) {
            switch type {
            case 0, 1, 7: off += 1
            case 2, 3: off += 2
            case 4, 5, 6: off += 4
            case 8: _ = str()
            case 9: let et = u32(); for _ in 0..<u64() { skip(et) }
            default: off += 8
            }
        }
        XCTAssertEqual(u32(), 0x4655_4747)
        _ = u32()
        let nTensors = u64(), nKV = u64()
        for _ in 0..<nKV { _ = str(); skip(u32()) }
        var infos: [(String, [Int], UInt32, Int)] = []
        for _ in 0..<nTensors {
            let name = str()
            let dims = (0..<Int(u32())).map { _ in u64() }
            infos.append((name, dims, u32(), u64()))
        }
        let dataStart = (off + 31) / 32 * 32
        var out: [String: String] = [:]
        for (name, dims, type, offset) in infos {
            let bytes = Int(akq_row_bytes(Int32(type), Int64(dims[0]))) * dims.dropFirst().reduce(1, *)
            let digest = SHA256Digest.hex(UnsafeRawBufferPointer(rebasing: p[(dataStart + offset)..<(dataStart + offset + bytes)]))
            out[name] = "\(GGMLType.name(type).uppercased()) \(digest.prefix(16))"
        }
        return out
    }

    /// Quantizes `input` to each type of the reference file and compares the file (size, SHA-256)
    /// and every tensor's hash with llama.cpp's. For the types in `made`, the file `make quant-models` wrote with
    /// `adak quantize` (`made[type]`) is checked instead when it exists; `slow` types are checked
    /// only that way.
    func checkFiles(input: String, refs refFile: String, made: [String: String] = [:], slow: Set<String> = []) throws {
        let refs = try JSON.parse(file: Fixtures.path("quant/\(refFile)"))
        let types = try XCTUnwrap(refs["types"]?.objectValue).keys
        XCTAssertGreaterThanOrEqual(types.count, 13)
        let source = try MappedFile(path: input)
        XCTAssertEqual(SHA256Digest.hex(UnsafeRawBufferPointer(start: source.base, count: source.count)),
                       refs["source_sha256"]?.stringValue, "the input is not the file the references were made from")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adak-quant-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in types {
            let ref = try XCTUnwrap(refs["types"]?[name], name)
            var out = dir.appendingPathComponent("\(name).gguf").path
            if let m = made[name], FileManager.default.fileExists(atPath: m) {
                out = m
            } else if slow.contains(name) {
                print("quantize \(refFile) \(name): skipped (slow; run make quant-models)")
                continue
            } else {
                let ft = try XCTUnwrap(QuantFileType(name: name))
                let r = try Quantizer.run(input: input, output: out, options: QuantizeOptions(fileType: ft))
                print("quantize \(refFile) \(name): \(r.seconds) s")
            }
            let file = try MappedFile(path: out)
            XCTAssertEqual(file.count, ref["size"]?.intValue, "\(name): size")
            let digest = SHA256Digest.hex(UnsafeRawBufferPointer(start: file.base, count: file.count))
            XCTAssertEqual(digest, ref["file_sha256"]?.stringValue, "\(name): file")
            // Every tensor's hash too: always for the small fixtures, for SmolLM2 (slow to hash
            // twice) only to name the tensors that differ when the file does.
            if digest != ref["file_sha256"]?.stringValue || file.count < 16 << 20 {
                let mine = try Self.tensorHashes(out)
                for (tensor, expected) in try XCTUnwrap(ref["tensors"]?.objectValue).entries {
                    XCTAssertEqual(mine[tensor], expected.stringValue, "\(name): tensor \(tensor)")
                }
                XCTAssertEqual(mine.count, ref["tensors"]?.objectValue?.count, "\(name): tensor count")
            }
        }
    }

    /// The MoE fixture (rows of 256, F16) at every type: same bytes as llama.cpp.
    func testMoE256MatchesLlamaCpp() throws {
        try checkFiles(input: Fixtures.path("models/moe256.f16.gguf"), refs: "moe256.json")
    }

    /// tiny-mixtral (F32, 8 experts: the rules that single out Mixtral-like models; rows of 64,
    /// so every K/IQ4_XS type falls back) at every type: same bytes as llama.cpp.
    func testTinyMixtralMatchesLlamaCpp() throws {
        try checkFiles(input: Fixtures.path("models/tiny-mixtral.f32.gguf"), refs: "tiny-mixtral.json")
    }

    /// SmolLM2 (Q4_1, rows of 576: requantized, with fallbacks) at every type: same bytes as
    /// llama.cpp. The seven types `make quant-models` writes are read from its cache when present
    /// (IQ4_NL/IQ4_XS, ~15 s each, only from there).
    func testSmolLM2MatchesLlamaCpp() throws {
        let model = try XCTUnwrap(Fixtures.smolLM2, "demo model missing: run scripts/fetch-model.sh")
        let cache = ProcessInfo.processInfo.environment["ADAK_CACHE"] ?? (Fixtures.repoRoot + "/.cache")
        var made: [String: String] = [:]
        for t in ["Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_NL", "IQ4_XS"] {
            made[t] = "\(cache)/quant/SmolLM2-135M-Instruct.\(t).gguf"
        }
        try checkFiles(input: model, refs: "SmolLM2-135M-Instruct.json", made: made, slow: ["IQ4_NL", "IQ4_XS"])
    }

    /// Bad inputs give clear errors: NaN weights (llama.cpp refuses them too: rows.json's
    /// nan_input), unknown types, missing or truncated files, requantizing when it is disabled.
    func testErrors() throws {
        let refs = try JSON.parse(file: Fixtures.path("quant/rows.json"))
        XCTAssertNotEqual(refs["nan_input"]?["llama_model_quantize_rc"]?.intValue, 0)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adak-quant-err-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.gguf").path

        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.block_count", .uint32(1))
        var weights = [Float](repeating: 1, count: 64 * 64)
        weights[5] = .nan
        try w.addTensor(name: "blk.0.attn_q.weight", dims: [64, 64], values: weights)
        let nanPath = dir.appendingPathComponent("nan.gguf").path
        try w.write(to: nanPath)
        XCTAssertThrowsError(try Quantizer.run(input: nanPath, output: out, options: QuantizeOptions(fileType: .q8_0))) {
            XCTAssertTrue("\($0)".contains("invalid data"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        XCTAssertNil(QuantFileType(name: "Q7_K"))
        XCTAssertEqual(QuantFileType(name: "q4_k_m"), .q4_k_m)
        XCTAssertThrowsError(try Quantizer.run(input: dir.path + "/missing.gguf", output: out, options: QuantizeOptions(fileType: .q8_0)))
        let src = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("models/moe256.f16.gguf")))
        let truncated = dir.appendingPathComponent("truncated.gguf").path
        try src.prefix(src.count / 2).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try Quantizer.run(input: truncated, output: out, options: QuantizeOptions(fileType: .q8_0))) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }
        var noRequant = QuantizeOptions(fileType: .q4_0)
        noRequant.allowRequantize = false
        XCTAssertThrowsError(try Quantizer.run(input: Fixtures.path("models/tiny-mixtral.q8_0.gguf"), output: out, options: noRequant)) {
            XCTAssertTrue("\($0)".contains("requantizing"), "\($0)")
        }
    }
}

/// SHA-256 (FIPS 180-4), for comparing files with the references' digests.
enum SHA256Digest {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ data: UnsafeRawBufferPointer) -> String {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            k.withUnsafeBufferPointer { k in
                func block(_ p: UnsafeRawPointer) {
                    for i in 0..<16 { w[i] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                    for i in 16..<64 {
                        let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                        let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                        w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                    }
                    var (a, b, c, d, e, f, g, hh) = h
                    for i in 0..<64 {
                        let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
                        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                        (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                    h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
                }
                let full = data.count / 64
                for i in 0..<full { block(data.baseAddress! + 64 * i) }
                var tail = [UInt8](data[(64 * full)...])
                tail.append(0x80)
                while tail.count % 64 != 56 { tail.append(0) }
                let bits = UInt64(data.count) * 8
                for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
                tail.withUnsafeBytes { t in
                    for i in 0..<(t.count / 64) { block(t.baseAddress! + 64 * i) }
                }
            }
        }
        return [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7].map { v in
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 8 - s.count) + s
        }.joined()
    }
}
