#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAdaKKernels

/// Element types of the safetensors format (huggingface/safetensors `Dtype`).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: 1
        case .I16, .U16, .F16, .BF16: 2
        case .I32, .U32, .F32: 4
        case .F64, .I64, .U64: 8
        }
    }

    /// Whether values can be read as floats (the types model weights come in).
    public var isFloat: Bool { self == .F32 || self == .F16 || self == .BF16 }
}

/// One tensor of a safetensors file. `shape` is in row-major (numpy) order.
public struct SafetensorsTensor: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file over a memory mapping: an 8-byte little-endian header length N, N bytes of
/// JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then
/// the data. Every tensor is checked against the file: dtype × shape = byte count, offsets inside
/// the data, no overlaps and no holes (as the reference implementation requires).
public final class SafetensorsFile: @unchecked Sendable {
    public let storage: MappedFile
    public let origin: String
    /// Tensors in header order.
    public let tensors: [SafetensorsTensor]
    public let index: [String: Int]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]

    /// Largest header accepted (the reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000
    public static let maxRank = 8

    public convenience init(path: String) throws {
        try self.init(storage: MappedFile(path: path), origin: path)
    }

    public init(storage: MappedFile, origin: String = "safetensors") throws {
        self.storage = storage
        self.origin = origin
        func bad(_ what: String) -> AdaKError { AdaKError.format("\(origin): \(what)") }
        guard storage.count >= 8 else { throw bad("file of \(storage.count) bytes is too short for a safetensors header") }
        let n64 = storage.base.loadUnaligned(as: UInt64.self).littleEndian
        guard n64 <= UInt64(Self.maxHeaderBytes) else {
            throw bad("header length \(n64) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        let n = Int(n64)
        guard n <= storage.count - 8 else {
            throw bad("header length \(n) runs past the end of the file (\(storage.count) bytes)")
        }
        guard n >= 2 else { throw bad("header of \(n) bytes is too short") }
        let header = UnsafeRawBufferPointer(start: storage.base + 8, count: n)
        guard header[0] == UInt8(ascii: "{") else { throw bad("header does not start with '{'") }
        let json = try JSON.parse(header, origin: "\(origin) (header)", maxDepth: 8)
        guard let obj = json.objectValue else { throw bad("header is not a JSON object") }

        let dataStart = 8 + n
        let dataSize = storage.count - dataStart
        var tensors: [SafetensorsTensor] = []
        var ranges: [(begin: Int, end: Int, name: String)] = []
        var metadata: [String: String] = [:]
        for (name, v) in obj.entries {
            if name == "__metadata__" {
                guard let m = v.objectValue else { throw bad("__metadata__ is not an object") }
                for (k, s) in m.entries {
                    guard let s = s.stringValue else { throw bad("__metadata__[\"\(k)\"] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let t = v.objectValue else { throw bad("entry '\(name)' is not an object") }
            guard let dt = t["dtype"]?.stringValue else { throw bad("tensor '\(name)': missing dtype") }
            guard let dtype = SafetensorsDType(rawValue: dt) else {
                throw AdaKError.unsupported("\(origin): tensor '\(name)': unknown dtype '\(dt)'")
            }
            guard let shapeArr = t["shape"]?.arrayValue, shapeArr.count <= Self.maxRank else {
                throw bad("tensor '\(name)': missing shape or more than \(Self.maxRank) dimensions")
            }
            var shape: [Int] = []
            var elements = 1
            for d in shapeArr {
                guard let x = d.intValue, x >= 0 else { throw bad("tensor '\(name)': bad dimension \(d)") }
                let (m, o) = elements.multipliedReportingOverflow(by: x)
                guard !o else { throw bad("tensor '\(name)': shape \(shapeArr) overflows") }
                elements = m
                shape.append(x)
            }
            guard let offs = t["data_offsets"]?.arrayValue, offs.count == 2,
                  let begin = offs[0].intValue, let end = offs[1].intValue else {
                throw bad("tensor '\(name)': data_offsets must be two integers")
            }
            guard begin >= 0, begin <= end else { throw bad("tensor '\(name)': data_offsets [\(begin), \(end)] are reversed or negative") }
            guard end <= dataSize else {
                throw bad("tensor '\(name)': data_offsets [\(begin), \(end)] run past the data (\(dataSize) bytes)")
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !o, bytes == end - begin else {
                throw bad("tensor '\(name)': \(dtype.rawValue) \(shape) needs \(o ? "too many" : String(bytes)) bytes but data_offsets give \(end - begin)")
            }
            for k in t.keys where !["dtype", "shape", "data_offsets"].contains(k) {
                throw bad("tensor '\(name)': unexpected key '\(k)'")
            }
            tensors.append(SafetensorsTensor(name: name, dtype: dtype, shape: shape,
                                              fileOffset: dataStart + begin, byteCount: bytes))
            ranges.append((begin, end, name))
        }
        // The data must be covered exactly: sorted ranges abut, starting at 0 and ending at the file's end.
        ranges.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.end < $1.end }
        var covered = 0
        var previous = ""
        for r in ranges {
            if r.begin < covered { throw bad("tensors '\(previous)' and '\(r.name)' overlap") }
            if r.begin > covered { throw bad("\(r.begin - covered) bytes before tensor '\(r.name)' belong to no tensor") }
            covered = r.end
            previous = r.name
        }
        guard covered == dataSize else {
            throw bad("\(dataSize - covered) bytes at the end of the data belong to no tensor")
        }
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        self.tensors = tensors
        self.index = index
        self.metadata = metadata
    }

    public func tensor(_ name: String) -> SafetensorsTensor? { index[name].map { tensors[$0] } }

    /// The tensor's bytes (valid while this object lives; not necessarily aligned).
    public func bytes(_ t: SafetensorsTensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + t.fileOffset, count: t.byteCount)
    }

    /// The tensor's values converted to f32 (F32, F16, BF16).
    public func floats(_ t: SafetensorsTensor) throws -> [Float] {
        let n = t.elementCount
        let src = storage.base + t.fileOffset
        switch t.dtype {
        case .F32:
            return [Float](unsafeUninitializedCapacity: n) { buf, count in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(start: src, count: n * 4))
                count = n
            }
        case .F16:
            return (0..<n).map { akk_fp16_to_fp32((src + 2 * $0).loadUnaligned(as: UInt16.self).littleEndian) }
        case .BF16:
            return (0..<n).map { akk_bf16_to_fp32((src + 2 * $0).loadUnaligned(as: UInt16.self).littleEndian) }
        default:
            throw AdaKError.unsupported("\(origin): tensor '\(t.name)' has dtype \(t.dtype.rawValue); only F32, F16 and BF16 weights are supported")
        }
    }
}

/// The safetensors files of a checkpoint folder: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json` (`{"weight_map": {"tensor": "shard file"}}`).
public final class SafetensorsCheckpoint: @unchecked Sendable {
    /// Shards in file-name order.
    public let files: [SafetensorsFile]
    /// Tensor name → (shard index, tensor).
    public let tensors: [String: (file: Int, tensor: SafetensorsTensor)]

    public init(directory dir: String) throws {
        let indexPath = dir + "/model.safetensors.index.json"
        var shardNames: [String]
        var weightMap: [String: String]? = nil
        if access(indexPath, F_OK) == 0 {
            let json = try JSON.parse(file: indexPath)
            guard let wm = json["weight_map"]?.objectValue else {
                throw AdaKError.format("\(indexPath): missing \"weight_map\" object")
            }
            var map: [String: String] = [:]
            for (name, v) in wm.entries {
                guard let f = v.stringValue else { throw AdaKError.format("\(indexPath): weight_map[\"\(name)\"] is not a string") }
                guard !f.isEmpty, !f.contains("/"), f != ".", f != ".." else {
                    throw AdaKError.format("\(indexPath): shard name '\(f)' must be a plain file name in the folder")
                }
                map[name] = f
            }
            guard !map.isEmpty else { throw AdaKError.format("\(indexPath): weight_map is empty") }
            weightMap = map
            shardNames = Array(Set(map.values)).sorted()
        } else if access(dir + "/model.safetensors", F_OK) == 0 {
            shardNames = ["model.safetensors"]
        } else {
            throw AdaKError.io("\(dir): neither model.safetensors nor model.safetensors.index.json found")
        }
        var files: [SafetensorsFile] = []
        var tensors: [String: (file: Int, tensor: SafetensorsTensor)] = [:]
        for (i, name) in shardNames.enumerated() {
            let f = try SafetensorsFile(path: dir + "/" + name)
            files.append(f)
            for t in f.tensors {
                if let map = weightMap {
                    // Tensors the index does not assign to this shard are ignored, as transformers does.
                    guard map[t.name] == name else { continue }
                }
                guard tensors[t.name] == nil else {
                    throw AdaKError.format("\(dir): tensor '\(t.name)' appears in more than one shard")
                }
                tensors[t.name] = (i, t)
            }
        }
        if let map = weightMap {
            for (name, shard) in map where tensors[name] == nil {
                throw AdaKError.format("\(dir): index lists tensor '\(name)' in '\(shard)', but that shard does not contain it")
            }
        }
        self.files = files
        self.tensors = tensors
    }

    /// Tensor names in the order llama.cpp's converter visits them: shard by shard (file-name
    /// order), names sorted within a shard.
    public var orderedNames: [String] {
        var out: [String] = []
        for i in files.indices {
            out.append(contentsOf: tensors.filter { $0.value.file == i }.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        }
        return out
    }

    public func tensor(_ name: String) -> (file: SafetensorsFile, tensor: SafetensorsTensor)? {
        tensors[name].map { (files[$0.file], $0.tensor) }
    }
}
