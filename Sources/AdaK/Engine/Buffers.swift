#if canImport(Glibc)
import Glibc
#endif
import CAdaKKernels

/// A 64-byte aligned block of floats owned by its object, zero-initialised unless asked not to be.
final class FloatBuffer {
    let p: UnsafeMutablePointer<Float>
    let count: Int

    /// `zeroed: false` is for scratch that is always written before it is read: its pages are then
    /// only made resident when first used (a decode step touches a few rows of prefill-sized
    /// scratch; peak RSS stays near the model size).
    init(_ count: Int, zeroed: Bool = true) throws {
        guard count >= 0, count <= Int.max / 8, let raw = UnsafeMutableRawPointer.allocateAligned(byteCount: count * 4) else {
            throw AdaKError.outOfMemory("cannot allocate \(count) floats")
        }
        if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(count * 4, 64)) }
        p = raw.assumingMemoryBound(to: Float.self)
        self.count = count
    }

    deinit { free(p) }
}

/// Rows of f32 activations plus lazily made copies in the formats weight types multiply with
/// (Q8_0 or Q8_1 blocks, quantised per row as llama.cpp does). One instance per input that
/// several matrices share, e.g. the normalised hidden state for Q, K and V.
final class ActivationRows {
    private let q80: UnsafeMutableRawPointer
    private let q81: UnsafeMutableRawPointer
    private let q8K: UnsafeMutableRawPointer
    private let capacityElems: Int
    private(set) var src: UnsafePointer<Float>? = nil
    private(set) var rows = 0
    private(set) var cols = 0
    private var srcStride = 0
    private var have80 = false
    private var have81 = false
    private var have8K = false
    /// Threads that quantise a batch of rows (a prefill's; one row runs on the caller).
    private let threads: Int

    /// Room for `capacity` floats (rows × cols) in every format.
    init(capacity: Int, threads: Int = 1) throws {
        capacityElems = capacity
        self.threads = threads
        guard let a = UnsafeMutableRawPointer.allocateAligned(byteCount: capacity / 32 * 36 + 64),
              let b = UnsafeMutableRawPointer.allocateAligned(byteCount: capacity / 32 * 36 + 64),
              // a Q8_K row takes 292/256 bytes per element, a little more than Q8_1's 36/32
              let c = UnsafeMutableRawPointer.allocateAligned(byteCount: capacity / 256 * 292 + 292 + 64) else {
            throw AdaKError.outOfMemory("cannot allocate activation buffers")
        }
        q80 = a
        q81 = b
        q8K = c
    }

    deinit {
        free(q80)
        free(q81)
        free(q8K)
    }

    /// Points at new f32 rows (not copied: they must stay unchanged until the next `set`).
    func set(_ x: UnsafePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        precondition(rows * cols <= capacityElems)
        src = x
        self.rows = rows
        self.cols = cols
        srcStride = stride ?? cols
        have80 = false
        have81 = false
        have8K = false
    }

    /// The rows in the vec-dot format of weight type `wtype`: (pointer, bytes per row).
    func input(for wtype: Int32) -> (UnsafeRawPointer, Int) {
        let x = src!
        let vt = akk_vec_dot_type(wtype)
        /// `buf` holds the rows in format vt once `done` is set (quantised on first use).
        func quantized(_ buf: UnsafeMutableRawPointer, _ done: inout Bool) -> (UnsafeRawPointer, Int) {
            let rb = Int(akk_row_bytes(vt, Int64(cols)))
            if !done {
                akk_quantize_activation_rows(wtype, x, Int64(srcStride), buf, Int64(rb), Int64(rows), Int64(cols), Int32(threads))
                done = true
            }
            return (UnsafeRawPointer(buf), rb)
        }
        switch vt {
        case Int32(AKK_Q8_0.rawValue): return quantized(q80, &have80)
        case Int32(AKK_Q8_1.rawValue): return quantized(q81, &have81)
        case Int32(AKK_Q8_K.rawValue): return quantized(q8K, &have8K)
        default: return (UnsafeRawPointer(x), srcStride * 4)
        }
    }
}
