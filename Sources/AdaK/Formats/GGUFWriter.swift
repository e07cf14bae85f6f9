#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAdaKKernels

/// Writes GGUF v3 files: metadata in insertion order, tensors aligned to `alignment`.
public struct GGUFWriter {
    public var alignment = 32
    private var kv: [(String, GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: UInt32, bytes: [UInt8])] = []

    public init() {}

    /// Element type codes of empty arrays (an empty `GGUFValue.array` has no element to tell it).
    private var emptyArrayTypes: [String: UInt32] = [:]

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
    }

    /// Sets an array whose element type is given explicitly, so an empty array keeps it (llama.cpp
    /// checks that `tokenizer.ggml.merges` is an array of strings even when it is empty).
    public mutating func set(_ key: String, array: [GGUFValue], elementType: UInt32) {
        set(key, .array(array))
        emptyArrayTypes[key] = elementType
    }

    /// Adds a tensor; `dims` in ggml order, `bytes` exactly akk_row_bytes(type, dims[0]) * rows.
    public mutating func addTensor(name: String, dims: [Int], type: UInt32, bytes: [UInt8]) throws {
        guard !dims.isEmpty, dims.count <= GGUFLimits.maxDims, dims.allSatisfy({ $0 > 0 }) else {
            throw AdaKError.invalidArgument("tensor '\(name)': bad dimensions \(dims)")
        }
        let rowBytes = Int(akk_row_bytes(Int32(bitPattern: type), Int64(dims[0])))
        guard rowBytes > 0, rowBytes * dims.dropFirst().reduce(1, *) == bytes.count else {
            throw AdaKError.invalidArgument("tensor '\(name)': \(bytes.count) bytes do not fit \(dims) of type \(type)")
        }
        guard !tensors.contains(where: { $0.name == name }) else {
            throw AdaKError.invalidArgument("duplicate tensor '\(name)'")
        }
        tensors.append((name, dims, type, bytes))
    }

    public mutating func addTensor(name: String, dims: [Int], values: [Float]) throws {
        let bytes = values.withUnsafeBytes { Array($0) }
        try addTensor(name: name, dims: dims, type: 0, bytes: bytes)
    }

    /// The complete file as bytes.
    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .float64(let x): put(x.bitPattern)
            case .bool(let x): put(UInt8(x ? 1 : 0))
            case .string(let s): putString(s)
            case .array(let a):
                put(a.first?.typeCode ?? 4)
                put(UInt64(a.count))
                for e in a { putValue(e) }
            }
        }
        var meta = kv
        if alignment != 32, !meta.contains(where: { $0.0 == "general.alignment" }) {
            meta.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        out.append(contentsOf: Array("GGUF".utf8))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(meta.count))
        for (k, v) in meta {
            putString(k)
            put(v.typeCode)
            if case .array(let a) = v, a.isEmpty, let t = emptyArrayTypes[k] {
                put(t)
                put(UInt64(0))
            } else {
                putValue(v)
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (i, t) in tensors.enumerated() {
            putString(t.name)
            put(UInt32(t.dims.count))
            for d in t.dims { put(UInt64(d)) }
            put(t.type)
            put(UInt64(offsets[i]))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.bytes)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }

    /// Writes the file atomically (temp file + rename).
    public func write(to path: String) throws {
        try writeFileAtomically(serialize(), to: path)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a
/// partly written file and a failure leaves any earlier file in place.
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let tmp = path + ".tmp"
    guard let f = fopen(tmp, "wb") else {
        throw AdaKError.io("cannot create '\(tmp)': \(String(cString: strerror(errno)))")
    }
    let n = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    let closed = fclose(f)
    guard n == bytes.count, closed == 0 else {
        unlink(tmp)
        throw AdaKError.io("cannot write '\(tmp)'")
    }
    guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw AdaKError.io("cannot rename '\(tmp)' to '\(path)': \(String(cString: strerror(errno)))")
    }
}
