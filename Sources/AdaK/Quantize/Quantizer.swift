#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAdaKKernels

/// Options of `Quantizer.run`.
public struct QuantizeOptions: Sendable {
    public var fileType: QuantFileType
    /// Worker threads for the row quantisers (<= 0: all cores). The bytes do not depend on it.
    public var threads: Int = 0
    /// Quantize tensors that are already quantized (dequantised to f32 first), as llama.cpp's
    /// `--allow-requantize`; when false such tensors are an error.
    public var allowRequantize = true

    public init(fileType: QuantFileType) { self.fileType = fileType }
}

/// What `Quantizer.run` did.
public struct QuantizeReport: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        public let fromType: UInt32
        public let toType: UInt32
        public let bytes: Int
    }
    /// In file order.
    public var tensors: [Tensor] = []
    public var inputBytes = 0
    public var outputBytes = 0
    public var seconds = 0.0
}

/// `adak quantize`: writes the file llama.cpp's quantizer (llama_model_quantize with default
/// parameters, no importance matrix, allow_requantize) writes for the same input and file type —
/// the same bytes. The metadata is copied (entries verbatim, in order) with
/// general.quantization_version and general.file_type moved to the end, split keys dropped;
/// tensors in llama.cpp's order, types from `QuantMix`, data 32-byte aligned and zero-padded.
public enum Quantizer {
    /// Rows of f32 kept in memory at once per tensor (results do not depend on it).
    static let slabBytes = 64 << 20

    public static func run(input: String, output: String, options: QuantizeOptions) throws -> QuantizeReport {
        let start = ContinuousClock.now
        let file = try GGUFFile(path: input)
        guard file.alignment == 32 else {
            throw AdaKError.unsupported("\(input): general.alignment \(file.alignment) (only 32 is supported)")
        }
        let model = try QuantModelInfo(file: file)
        var mix = QuantMix(fileType: options.fileType, model: model, names: file.tensors.map(\.name))
        let order = QuantMix.order(file.tensors.map(\.name)).map { file.tensor($0)! }

        // llama.cpp refuses inf/NaN in any tensor it reads (its loader's check_tensors).
        for t in order where akq_validate_row_data(Int32(bitPattern: t.type), file.data(t), t.byteCount) == 0 {
            throw AdaKError.format("\(input): tensor '\(t.name)' has invalid data (inf or NaN)")
        }

        var report = QuantizeReport()
        report.inputBytes = file.storage.count
        var offset = 0
        for t in order {
            let to = try mix.targetType(name: t.name, dims: t.dims, type: t.type)
            if to != t.type, GGMLType.isQuantized(t.type), !options.allowRequantize {
                throw AdaKError.unsupported("tensor '\(t.name)': requantizing from type \(t.typeName) is disabled")
            }
            let bytes = to == t.type ? t.byteCount
                : Int(akq_row_bytes(Int32(bitPattern: to), Int64(t.dims[0]))) * (t.elementCount / t.dims[0])
            guard bytes > 0 else {
                throw AdaKError.unsupported("tensor '\(t.name)': cannot write type \(GGMLType.name(to)) for rows of \(t.dims[0])")
            }
            report.tensors.append(.init(name: t.name, fromType: t.type, toType: to, bytes: bytes))
            offset += (bytes + 31) / 32 * 32
        }

        let header = headerBytes(file: file, fileType: options.fileType, order: order, report: report)
        let tmp = output + ".tmp"
        guard let f = fopen(tmp, "wb") else {
            throw AdaKError.io("cannot create '\(tmp)': \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer {
            if !ok {
                fclose(f)
                unlink(tmp)
            }
        }
        try write(f, header, path: tmp)
        for (t, out) in zip(order, report.tensors) {
            if out.toType == t.type {
                try write(f, UnsafeRawBufferPointer(start: file.data(t), count: t.byteCount), path: tmp)
            } else {
                try convert(file: file, tensor: t, to: out.toType, threads: options.threads, out: f, path: tmp)
            }
            let pad = (out.bytes + 31) / 32 * 32 - out.bytes
            if pad > 0 { try write(f, [UInt8](repeating: 0, count: pad), path: tmp) }
        }
        ok = true
        guard fclose(f) == 0 else {
            unlink(tmp)
            throw AdaKError.io("cannot write '\(tmp)': \(String(cString: strerror(errno)))")
        }
        guard rename(tmp, output) == 0 else {
            unlink(tmp)
            throw AdaKError.io("cannot rename '\(tmp)' to '\(output)': \(String(cString: strerror(errno)))")
        }
        report.outputBytes = header.count + offset
        let d = ContinuousClock.now - start
        report.seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        return report
    }

    /// Dequantises (if needed) and quantises one tensor slab by slab, writing the rows to `out`.
    private static func convert(file: GGUFFile, tensor t: GGUFTensorInfo, to: UInt32, threads: Int,
                                out: UnsafeMutablePointer<FILE>, path: String) throws {
        let n = t.dims[0], nrows = t.elementCount / n
        let srcRow = t.byteCount / nrows
        let dstRow = Int(akq_row_bytes(Int32(bitPattern: to), Int64(n)))
        let slab = max(1, min(nrows, slabBytes / (n * 4)))
        var f32 = [Float](repeating: 0, count: slab * n)
        var q = [UInt8](repeating: 0, count: slab * dstRow)
        var r = 0
        while r < nrows {
            let rows = min(slab, nrows - r)
            let rc = f32.withUnsafeMutableBufferPointer { x in
                akk_dequantize_row(Int32(bitPattern: t.type), file.data(t) + r * srcRow, x.baseAddress!, Int64(rows * n))
            }
            guard rc == 0 else {
                throw AdaKError.unsupported("tensor '\(t.name)': type \(t.typeName) cannot be dequantised")
            }
            var bad: Int64 = -1
            let qrc = f32.withUnsafeBufferPointer { x in
                q.withUnsafeMutableBytes { y in
                    akq_quantize_rows(Int32(bitPattern: to), x.baseAddress!, y.baseAddress!, Int64(rows), Int64(n),
                                      Int32(clamping: threads), &bad)
                }
            }
            if qrc == -2 {
                throw AdaKError.format("tensor '\(t.name)': quantized data validation failed (row \(r + Int(bad)) gets an inf/NaN scale)")
            }
            guard qrc == 0 else {
                throw AdaKError.unsupported("tensor '\(t.name)': cannot quantize to \(GGMLType.name(to))")
            }
            try q.withUnsafeBytes { try write(out, UnsafeRawBufferPointer(rebasing: $0[0..<(rows * dstRow)]), path: path) }
            r += rows
        }
    }

    /// GGUF v3 header: counts, the input's metadata entries (verbatim, minus the replaced and
    /// split keys), quantization_version and file_type, the tensor infos, padding to 32.
    static func headerBytes(file: GGUFFile, fileType: QuantFileType, order: [GGUFTensorInfo],
                            report: QuantizeReport) -> [UInt8] {
        let replaced: Set<String> = ["general.quantization_version", "general.file_type",
                                     "split.no", "split.count", "split.tensors.count"]
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        let kept = file.metadataKeys.indices.filter { !replaced.contains(file.metadataKeys[$0]) }
        out.append(contentsOf: Array("GGUF".utf8))
        put(UInt32(3))
        put(UInt64(order.count))
        put(UInt64(kept.count + 2))
        for i in kept {
            let r = file.metadataRanges[i]
            out.append(contentsOf: UnsafeRawBufferPointer(start: file.storage.base + r.lowerBound, count: r.count))
        }
        for (key, value) in [("general.quantization_version", UInt32(2)), ("general.file_type", fileType.llamaFtype)] {
            putString(key)
            put(UInt32(4))
            put(value)
        }
        var offset = 0
        for (t, info) in zip(order, report.tensors) {
            putString(t.name)
            let nDims = t.dims.lastIndex(where: { $0 != 1 }).map { $0 + 1 } ?? 1 // ggml_n_dims
            put(UInt32(nDims))
            for d in t.dims.prefix(nDims) { put(UInt64(d)) }
            put(info.toType)
            put(UInt64(offset))
            offset += (info.bytes + 31) / 32 * 32
        }
        while out.count % 32 != 0 { out.append(0) }
        return out
    }

    private static func write(_ f: UnsafeMutablePointer<FILE>, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try write(f, $0, path: path) }
    }

    private static func write(_ f: UnsafeMutablePointer<FILE>, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard bytes.count == 0 || fwrite(bytes.baseAddress, 1, bytes.count, f) == bytes.count else {
            throw AdaKError.io("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }
}
