#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAdaKKernels

/// A GGUF metadata value (GGUF v2/v3 value types).
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// The GGUF type code of this value.
    public var typeCode: UInt32 {
        switch self {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    /// Any integer value as Int (nil for non-integers or values that do not fit).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): Int(v)
        case .bool(let v): v ? 1 : 0
        default: nil
        }
    }

    /// Any numeric value as Double.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

/// One tensor of a GGUF file. `dims` is in ggml `ne` order (fastest-varying first).
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let dims: [Int]
    public let type: UInt32
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { dims.reduce(1, *) }
    public var typeName: String { String(cString: akk_type_name(Int32(type))) }
}

/// Limits applied while parsing untrusted files.
public enum GGUFLimits {
    public static let maxDims = 4
    public static let maxStringBytes = 1 << 26
    public static let maxTensors = 1 << 20
    public static let maxKV = 1 << 20
    public static let maxArrayNesting = 2
}

/// A parsed GGUF file over a memory mapping. Tensor data is not copied.
public final class GGUFFile: @unchecked Sendable {
    public let storage: MappedFile
    public let version: UInt32
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Byte range of each metadata entry (key, type and value) in the file, in file order, so a
    /// writer can copy entries verbatim (an empty array keeps its element type).
    public let metadataRanges: [Range<Int>]
    public let tensors: [GGUFTensorInfo]
    public let tensorIndex: [String: Int]
    public let alignment: Int
    public let dataOffset: Int

    public convenience init(path: String) throws {
        try self.init(storage: MappedFile(path: path), origin: path)
    }

    public init(storage: MappedFile, origin: String = "buffer") throws {
        self.storage = storage
        var r = ByteReader(base: storage.base, count: storage.count, origin: origin)
        let magic = try r.u32()
        guard magic == 0x4655_4747 else { throw AdaKError.format("\(origin): not a GGUF file (bad magic)") }
        version = try r.u32()
        guard version == 2 || version == 3 else {
            throw AdaKError.unsupported("\(origin): GGUF version \(version) is not supported (2 and 3 are)")
        }
        let nTensors = try r.u64()
        let nKV = try r.u64()
        guard nTensors <= UInt64(GGUFLimits.maxTensors) else {
            throw AdaKError.format("\(origin): absurd tensor count \(nTensors)")
        }
        guard nKV <= UInt64(GGUFLimits.maxKV) else {
            throw AdaKError.format("\(origin): absurd metadata count \(nKV)")
        }
        var keys: [String] = []
        var meta: [String: GGUFValue] = [:]
        var ranges: [Range<Int>] = []
        for _ in 0..<Int(nKV) {
            let start = r.offset
            let key = try r.string()
            let type = try r.u32()
            let value = try r.value(type: type, depth: 0)
            guard meta[key] == nil else { throw AdaKError.format("\(origin): duplicate metadata key '\(key)'") }
            keys.append(key)
            meta[key] = value
            ranges.append(start..<r.offset)
        }
        metadataKeys = keys
        metadataRanges = ranges
        metadata = meta
        var align = 32
        if let a = meta["general.alignment"] {
            guard let v = a.intValue, v > 0, v <= 1 << 20, v & (v - 1) == 0 else {
                throw AdaKError.format("\(origin): general.alignment must be a power of two")
            }
            align = v
        }
        alignment = align

        struct Raw { var name: String; var dims: [Int]; var type: UInt32; var offset: UInt64 }
        var raws: [Raw] = []
        raws.reserveCapacity(Int(nTensors))
        for _ in 0..<Int(nTensors) {
            let name = try r.string()
            let nd = try r.u32()
            guard nd >= 1, nd <= UInt32(GGUFLimits.maxDims) else {
                throw AdaKError.format("\(origin): tensor '\(name)' has \(nd) dimensions (1...4 allowed)")
            }
            var dims: [Int] = []
            for _ in 0..<Int(nd) {
                let d = try r.u64()
                guard d >= 1, d <= UInt64(Int32.max) else {
                    throw AdaKError.format("\(origin): tensor '\(name)' has invalid dimension \(d)")
                }
                dims.append(Int(d))
            }
            raws.append(Raw(name: name, dims: dims, type: try r.u32(), offset: try r.u64()))
        }
        let headerEnd = r.offset
        let dataStart = (headerEnd + align - 1) / align * align
        dataOffset = dataStart
        guard dataStart <= storage.count || raws.isEmpty else {
            throw AdaKError.format("\(origin): truncated before tensor data")
        }
        let dataSize = max(0, storage.count - dataStart)
        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for raw in raws {
            guard index[raw.name] == nil else { throw AdaKError.format("\(origin): duplicate tensor '\(raw.name)'") }
            let be = Int(akk_block_elems(Int32(bitPattern: raw.type)))
            guard be > 0 else {
                throw AdaKError.unsupported("\(origin): tensor '\(raw.name)' has unknown type \(raw.type)")
            }
            var n = 1
            for d in raw.dims {
                let (m, o) = n.multipliedReportingOverflow(by: d)
                guard !o, m <= 1 << 40 else { throw AdaKError.format("\(origin): tensor '\(raw.name)' is too large") }
                n = m
            }
            guard raw.dims[0] % be == 0 else {
                throw AdaKError.format("\(origin): tensor '\(raw.name)' row length \(raw.dims[0]) is not a multiple of its block size \(be)")
            }
            let bytes = n / be * Int(akk_block_bytes(Int32(bitPattern: raw.type)))
            guard raw.offset % UInt64(align) == 0 else {
                throw AdaKError.format("\(origin): tensor '\(raw.name)' offset is not aligned to \(align)")
            }
            guard raw.offset <= UInt64(dataSize), UInt64(bytes) <= UInt64(dataSize) - raw.offset else {
                throw AdaKError.format("\(origin): tensor '\(raw.name)' extends past the end of the file (truncated?)")
            }
            index[raw.name] = infos.count
            infos.append(GGUFTensorInfo(name: raw.name, dims: raw.dims, type: raw.type,
                                        fileOffset: dataStart + Int(raw.offset), byteCount: bytes))
        }
        // No two tensors may share bytes.
        let sorted = infos.sorted { $0.fileOffset < $1.fileOffset }
        for i in sorted.indices.dropFirst() where sorted[i - 1].fileOffset + sorted[i - 1].byteCount > sorted[i].fileOffset {
            throw AdaKError.format("\(origin): tensors '\(sorted[i - 1].name)' and '\(sorted[i].name)' overlap")
        }
        tensors = infos
        tensorIndex = index
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Pointer to a tensor's bytes (valid while this object lives).
    public func data(_ t: GGUFTensorInfo) -> UnsafeRawPointer {
        storage.base + t.fileOffset
    }

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue ?? metadata[key]?.intValue.map { $0 != 0 } }

    public func stringArray(_ key: String) -> [String]? {
        guard let a = metadata[key]?.arrayValue else { return nil }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let s = v.stringValue else { return nil }
            out.append(s)
        }
        return out
    }

    public func intArray(_ key: String) -> [Int]? {
        guard let a = metadata[key]?.arrayValue else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let i = v.intValue else { return nil }
            out.append(i)
        }
        return out
    }

    public func floatArray(_ key: String) -> [Float]? {
        guard let a = metadata[key]?.arrayValue else { return nil }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let d = v.doubleValue else { return nil }
            out.append(Float(d))
        }
        return out
    }

    /// Dequantises a whole tensor to f32 (row-major in ggml order: dims[0] fastest).
    public func dequantize(_ t: GGUFTensorInfo) throws -> [Float] {
        let n = t.elementCount
        var out = [Float](repeating: 0, count: n)
        let rc = out.withUnsafeMutableBufferPointer {
            akk_dequantize_row(Int32(bitPattern: t.type), data(t), $0.baseAddress!, Int64(n))
        }
        guard rc == 0 else {
            throw AdaKError.unsupported("tensor '\(t.name)': type \(t.typeName) cannot be dequantised")
        }
        return out
    }
}

/// Bounds-checked little-endian reader over untrusted bytes.
struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    let origin: String
    var offset = 0

    init(base: UnsafeRawPointer, count: Int, origin: String) {
        self.base = base
        self.count = count
        self.origin = origin
    }

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= count - offset else {
            throw AdaKError.format("\(origin): truncated at byte \(offset) (needs \(n) more)")
        }
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try need(MemoryLayout<T>.size)
        let v = (base + offset).loadUnaligned(as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u32() throws -> UInt32 { try load(UInt32.self) }
    mutating func u64() throws -> UInt64 { try load(UInt64.self) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(GGUFLimits.maxStringBytes) else { throw AdaKError.format("\(origin): string of \(n) bytes at \(offset)") }
        try need(Int(n))
        let buf = UnsafeRawBufferPointer(start: base + offset, count: Int(n))
        offset += Int(n)
        return String(decoding: buf, as: UTF8.self)
    }

    mutating func value(type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try load(UInt8.self))
        case 1: return .int8(try load(Int8.self))
        case 2: return .uint16(try load(UInt16.self))
        case 3: return .int16(try load(Int16.self))
        case 4: return .uint32(try load(UInt32.self))
        case 5: return .int32(try load(Int32.self))
        case 6: return .float32(Float(bitPattern: try load(UInt32.self)))
        case 7:
            let b = try load(UInt8.self)
            guard b <= 1 else { throw AdaKError.format("\(origin): bool value \(b) at \(offset - 1)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth < GGUFLimits.maxArrayNesting else { throw AdaKError.format("\(origin): arrays nested too deeply") }
            let et = try u32()
            let n = try u64()
            // Every element takes at least one byte: a count beyond the remaining bytes is a lie.
            guard n <= UInt64(count - offset) else {
                throw AdaKError.format("\(origin): array of \(n) elements exceeds the file")
            }
            var arr: [GGUFValue] = []
            arr.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { arr.append(try value(type: et, depth: depth + 1)) }
            return .array(arr)
        case 10: return .uint64(try load(UInt64.self))
        case 11: return .int64(try load(Int64.self))
        case 12: return .float64(Double(bitPattern: try load(UInt64.self)))
        default: throw AdaKError.format("\(origin): unknown metadata value type \(type) at \(offset - 4)")
        }
    }
}
