#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// The format weights of types the kernels cannot multiply natively (F16, BF16) are converted to
/// at load. F32, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants (Q2_K..Q6_K), IQ4_NL, IQ4_XS and
/// MXFP4 are used as stored, straight from the mapped file.
public enum WeightType: String, Sendable, CaseIterable {
    case f32, q8_0, q4_0

    var ggmlType: Int32 {
        switch self {
        case .f32: Int32(AKK_F32.rawValue)
        case .q8_0: Int32(AKK_Q8_0.rawValue)
        case .q4_0: Int32(AKK_Q4_0.rawValue)
        }
    }
}

/// A row-major weight matrix of `rows` output rows × `cols` inputs in a kernel type.
public struct Matrix: @unchecked Sendable {
    public let type: Int32
    public let data: UnsafeRawPointer
    public let rows: Int
    public let cols: Int
    public var rowBytes: Int { Int(akk_row_bytes(type, Int64(cols))) }
    public var byteCount: Int { rowBytes * rows }
}

/// `count` matrices of identical shape stored back to back (GGUF `*_exps` tensors).
public struct ExpertStack: @unchecked Sendable {
    public let type: Int32
    public let data: UnsafeRawPointer
    public let count: Int
    public let rows: Int
    public let cols: Int

    public func expert(_ e: Int) -> Matrix {
        let m = Matrix(type: type, data: data, rows: rows, cols: cols)
        return Matrix(type: type, data: data + e * m.byteCount, rows: rows, cols: cols)
    }
}

/// Weights of one decoder layer. Optional parts depend on the architecture.
public struct LayerWeights: @unchecked Sendable {
    public var attnNorm: UnsafePointer<Float>
    /// Q/K/V projections (nil for multi-head latent attention, whose weights are in `mla`).
    public var wq, wk, wv: Matrix?
    public var wo: Matrix
    public var bq, bk, bv: UnsafePointer<Float>?
    /// Attention output bias and per-head sink logits (gpt-oss), nil if none.
    public var bo, sinks: UnsafePointer<Float>?
    /// deepseek2's multi-head latent attention (Models/DeepSeek2.swift).
    var mla: MLAWeights?
    public var qNorm, kNorm: UnsafePointer<Float>?
    public var ffnNorm: UnsafePointer<Float>

    // dense FFN
    public var ffnGate, ffnUp, ffnDown: Matrix?

    // mixture of experts
    public var router: Matrix?
    /// Router bias (carved models: `ffn_gate_inp.bias`), nil if none.
    public var routerBias: UnsafePointer<Float>?
    public var gateExps, upExps, downExps: ExpertStack?
    /// Per-expert biases (gpt-oss): count × rows floats each.
    public var gateExpsBias, upExpsBias, downExpsBias: UnsafePointer<Float>?
    /// Selection bias added to the router scores for ranking only (DeepSeek-V3 `exp_probs_b`).
    public var expProbsBias: UnsafePointer<Float>?
    public var sharedGate, sharedUp, sharedDown: Matrix?
    public var sharedGateInp: UnsafePointer<Float>?

    public var isMoE: Bool { router != nil }
}

/// Reads the tensors of a GGUF file into kernel-ready weights, keeping GGUF bytes where the
/// kernels use them as stored and converting the rest. Owns what it converts.
final class WeightLoader {
    let gguf: GGUFFile
    let target: WeightType
    /// Repack Q4_0, Q4_K, IQ4_NL and MXFP4 matrices into 8-row groups (`AKK_Q4_0_R8`, repack.c;
    /// `AKK_Q4_K_R8`, repack_q4_k.c; `AKK_IQ4_NL_R8`, `AKK_MXFP4_R8`, repack_iq4mx.c) and IQ4_XS
    /// into 16-row groups (`AKK_IQ4_XS_R16`, repack_iq4xs.c).
    let repack: Bool
    /// Allocations freed with the weights: the chunks the matrices are placed in, and the other
    /// blocks (vectors, converted copies; a converted copy is freed once it is repacked).
    private var chunks: [UnsafeMutableRawPointer] = []
    private var owned: [UnsafeMutableRawPointer] = []

    init(gguf: GGUFFile, target: WeightType, repack: Bool = false) {
        self.gguf = gguf
        self.target = target
        self.repack = repack
    }

    func releaseOwnership() -> [UnsafeMutableRawPointer] {
        defer { chunks = []; owned = [] }
        return chunks + owned
    }

    deinit { for p in chunks + owned { free(p) } }

    private static func allocateAligned(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        guard let p = UnsafeMutableRawPointer.allocateAligned(byteCount: bytes) else {
            throw AdaKError.outOfMemory("cannot allocate \(bytes) bytes for weights")
        }
        return p
    }

    private func allocate(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        let p = try Self.allocateAligned(bytes)
        owned.append(p)
        return p
    }

    /// Weight matrices live on transparent huge pages: on 4 KB pages the hardware prefetcher stops
    /// at every page boundary and each page costs a walk (a decode-sized product streamed the
    /// mixtral-shaped Q/K/V/O at ~80% of the probe bandwidth against ~97% from huge pages, 1
    /// thread; expert matrices 12% slower, docs/BENCHMARKS.md). They are placed one after another
    /// (64-byte steps) in chunks of address space of 256 MB (at most the file's size; at least one
    /// matrix in whole huge pages), whose pages become resident as they are written: only the last
    /// page a chunk has begun is partly empty.
    private var chunk: (base: UnsafeMutableRawPointer, used: Int, size: Int)? = nil
    private static let chunkBytes = 256 << 20
    /// A converted (owned) matrix from this size is used where it is: it has huge pages but for its tail.
    private static let copyLimit = 2 << 20

    private func allocateWeights(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        let need = (bytes + 63) / 64 * 64
        if let c = chunk, c.size - c.used >= need {
            chunk!.used += need
            return c.base + c.used
        }
        // no more address space than the file's bytes can fill (a small model, a tiny test file)
        let huge = 2 << 20, fileBytes = (gguf.storage.count + huge - 1) / huge * huge
        let size = max(min(Self.chunkBytes, fileBytes), (need + huge - 1) / huge * huge)
        let p = try Self.allocateAligned(size)
        chunks.append(p)
        chunk = (p, need, size)
        return p
    }

    func has(_ name: String) -> Bool { gguf.tensor(name) != nil }

    private func info(_ name: String, dims expected: [Int]) throws -> GGUFTensorInfo {
        guard let t = gguf.tensor(name) else { throw AdaKError.format("missing tensor '\(name)'") }
        var dims = t.dims
        while dims.count > expected.count, dims.last == 1 { dims.removeLast() }
        guard dims == expected else {
            throw AdaKError.format("tensor '\(name)' has shape \(t.dims), expected \(expected)")
        }
        return t
    }

    /// An f32 vector of n elements (norm weights, biases).
    func vector(_ name: String, _ n: Int) throws -> UnsafePointer<Float> {
        let t = try info(name, dims: [n])
        if t.type == UInt32(AKK_F32.rawValue) {
            return (gguf.data(t)).assumingMemoryBound(to: Float.self)
        }
        let p = try allocate(n * 4).assumingMemoryBound(to: Float.self)
        guard akk_dequantize_row(Int32(t.type), gguf.data(t), p, Int64(n)) == 0 else {
            throw AdaKError.unsupported("tensor '\(name)': type \(t.typeName) is not supported")
        }
        try checkFinite(name, p, n)
        return UnsafePointer(p)
    }

    /// Zeroed f32 memory owned with the weights (tensors rearranged at load).
    func allocateFloats(_ n: Int) throws -> UnsafeMutablePointer<Float> {
        let p = try allocate(max(n, 1) * 4).assumingMemoryBound(to: Float.self)
        p.update(repeating: 0, count: max(n, 1))
        return p
    }

    /// A tensor of `rows` × `cols` as f32 rows owned with the weights.
    func f32Rows(_ name: String, rows: Int, cols: Int) throws -> UnsafeMutablePointer<Float> {
        let t = try info(name, dims: [cols, rows])
        let p = try allocateFloats(rows * cols)
        let rb = Int(akk_row_bytes(Int32(bitPattern: t.type), Int64(cols)))
        for r in 0..<rows where akk_dequantize_row(Int32(bitPattern: t.type), gguf.data(t) + r * rb, p + r * cols, Int64(cols)) != 0 {
            throw AdaKError.unsupported("tensor '\(name)': type \(t.typeName) is not supported")
        }
        try checkFinite(name, p, rows * cols)
        return p
    }

    func optionalVector(_ name: String, _ n: Int) throws -> UnsafePointer<Float>? {
        has(name) ? try vector(name, n) : nil
    }

    private func checkFinite(_ name: String, _ p: UnsafePointer<Float>, _ n: Int) throws {
        for i in 0..<n where !p[i].isFinite {
            throw AdaKError.format("tensor '\(name)' contains NaN or infinity")
        }
    }

    /// A matrix of `rows` × `cols` (ggml ne = [cols, rows]); `forceF32` keeps it in f32 (routers).
    /// `mayRepack: false` keeps the GGUF row layout (a tied output head shares its bytes with the
    /// embedding lookups, which need whole rows); the bytes still move to huge pages.
    func matrix(_ name: String, rows: Int, cols: Int, forceF32: Bool = false, mayRepack: Bool = true) throws -> Matrix {
        let t = try info(name, dims: [cols, rows])
        let p = eightRowView(try repacked(convert(t, rowCount: rows, cols: cols, forceF32: forceF32),
                                          rows: rows, count: 1, cols: cols, allowed: mayRepack, dense: true),
                             rows: rows, allowed: mayRepack)
        return Matrix(type: p.type, data: p.data, rows: rows, cols: cols)
    }

    func optionalMatrix(_ name: String, rows: Int, cols: Int) throws -> Matrix? {
        has(name) ? try matrix(name, rows: rows, cols: cols) : nil
    }

    /// Stacked experts: ggml ne = [cols, rows, count].
    func experts(_ name: String, count: Int, rows: Int, cols: Int) throws -> ExpertStack {
        let t = try info(name, dims: [cols, rows, count])
        let p = eightRowView(try repacked(convert(t, rowCount: rows * count, cols: cols, forceF32: false),
                                          rows: rows, count: count, cols: cols, allowed: true, dense: false),
                             rows: rows, allowed: true)
        return ExpertStack(type: p.type, data: p.data, count: count, rows: rows, cols: cols)
    }

    /// Q4_0, Q4_K, IQ4_NL and MXFP4 as 8-row groups when the loader repacks and every matrix has a
    /// multiple of 8 rows (IQ4_NL/MXFP4: the numerics of their `_X8` views, which they replace), and
    /// IQ4_XS as 16-row groups when it has a multiple of 16 (the plain type's numerics, both orders);
    /// every other matrix (Q8_0, Q6_K, f32 routers...) as a plain copy of its bytes. Either way the
    /// result lives in `allocateWeights`' huge pages and the source (file pages or a converted
    /// copy) is released, so memory stays ~ the file size. `allowed` false (a tied output head,
    /// whose rows the embedding lookups read) keeps the row layout but still copies. Not copied:
    /// matrices of a model loaded from a caller's buffer, whose bytes cannot be released.
    /// Mapped sources go in slices of ~2 MB whose pages are released as soon as they are packed: the
    /// file is resident from the start (populate), so packing a whole expert stack before releasing
    /// it held both copies of it at once (peak RSS up to 1.15 x the file on Q4_0 MoE files); slices
    /// of 8 MB still left mixtral-shaped MXFP4 at 1.100 x (file + KV).
    /// `dense`: a Q4_K matrix that is no expert stack multiplies as llama.cpp's dense products
    /// with its repacked Q4_K do (AKK_Q4_K_R8_DENSE).
    private func repacked(_ p: (type: Int32, data: UnsafeRawPointer), rows: Int, count: Int, cols: Int,
                          allowed: Bool, dense: Bool) throws -> (type: Int32, data: UnsafeRawPointer) {
        var packedType: Int32? = switch p.type {
        case Int32(AKK_Q4_0.rawValue): Int32(AKK_Q4_0_R8.rawValue)
        case Int32(AKK_Q4_K.rawValue): Int32((dense ? AKK_Q4_K_R8_DENSE : AKK_Q4_K_R8).rawValue)
        case Int32(AKK_IQ4_NL.rawValue): Int32(AKK_IQ4_NL_R8.rawValue)
        case Int32(AKK_MXFP4.rawValue): Int32(AKK_MXFP4_R8.rawValue)
        case Int32(AKK_IQ4_XS.rawValue): Int32(AKK_IQ4_XS_R16.rawValue)
        default: nil
        }
        let group = packedType == Int32(AKK_IQ4_XS_R16.rawValue) ? 16 : 8 // rows per repacked group
        if !allowed || !repack || rows % group != 0 || cols % Int(akk_block_elems(p.type)) != 0 { packedType = nil }
        let ownedSource = owned.firstIndex(where: { UnsafeRawPointer($0) == p.data })
        let rowBytes = Int(akk_row_bytes(p.type, Int64(cols))), total = rows * count, bytes = rowBytes * total
        // a plain copy only moves file pages, or an owned matrix under copyLimit
        let copyWorthIt = ownedSource == nil ? gguf.storage.isMapped : bytes < Self.copyLimit
        guard packedType != nil || copyWorthIt else { return p }
        let out = try allocateWeights(bytes)
        let slice = max(group, (2 << 20) / rowBytes / group * group)
        for r0 in stride(from: 0, to: total, by: slice) {
            let n = min(slice, total - r0), src = p.data + r0 * rowBytes, dst = out + r0 * rowBytes
            var rc: Int32 = 0
            switch packedType {
            case nil: dst.copyMemory(from: src, byteCount: n * rowBytes)
            case Int32(AKK_Q4_0_R8.rawValue): rc = akk_repack_q4_0_r8(src, dst, Int64(n), Int64(cols))
            case Int32(AKK_Q4_K_R8.rawValue), Int32(AKK_Q4_K_R8_DENSE.rawValue):
                rc = akk_repack_q4_k_r8(src, dst, Int64(n), Int64(cols))
            case Int32(AKK_IQ4_XS_R16.rawValue): rc = akk_repack_iq4_xs_r16(src, dst, Int64(n), Int64(cols))
            default: rc = akk_repack_iq4mx_r8(p.type, src, dst, Int64(n), Int64(cols))
            }
            guard rc == 0 else {
                throw AdaKError.format("cannot repack a \(String(cString: akk_type_name(p.type))) matrix of \(rows) x \(cols)")
            }
            if ownedSource == nil { gguf.storage.release(src, byteCount: n * rowBytes) }
        }
        if let i = ownedSource {
            free(owned.remove(at: i))
        } else {
            gguf.storage.release(p.data, byteCount: bytes) // the pages that straddle two slices
        }
        return (packedType ?? p.type, UnsafeRawPointer(out))
    }

    /// IQ4_NL and MXFP4 matrices with a multiple of 8 rows (per expert) as their `_X8` views: the
    /// same bytes, multiplied with the numerics of llama.cpp's repacked 8-row kernels, which
    /// llama.cpp uses for exactly these matrices (adak_kernels.h). Not for a tied output head:
    /// llama.cpp keeps the embedding, which it shares, out of its repacked buffers.
    private func eightRowView(_ p: (type: Int32, data: UnsafeRawPointer), rows: Int, allowed: Bool) -> (type: Int32, data: UnsafeRawPointer) {
        guard allowed, rows % 8 == 0 else { return p }
        switch p.type {
        case Int32(AKK_IQ4_NL.rawValue): return (Int32(AKK_IQ4_NL_X8.rawValue), p.data)
        case Int32(AKK_MXFP4.rawValue): return (Int32(AKK_MXFP4_X8.rawValue), p.data)
        default: return p
        }
    }

    private func convert(_ t: GGUFTensorInfo, rowCount: Int, cols: Int, forceF32: Bool) throws -> (type: Int32, data: UnsafeRawPointer) {
        let type = Int32(bitPattern: t.type)
        let native = akk_vec_dot_type(type) >= 0
        if native && (!forceF32 || type == Int32(AKK_F32.rawValue)) {
            let blocks = Int64(rowCount) * Int64(cols) / max(akk_block_elems(type), 1)
            let bad = akk_find_nonfinite_scale(type, gguf.data(t), blocks)
            guard bad < 0 else { throw AdaKError.format("tensor '\(t.name)': block \(bad) has an infinite or NaN scale") }
            return (type, gguf.data(t))
        }
        var dst = forceF32 || cols % 32 != 0 ? WeightType.f32 : target
        if dst != .f32 && cols % 32 != 0 { dst = .f32 }
        let dstType = dst.ggmlType
        let srcRow = Int(akk_row_bytes(type, Int64(cols)))
        let dstRow = Int(akk_row_bytes(dstType, Int64(cols)))
        let out = try allocate(dstRow * rowCount)
        var row = [Float](repeating: 0, count: cols)
        let src = gguf.data(t)
        for r in 0..<rowCount {
            let ok = row.withUnsafeMutableBufferPointer { buf -> Bool in
                guard akk_dequantize_row(type, src + r * srcRow, buf.baseAddress!, Int64(cols)) == 0 else { return false }
                let dest = out + r * dstRow
                switch dst {
                case .f32: dest.copyMemory(from: buf.baseAddress!, byteCount: cols * 4)
                case .q8_0: akk_quantize_row_q8_0(buf.baseAddress!, dest, Int64(cols))
                case .q4_0: akk_quantize_row_q4_0_ref(buf.baseAddress!, dest, Int64(cols))
                }
                return true
            }
            guard ok else { throw AdaKError.unsupported("tensor '\(t.name)': type \(t.typeName) is not supported") }
        }
        // the converted copy replaces the source pages in memory (peak RSS ~ file size, not more)
        gguf.storage.release(src, byteCount: srcRow * rowCount)
        return (dstType, UnsafeRawPointer(out))
    }
}
