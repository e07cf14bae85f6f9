import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

/// Weight types multiplied natively since the K-quant kernels (kquant_dot.c, simd_avx2_kquant.c).
let kquantTypes: [Int32] = [AKK_Q5_0, AKK_Q5_1, AKK_Q2_K, AKK_Q3_K, AKK_Q4_K, AKK_Q5_K, AKK_Q6_K].map { Int32($0.rawValue) }

/// Byte offsets of the fp16 scales (d first, then dmin/m if any) in a block of `type`.
private func scaleOffsets(_ type: Int32) -> [Int] {
    switch UInt32(type) {
    case AKK_Q5_0.rawValue, AKK_Q8_0.rawValue, AKK_Q4_0.rawValue, AKK_IQ4_NL.rawValue, AKK_IQ4_XS.rawValue,
         AKK_IQ4_NL_X8.rawValue: [0]
    case AKK_Q5_1.rawValue, AKK_Q4_1.rawValue, AKK_Q4_K.rawValue, AKK_Q5_K.rawValue: [0, 2]
    case AKK_Q2_K.rawValue: [80, 82]
    case AKK_Q3_K.rawValue: [108]
    case AKK_Q6_K.rawValue: [208]
    default: []
    }
}

enum ScaleRange { case normal, extreme, nonFinite }

/// Random blocks of a quantised `type` (K-quants, Q5_x; also Q8_0, Q4_x, IQ4 and MXFP4): random
/// quant and sub-scale bytes, fp16 scales of sane size, or (extreme) a mix of 0, fp16 subnormals
/// and values up to 65504, or (nonFinite) some NaN and infinite scales. MXFP4's e8m0 scale: near
/// 2^-7, or (extreme, nonFinite) some 0, 1, 254 and 255.
func randomKQuantWeights(_ type: Int32, rows: Int, n: Int, scales: ScaleRange = .normal, rng: inout SplitMix64) -> [UInt8] {
    let bs = Int(akk_block_bytes(type))
    var out = (0..<(Int(akk_row_bytes(type, Int64(n))) * rows)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    for b in 0..<(out.count / bs) {
        if type == Int32(AKK_MXFP4.rawValue) || type == Int32(AKK_MXFP4_X8.rawValue) {
            out[b * bs] = scales != .normal && Bool.random(using: &rng) ? [0, 1, 254, 255][Int.random(in: 0..<4, using: &rng)]
                                                                          : UInt8.random(in: 115...129, using: &rng)
            continue
        }
        for (k, off) in scaleOffsets(type).enumerated() {
            var h: UInt16
            switch scales {
            case .normal:
                h = akk_fp32_to_fp16(Float.random(in: 0.001...0.05, using: &rng) * (k == 1 && type != Int32(AKK_Q5_1.rawValue) ? 1 : (Bool.random(using: &rng) ? 1 : -1)))
            case .extreme:
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: h = 0
                case 1: h = UInt16.random(in: 1...0x3ff, using: &rng)             // subnormal
                case 2: h = UInt16.random(in: 0x7000...0x7bff, using: &rng)       // 2^13 ... 65504
                default: h = akk_fp32_to_fp16(Float.random(in: -1...1, using: &rng))
                }
                if Bool.random(using: &rng) { h |= 0x8000 }
            case .nonFinite:
                h = [0x7c00, 0xfc00, 0x7e00, 0x3c00][Int.random(in: 0..<4, using: &rng)]
            }
            out[b * bs + off] = UInt8(h & 0xff)
            out[b * bs + off + 1] = UInt8(h >> 8)
        }
    }
    return out
}

private func quantized(_ wtype: Int32, _ x: [Float], n: Int, rows: Int) -> [UInt8] {
    let rb = Int(akk_row_bytes(akk_vec_dot_type(wtype), Int64(n)))
    var out = [UInt8](repeating: 0, count: rb * rows)
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBytes { o in
            for r in 0..<rows { akk_quantize_activation(wtype, xp.baseAddress! + r * n, o.baseAddress! + r * rb, Int64(n)) }
        }
    }
    return out
}

private func matmul(_ type: Int32, _ w: [UInt8], nOut: Int, nIn: Int, _ x: [UInt8], tokens: Int, threads: Int32) -> [Float] {
    var y = [Float](repeating: .nan, count: nOut * tokens)
    let xs = akk_row_bytes(akk_vec_dot_type(type), Int64(nIn))
    w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in y.withUnsafeMutableBufferPointer { yp in
        akk_matmul(type, wp.baseAddress!, Int64(nOut), Int64(nIn), xp.baseAddress!, xs, Int64(tokens), yp.baseAddress!, Int64(nOut), threads)
    }}}
    return y
}

private func name(_ t: Int32) -> String { String(cString: akk_type_name(t)) }

/// Equal bit patterns, or both NaN (NaN payloads are not part of the contract).
private func same(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

/// Activations per 32 elements: zero blocks, exact .5 ties, wide dynamic ranges.
private func activations(_ count: Int, rng: inout SplitMix64) -> [Float] {
    var x = [Float](repeating: 0, count: count)
    for b in 0..<(count / 32) {
        let kind = Int.random(in: 0..<8, using: &rng), scale = Float.random(in: 0.01...100, using: &rng)
        for j in 0..<32 {
            switch kind {
            case 0: x[b * 32 + j] = 0
            case 1: x[b * 32 + j] = Float(Int.random(in: -254...254, using: &rng)) / 2
            default: x[b * 32 + j] = Float.random(in: -1...1, using: &rng) * scale
            }
        }
    }
    return x
}

/// Independent statement of llama.cpp's quantize_row_q8_K_ref (ggml-quants.c).
private func q8KReference(_ x: ArraySlice<Float>) -> (d: Float, q: [Int8], bsums: [Int16]) {
    var amax: Float = 0, mx: Float = 0
    for v in x where abs(v) > amax { amax = abs(v); mx = v }
    guard amax != 0 else { return (0, [Int8](repeating: 0, count: 256), [Int16](repeating: 0, count: 16)) }
    let iscale = -127 / mx
    let q = x.map { Int8(min(127, Int((iscale * $0).rounded(.toNearestOrEven)))) }
    let bsums = (0..<16).map { j in Int16(q[(16 * j)..<(16 * j + 16)].reduce(0) { $0 + Int($1) }) }
    return (1 / iscale, q, bsums)
}

@Suite(.serialized) struct KQuantKernelTests {
    init() { _ = akk_init() }

    @Test func activationTypes() {
        for t in kquantTypes {
            let want: UInt32 = t == Int32(AKK_Q5_0.rawValue) ? AKK_Q8_0.rawValue : t == Int32(AKK_Q5_1.rawValue) ? AKK_Q8_1.rawValue : AKK_Q8_K.rawValue
            #expect(akk_vec_dot_type(t) == Int32(want), "\(name(t))")
        }
        #expect(akk_vec_dot_type(Int32(AKK_Q8_K.rawValue)) == -1)
    }

    @Test func q8KQuantizationIsLlamaCpps() {
        var rng = SplitMix64(seed: 3)
        var x = activations(256 * 12, rng: &rng)
        for j in 0..<256 { x[256 * 3 + j] = 0 }                           // all-zero block
        for j in 0..<256 { x[256 * 4 + j] = Float(j - 128) / 2 }          // ties; max is -64 (first)
        for j in 0..<256 { x[256 * 5 + j] = Float(j % 7) / 8 }
        x[256 * 5 + 7] = -5; x[256 * 5 + 9] = 5                           // equal |max|: the first wins
        var y = [UInt8](repeating: 0xAA, count: 292 * 12)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBytes { akk_quantize_row_q8_K(xp.baseAddress!, $0.baseAddress!, Int64(x.count)) } }
        for b in 0..<12 {
            let r = q8KReference(x[(256 * b)..<(256 * b + 256)])
            let blk = Array(y[(292 * b)..<(292 * b + 292)])
            let d = blk.withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
            #expect(d.bitPattern == r.d.bitPattern, "block \(b)")
            #expect(blk[4..<260].map { Int8(bitPattern: $0) } == r.q, "block \(b)")
            let bs = (0..<16).map { j in blk.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 260 + 2 * j, as: Int16.self) } }
            #expect(bs == r.bsums, "block \(b)")
        }
        // block 5: max = -5 (the first of the two), so d = 1/iscale = max/-127 > 0
        #expect(y.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 292 * 5, as: Float.self) } > 0)
    }

    /// The AVX2 Q8_K quantiser (what akk_quantize_activation runs) writes the scalar reference's
    /// bytes: ties, zero blocks, equal magnitudes of either sign, NaN and infinities.
    @Test func q8KQuantizerSIMDEqualsScalar() {
        var rng = SplitMix64(seed: 41)
        for round in 0..<40 {
            var x = activations(256 * 6, rng: &rng)
            for i in x.indices where Int.random(in: 0..<50, using: &rng) == 0 {
                x[i] = [Float.nan, .infinity, -.infinity, -0.0, 1, -1][Int.random(in: 0..<6, using: &rng)]
            }
            if round % 4 == 0 { for j in 0..<256 { x[256 + j] = 0 } }
            if round % 4 == 1 { for j in 0..<256 { x[512 + j] = j % 2 == 0 ? 3 : -3 } }
            var a = [UInt8](repeating: 0xAA, count: 292 * 6), b = [UInt8](repeating: 0x55, count: 292 * 6)
            x.withUnsafeBufferPointer { xp in
                a.withUnsafeMutableBytes { akk_quantize_row_q8_K(xp.baseAddress!, $0.baseAddress!, Int64(x.count)) }
                b.withUnsafeMutableBytes { akk_quantize_activation(Int32(AKK_Q4_K.rawValue), xp.baseAddress!, $0.baseAddress!, Int64(x.count)) }
            }
            #expect(a == b, "round \(round)")
        }
    }

    /// Scalar reference = AVX2 kernel, bit for bit: dots, matmuls over several shapes, 1 and 2
    /// threads, decode and prefill, normal and extreme scales. The token counts reach every tile
    /// shape of the row kernels (4, 2 and 1 tokens; odd rows left over) and a second chunk of 64.
    @Test func scalarEqualsSIMDExactly() {
        var rng = SplitMix64(seed: 21)
        var checked = 0
        for t in kquantTypes {
            let be = Int(akk_block_elems(t))
            for (k, (blocks, nOut, tokens)) in [(1, 1, 1), (2, 3, 2), (3, 8, 1), (5, 13, 4), (8, 17, 9), (12, 40, 1), (6, 203, 11), (2, 21, 71)].enumerated() {
                let nIn = blocks * (be == 256 ? 256 : 96)
                for scales in [ScaleRange.normal, .extreme] {
                    let w = randomKQuantWeights(t, rows: nOut, n: nIn, scales: scales, rng: &rng)
                    let x = quantized(t, activations(nIn * tokens, rng: &rng), n: nIn, rows: tokens)
                    let simd1 = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                    let simd2 = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                    akk_force_scalar(1)
                    let scalar = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                    akk_force_scalar(0)
                    #expect(same(simd1, scalar), "\(name(t)) case \(k) \(scales)")
                    #expect(same(simd2, scalar), "\(name(t)) case \(k) \(scales) 2 threads")
                    // every SIMD level this CPU has (AVX2, AVX-512: its own tiled-order tiles)
                    for level in stride(from: Int32(AKK_CPU_AVX2.rawValue), through: akk_cpu_max_level(), by: 1) {
                        _ = akk_force_level(level)
                        let y = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                        _ = akk_force_level(-1)
                        #expect(same(y, scalar), "\(name(t)) case \(k) \(scales) \(String(cString: akk_cpu_level_name(level)))")
                    }
                    if scales == .normal { let finite = scalar.allSatisfy { $0.isFinite }; #expect(finite, "\(name(t)) case \(k)") }
                    let wr = Int(akk_row_bytes(t, Int64(nIn))), xr = Int(akk_row_bytes(akk_vec_dot_type(t), Int64(nIn)))
                    let o = nOut - 1, tk = tokens - 1
                    let (a, b) = w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in
                        (akk_vec_dot(t, Int64(nIn), wp.baseAddress! + o * wr, xp.baseAddress! + tk * xr),
                         akk_vec_dot_scalar(t, Int64(nIn), wp.baseAddress! + o * wr, xp.baseAddress! + tk * xr)) } }
                    // products of >= 8 rows take llama.cpp's tiled order for these types instead
                    let tiled = tokens >= 8 && [AKK_Q2_K, AKK_Q3_K, AKK_Q5_K, AKK_Q6_K].map { Int32($0.rawValue) }.contains(t)
                    #expect(same([a], [b]) && (tiled || same([a], [simd1[tk * nOut + o]])), "\(name(t)) dot")
                    checked += 1
                }
            }
        }
        #expect(checked == kquantTypes.count * 8 * 2)
    }

    /// The kernels compute the dot product of the dequantised rows (gguf-py's and ggml's
    /// dequantisation) with the dequantised activations, up to float rounding.
    @Test func matmulMatchesDoubleReference() throws {
        var rng = SplitMix64(seed: 77)
        for t in kquantTypes {
            for (nIn, nOut, tokens) in [(256, 5, 1), (768, 9, 3), (2048, 16, 2), (1024, 7, 8)] {
                let w = randomKQuantWeights(t, rows: nOut, n: nIn, rng: &rng)
                let x = quantized(t, activations(nIn * tokens, rng: &rng), n: nIn, rows: tokens)
                let y = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                var wf = [Float](repeating: 0, count: nOut * nIn)
                let rc = w.withUnsafeBytes { wp in wf.withUnsafeMutableBufferPointer { akk_dequantize_row(t, wp.baseAddress!, $0.baseAddress!, Int64(nOut * nIn)) } }
                try #require(rc == 0)
                let vt = akk_vec_dot_type(t)
                var xf = [Double]()
                if vt == Int32(AKK_Q8_K.rawValue) {
                    for b in 0..<(nIn * tokens / 256) {
                        let d = Double(x.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 292 * b, as: Float.self) })
                        for j in 0..<256 { xf.append(d * Double(Int8(bitPattern: x[292 * b + 4 + j]))) }
                    }
                } else {
                    let bs = vt == Int32(AKK_Q8_0.rawValue) ? 34 : 36
                    for b in 0..<(nIn * tokens / 32) {
                        let d = Double(akk_fp16_to_fp32(UInt16(x[b * bs]) | UInt16(x[b * bs + 1]) << 8))
                        for j in 0..<32 { xf.append(d * Double(Int8(bitPattern: x[b * bs + bs - 32 + j]))) }
                    }
                }
                var worst = 0.0
                for tk in 0..<tokens {
                    for o in 0..<nOut {
                        var ref = 0.0, mag = 0.0
                        if t == Int32(AKK_Q5_1.rawValue) {
                            // Q5_1 x Q8_1 uses the stored fp16 block sum s for sum(m*x), as llama.cpp
                            for b in 0..<(nIn / 32) {
                                let wb = (o * nIn / 32 + b) * 24, xb = (tk * nIn / 32 + b) * 36
                                let m = Double(akk_fp16_to_fp32(UInt16(w[wb + 2]) | UInt16(w[wb + 3]) << 8))
                                let s = Double(akk_fp16_to_fp32(UInt16(x[xb + 2]) | UInt16(x[xb + 3]) << 8))
                                ref += m * s; mag += abs(m * s)
                                for j in 0..<32 {
                                    let p = (Double(wf[o * nIn + b * 32 + j]) - m) * xf[tk * nIn + b * 32 + j]
                                    ref += p; mag += abs(p)
                                }
                            }
                        } else {
                            for i in 0..<nIn {
                                let p = Double(wf[o * nIn + i]) * xf[tk * nIn + i]
                                ref += p; mag += abs(p)
                            }
                        }
                        worst = max(worst, abs(Double(y[tk * nOut + o]) - ref) / max(mag, 1e-30))
                    }
                }
                #expect(worst < 4e-6, "\(name(t)) \(nIn)x\(nOut)x\(tokens): \(worst)")
            }
        }
    }

    /// Corrupted blocks (NaN / infinite scales, random bytes) never crash; results are NaN/inf
    /// or garbage, the same on both paths.
    /// Q4_K repacked in groups of 8 rows (AKK_Q4_K_R8): the repacking is lossless, its scalar
    /// reference equals the plain Q4_K kernel bit for bit (same float order per row), and every
    /// SIMD level equals it: decode (odd and even group counts: the two-stream path) and prefill
    /// (token tiles with tails, a second chunk of 64), 1 and 2 threads, normal and extreme scales.
    @Test func q4KRepackedEqualsQ4KExactlyAtEveryLevel() {
        var rng = SplitMix64(seed: 31)
        let q4k = Int32(AKK_Q4_K.rawValue), r8 = Int32(AKK_Q4_K_R8.rawValue), dn = Int32(AKK_Q4_K_R8_DENSE.rawValue)
        #expect(akk_vec_dot_type(r8) == Int32(AKK_Q8_K.rawValue) && akk_vec_dot_type(dn) == Int32(AKK_Q8_K.rawValue))
        #expect(akk_row_bytes(r8, 512) == akk_row_bytes(q4k, 512) && akk_row_bytes(dn, 512) == akk_row_bytes(q4k, 512))
        let levels = (Int32(AKK_CPU_AVX2.rawValue)...akk_cpu_max_level()).map { $0 }
        for (blocks, nOut, tokens) in [(1, 8, 1), (2, 16, 1), (3, 24, 1), (2, 40, 2), (1, 8, 3), (5, 16, 5),
                                       (2, 24, 9), (3, 8, 70), (1, 16, 130), (8, 72, 4), (2, 8, 7), (1, 8, 68)] {
            let nIn = blocks * 256, rb = Int(akk_row_bytes(q4k, Int64(nIn)))
            for scales in [ScaleRange.normal, .extreme] {
                let w = randomKQuantWeights(q4k, rows: nOut, n: nIn, scales: scales, rng: &rng)
                var packed = [UInt8](repeating: 0, count: w.count), row = [UInt8](repeating: 0, count: rb)
                #expect(akk_repack_q4_k_r8(w, &packed, Int64(nOut), Int64(nIn)) == 0)
                for r in 0..<nOut {
                    #expect(akk_q4_k_r8_row(packed, Int64(r), Int64(nIn), &row) == 0)
                    #expect(row[...] == w[(r * rb)..<((r + 1) * rb)], "row \(r) of \(nOut)x\(nIn)")
                }
                let x = quantized(q4k, activations(nIn * tokens, rng: &rng), n: nIn, rows: tokens)
                akk_force_scalar(1)
                let plain = matmul(q4k, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                let scalar = matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                akk_force_scalar(0)
                let label = "\(nIn)x\(nOut)x\(tokens) \(scales)"
                #expect(same(scalar, plain), "scalar q4_k_r8 vs q4_k \(label)")
                // AKK_Q4_K_R8_DENSE (llama.cpp's gemm order for the rows in groups of 4): its scalar
                // reference gives the rows left over (and products of < 4 rows) as AKK_Q4_K_R8, and
                // the others by an independent evaluation of that order (q4KGemmOrder)
                akk_force_scalar(1)
                let dense = matmul(dn, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                akk_force_scalar(0)
                let n4 = tokens >= 4 ? tokens - tokens % 4 : 0
                #expect(same(Array(dense[(n4 * nOut)...]), Array(scalar[(n4 * nOut)...])), "dense tail \(label)")
                if n4 > 0 {
                    let gemm = q4KGemmOrder(w, nOut: nOut, nIn: nIn, x, tokens: n4)
                    #expect(same(Array(dense[..<(n4 * nOut)]), gemm), "dense gemm order \(label)")
                }
                for level in levels {
                    #expect(akk_force_level(level) == level)
                    for threads: Int32 in [1, 2] {
                        let y = matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads)
                        #expect(same(y, scalar), "\(String(cString: akk_cpu_level_name(level))) \(label) threads \(threads)")
                        let yd = matmul(dn, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads)
                        #expect(same(yd, dense), "dense \(String(cString: akk_cpu_level_name(level))) \(label) threads \(threads)")
                    }
                }
                _ = akk_force_level(-1)
            }
        }
        // Rows that do not fill groups of 8, or rows that are not whole super-blocks, are refused.
        var out = [UInt8](repeating: 0, count: 144 * 12)
        let src = [UInt8](repeating: 0, count: 144 * 12)
        #expect(akk_repack_q4_k_r8(src, &out, 12, 256) == -1)
        #expect(akk_repack_q4_k_r8(src, &out, 8, 128) == -1)
        #expect(akk_q4_k_r8_row(src, -1, 256, &out) == -1)
    }

    /// llama.cpp's x86 AVX2 ggml_gemm_q4_K_8x8_q8_K order, from the plain Q4_K rows (written from
    /// its description, independently of repack_q4_k.c): per row and token, for each pair of
    /// sub-blocks p of each super-block, S = sc[2p]*dot[2p] + sc[2p+1]*dot[2p+1] and M = m[2p]*B[2p]
    /// + m[2p+1]*B[2p+1] (exact), acc = fma(S, d*d_x, acc), accm = fma(M, dmin*d_x, accm); acc - accm.
    func q4KGemmOrder(_ w: [UInt8], nOut: Int, nIn: Int, _ x: [UInt8], tokens: Int) -> [Float] {
        let nb = nIn / 256
        func f16(_ p: Int) -> Float { akk_fp16_to_fp32(UInt16(w[p]) | UInt16(w[p + 1]) << 8) }
        var y = [Float](repeating: 0, count: tokens * nOut)
        for t in 0..<tokens {
            for o in 0..<nOut {
                var acc: Float = 0, accm: Float = 0
                for b in 0..<nb {
                    let wb = (o * nb + b) * 144, xb = (t * nb + b) * 292
                    let dx = x.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: xb, as: Float.self) }
                    // the 6-bit scales and mins of the 12 bytes at wb + 4 (ggml's get_scale_min_k4)
                    let q = Array(w[(wb + 4)..<(wb + 16)])
                    func scaleMin(_ j: Int) -> (Int, Int) {
                        j < 4 ? (Int(q[j] & 63), Int(q[j + 4] & 63))
                              : (Int(q[j + 4] & 0xF) | Int(q[j - 4] >> 6) << 4, Int(q[j + 4] >> 4) | Int(q[j] >> 6) << 4)
                    }
                    let d = f16(wb) * dx, dm = f16(wb + 2) * dx
                    for p in 0..<4 {
                        var S = 0, M = 0
                        for c in [2 * p, 2 * p + 1] {
                            let (sc, m) = scaleMin(c)
                            var dot = 0, bsum = 0
                            for e in 0..<32 {
                                let byte = w[wb + 16 + 32 * p + e]
                                let v = c % 2 == 0 ? Int(byte & 15) : Int(byte >> 4)
                                let xv = Int(Int8(bitPattern: x[xb + 4 + 32 * c + e]))
                                dot += v * xv
                                bsum += xv
                            }
                            S += sc * dot
                            M += m * bsum
                        }
                        acc = acc.addingProduct(Float(S), d) // fused, as _mm256_fmadd_ps
                        accm = accm.addingProduct(Float(M), dm)
                    }
                }
                y[t * nOut + o] = acc - accm
            }
        }
        return y
    }

    @Test func corruptedBlocksDoNotCrash() {
        var rng = SplitMix64(seed: 5)
        for t in kquantTypes {
            let nIn = 512, nOut = 16
            let w = randomKQuantWeights(t, rows: nOut, n: nIn, scales: .nonFinite, rng: &rng)
            var xs = activations(nIn * 2, rng: &rng)
            xs[300] = 3e38
            if akk_vec_dot_type(t) == Int32(AKK_Q8_K.rawValue) { xs[3] = .nan; xs[nIn + 5] = .infinity }
            let x = quantized(t, xs, n: nIn, rows: 2)
            let simd = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: 2, threads: 2)
            akk_force_scalar(1)
            let scalar = matmul(t, w, nOut: nOut, nIn: nIn, x, tokens: 2, threads: 1)
            akk_force_scalar(0)
            #expect(same(simd, scalar), "\(name(t))")
        }
    }
}
