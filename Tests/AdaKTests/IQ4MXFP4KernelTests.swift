import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

private let iq4nl = Int32(AKK_IQ4_NL.rawValue), iq4xs = Int32(AKK_IQ4_XS.rawValue), mxfp4 = Int32(AKK_MXFP4.rawValue)
private let iq4nlX8 = Int32(AKK_IQ4_NL_X8.rawValue), mxfp4X8 = Int32(AKK_MXFP4_X8.rawValue)
private let newTypes = [iq4nl, iq4xs, mxfp4, iq4nlX8, mxfp4X8]

private func name(_ t: Int32) -> String { String(cString: akk_type_name(t)) }
/// The SIMD kernel levels this CPU has (AVX2, AVX-512).
private var simdLevels: [Int32] {
    [Int32(AKK_CPU_AVX2.rawValue), Int32(AKK_CPU_AVX512.rawValue)].filter { $0 <= akk_cpu_max_level() }
}
private func rowBytes(_ t: Int32, _ n: Int) -> Int { Int(akk_row_bytes(t, Int64(n))) }

/// Random rows: random quant bytes; sane scales (fp16 d of 0.001...0.05, either sign; e8m0 near
/// 2^-7), or with `corrupt` also NaN / ±inf / 65504 fp16 scales and e8m0 0, 1, 254, 255.
private func iqWeights(_ type: Int32, rows: Int, n: Int, corrupt: Bool = false, rng: inout SplitMix64) -> [UInt8] {
    let bs = Int(akk_block_bytes(type))
    var out = (0..<(rowBytes(type, n) * rows)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    for b in 0..<(out.count / bs) {
        if type == mxfp4 || type == mxfp4X8 {
            out[b * bs] = corrupt && Bool.random(using: &rng) ? [0, 1, 254, 255].randomElement(using: &rng)! : UInt8.random(in: 115...129, using: &rng)
        } else {
            var d = akk_fp32_to_fp16(Float.random(in: 0.001...0.05, using: &rng) * (Bool.random(using: &rng) ? 1 : -1))
            if corrupt && Bool.random(using: &rng) { d = [0x7e00, 0x7c00, 0xfc00, 0x7bff, 0xffff].randomElement(using: &rng)! }
            out[b * bs] = UInt8(d & 0xff); out[b * bs + 1] = UInt8(d >> 8)
        }
    }
    return out
}

private func acts(_ wtype: Int32, count: Int, tokens: Int, rng: inout SplitMix64) -> [UInt8] {
    let x = (0..<(count * tokens)).map { i in i % 97 == 5 ? 0 : Float.random(in: -3...3, using: &rng) }
    let rb = rowBytes(akk_vec_dot_type(wtype), count)
    var out = [UInt8](repeating: 0, count: rb * tokens)
    x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBytes { o in
        for t in 0..<tokens { akk_quantize_activation(wtype, xp.baseAddress! + t * count, o.baseAddress! + t * rb, Int64(count)) }
    } }
    return out
}

private func matmul(_ type: Int32, _ w: [UInt8], nOut: Int, nIn: Int, _ x: [UInt8], tokens: Int, threads: Int32) -> [Float] {
    var y = [Float](repeating: 12345, count: nOut * tokens)
    let xs = rowBytes(akk_vec_dot_type(type), nIn)
    w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in y.withUnsafeMutableBufferPointer { yp in
        akk_matmul(type, wp.baseAddress!, Int64(nOut), Int64(nIn), xp.baseAddress!, Int64(xs), Int64(tokens), yp.baseAddress!, Int64(nOut), threads)
    } } }
    return y
}

/// Equal bits, or both NaN (a NaN's payload depends on which operand carried it).
private func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
private func same(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { same($0, $1) } }

/// IQ4_NL, IQ4_XS, MXFP4 (and the 8-row views of IQ4_NL / MXFP4): against llama.cpp's own kernels
/// (Tests/Fixtures/iq4mx/kernels.bin), and SIMD against the scalar references. Serialized: the
/// scalar/SIMD switch is process-wide.
@Suite(.serialized) struct IQ4MXFP4KernelTests {
    init() { _ = akk_init() }

    /// llama.cpp's x86 build (ggml_get_type_traits_cpu: from_float, vec_dot; to_float) on random
    /// rows incl. corrupted scales: our activation quantisation gives the same bytes, our
    /// dequantisation and dot products (SIMD and scalar) the same floats.
    @Test func matchesLlamaCppKernelsToTheBit() throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("iq4mx/kernels.bin"))))
        func u32(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 | Int(data[o + 2]) << 16 | Int(data[o + 3]) << 24 }
        func floats(_ o: Int, _ n: Int) -> [Float] { (0..<n).map { Float(bitPattern: UInt32(u32(o + 4 * $0))) } }
        var off = 0, records = 0
        var seen: Set<String> = []
        while off < data.count {
            let type = Int32(u32(off)), n = u32(off + 4), wb = u32(off + 8), xb = u32(off + 12)
            off += 16
            let w = Array(data[off..<(off + wb)]); off += wb
            let x = floats(off, n); off += 4 * n
            let xq = Array(data[off..<(off + xb)]); off += xb
            let dot = floats(off, 1)[0]; off += 4
            let deq = floats(off, n); off += 4 * n
            #expect(rowBytes(type, n) == wb && rowBytes(akk_vec_dot_type(type), n) == xb)
            var ours = [UInt8](repeating: 0, count: xb)
            x.withUnsafeBufferPointer { xp in ours.withUnsafeMutableBytes { akk_quantize_activation(type, xp.baseAddress!, $0.baseAddress!, Int64(n)) } }
            #expect(ours == xq, "\(name(type)) n \(n): activation quantisation")
            var out = [Float](repeating: 0, count: n)
            let rc = w.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { akk_dequantize_row(type, r.baseAddress!, $0.baseAddress!, Int64(n)) } }
            #expect(rc == 0 && same(out, deq), "\(name(type)) n \(n): dequantisation")
            let (simd, scalar) = w.withUnsafeBytes { wp in xq.withUnsafeBytes { xp in
                (akk_vec_dot(type, Int64(n), wp.baseAddress!, xp.baseAddress!), akk_vec_dot_scalar(type, Int64(n), wp.baseAddress!, xp.baseAddress!))
            } }
            #expect(same(simd, dot) && same(scalar, dot), "\(name(type)) n \(n): dot \(simd) / \(scalar), llama.cpp \(dot)")
            records += 1
            seen.insert(name(type))
        }
        #expect(records == 64 && seen == ["iq4_nl", "iq4_xs", "mxfp4"])
    }

    /// Matmuls of every shape class (block counts odd and even, row counts around the 4-row and
    /// 8-row tiles and IQ4_XS's 16-row groups, 1..9 tokens and token tails of the 4- and 8-token
    /// prefill tiles, several token chunks) on 1 and 2 threads: every SIMD level (AVX2, and AVX-512
    /// where the CPU has it) = scalar bit for bit, and every element equals the single dot product.
    @Test func matmulScalarEqualsSIMDExactly() {
        var rng = SplitMix64(seed: 2026)
        var checked = 0
        for type in newTypes {
            let be = Int(akk_block_elems(type))
            let blocks = be == 256 ? [1, 2, 3, 6] : [1, 2, 3, 5, 8, 9, 18]
            for (i, nb) in blocks.enumerated() {
                let nIn = nb * be
                for (nOut, tokens) in [(1, 1), (7, 1), (8, 3), (13, 2), (17 + i, 1 + i % 9), (40, 11), (24, 37), (64, 70),
                                         (13, 9), (35, 16)] {
                    let w = iqWeights(type, rows: nOut, n: nIn, rng: &rng)
                    let x = acts(type, count: nIn, tokens: tokens, rng: &rng)
                    _ = akk_force_level(Int32(AKK_CPU_SCALAR.rawValue))
                    let scalar = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                    for level in simdLevels {
                        #expect(akk_force_level(level) == level)
                        for threads: Int32 in [1, 2] {
                            let simd = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads)
                            #expect(simd.map(\.bitPattern) == scalar.map(\.bitPattern),
                                    "\(String(cString: akk_cpu_level_name(level))) \(name(type)) \(nIn)x\(nOut)x\(tokens) threads \(threads)")
                        }
                    }
                    _ = akk_force_level(-1)
                    let xs = rowBytes(akk_vec_dot_type(type), nIn), wr = rowBytes(type, nIn)
                    let o = nOut - 1, t = tokens - 1
                    let d = w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in
                        akk_vec_dot(type, Int64(nIn), wp.baseAddress! + o * wr, xp.baseAddress! + t * xs) } }
                    // IQ4_XS products of >= 8 rows take llama.cpp's tiled order (kquant_dot.c), not the dot's
                    if type != Int32(AKK_IQ4_XS.rawValue) || tokens < 8 { #expect(d.bitPattern == scalar[t * nOut + o].bitPattern) }
                    checked += 1
                }
            }
        }
        #expect(checked == 10 * (7 + 4 + 7 + 7 + 7))
    }

    /// IQ4_XS decode (1 token) at the avx512 level: its 8-row tiles over 8 parts of the range plus
    /// the rest, with the lookups and scales by AVX-512 VBMI and by the AVX2 fallback, sane and
    /// corrupted scales, 1 and 2 threads: = scalar bit for bit (NaN = NaN).
    @Test(.enabled(if: akk_cpu_max_level() >= Int32(AKK_CPU_AVX512.rawValue), "this CPU lacks AVX-512 F/BW/VL/VNNI"))
    func iq4XSDecodeWithAndWithoutVBMIEqualsScalar() {
        var rng = SplitMix64(seed: 4096)
        let avx512 = Int32(AKK_CPU_AVX512.rawValue)
        for vbmi: Int32 in [0, 1] {
            let used = akk_iq4_xs_vbmi(vbmi)
            #expect(used <= vbmi)
            for (k, (nb, nOut)) in [(1, 1), (2, 7), (1, 8), (3, 9), (2, 16), (5, 17), (1, 23), (2, 64), (4, 67), (1, 203)].enumerated() {
                let nIn = 256 * nb
                let w = iqWeights(iq4xs, rows: nOut, n: nIn, corrupt: k % 3 == 2, rng: &rng)
                let x = acts(iq4xs, count: nIn, tokens: 1, rng: &rng)
                _ = akk_force_level(Int32(AKK_CPU_SCALAR.rawValue))
                let scalar = matmul(iq4xs, w, nOut: nOut, nIn: nIn, x, tokens: 1, threads: 1)
                #expect(akk_force_level(avx512) == avx512)
                for threads: Int32 in [1, 2] {
                    let simd = matmul(iq4xs, w, nOut: nOut, nIn: nIn, x, tokens: 1, threads: threads)
                    #expect(same(simd, scalar), "vbmi \(used) \(nIn)x\(nOut) threads \(threads)")
                }
                _ = akk_force_level(-1)
            }
        }
        _ = akk_iq4_xs_vbmi(-1)
    }

    /// Corrupted scales (NaN, inf, the largest e8m0): no crash, SIMD = scalar (NaN = NaN).
    @Test func corruptedScalesAgreeAndDoNotCrash() {
        var rng = SplitMix64(seed: 99)
        for type in newTypes {
            let nIn = Int(akk_block_elems(type)) * (type == iq4xs ? 2 : 9)
            for tokens in [1, 5, 9] {
                let w = iqWeights(type, rows: 16, n: nIn, corrupt: true, rng: &rng)
                let x = acts(type, count: nIn, tokens: tokens, rng: &rng)
                _ = akk_force_level(Int32(AKK_CPU_SCALAR.rawValue))
                let scalar = matmul(type, w, nOut: 16, nIn: nIn, x, tokens: tokens, threads: 1)
                for level in simdLevels {
                    _ = akk_force_level(level)
                    let simd = matmul(type, w, nOut: 16, nIn: nIn, x, tokens: tokens, threads: 2)
                    #expect(same(simd, scalar), "\(String(cString: akk_cpu_level_name(level))) \(name(type)) tokens \(tokens)")
                    #expect(!simd.contains(12345))
                }
                _ = akk_force_level(-1)
            }
        }
    }

    /// IQ4_NL and MXFP4 repacked in groups of 8 rows (AKK_IQ4_NL_R8, AKK_MXFP4_R8): the repacking is
    /// lossless, the scalar reference equals the 8-row view's (the type it replaces at load) bit for
    /// bit, and every SIMD level equals it: decode (one group, odd and even group counts: the
    /// two-stream path), prefill (token tiles with tails, a second chunk of 64), 1 and 2 threads,
    /// sane and corrupted scales (NaN, inf, e8m0 0, 1, 254, 255: NaN = NaN, no crash).
    @Test func repackedEqualsEightRowViewExactlyAtEveryLevel() {
        var rng = SplitMix64(seed: 1139)
        for (plain, view, r8) in [(iq4nl, iq4nlX8, Int32(AKK_IQ4_NL_R8.rawValue)), (mxfp4, mxfp4X8, Int32(AKK_MXFP4_R8.rawValue))] {
            #expect(akk_vec_dot_type(r8) == Int32(AKK_Q8_0.rawValue) && akk_row_bytes(r8, 96) == akk_row_bytes(plain, 96))
            for (blocks, nOut, tokens) in [(1, 8, 1), (2, 16, 1), (3, 24, 1), (5, 40, 2), (9, 8, 3), (18, 16, 9),
                                           (4, 24, 70), (1, 16, 130), (8, 72, 4), (128, 64, 1)] {
                let nIn = blocks * 32, rb = rowBytes(plain, nIn)
                for corrupt in [false, true] {
                    let w = iqWeights(plain, rows: nOut, n: nIn, corrupt: corrupt, rng: &rng)
                    var packed = [UInt8](repeating: 0, count: w.count), row = [UInt8](repeating: 0, count: rb)
                    #expect(akk_repack_iq4mx_r8(plain, w, &packed, Int64(nOut), Int64(nIn)) == 0)
                    for r in 0..<nOut {
                        #expect(akk_iq4mx_r8_row(r8, packed, Int64(r), Int64(nIn), &row) == 0)
                        #expect(row[...] == w[(r * rb)..<((r + 1) * rb)], "\(name(r8)) row \(r) of \(nOut)x\(nIn)")
                    }
                    let x = acts(plain, count: nIn, tokens: tokens, rng: &rng)
                    _ = akk_force_level(Int32(AKK_CPU_SCALAR.rawValue))
                    let ref = matmul(view, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                    let scalar = matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                    let label = "\(name(r8)) \(nIn)x\(nOut)x\(tokens)\(corrupt ? " corrupted" : "")"
                    #expect(same(scalar, ref) && !scalar.contains(12345), "scalar \(label) vs \(name(view))")
                    for level in simdLevels {
                        #expect(akk_force_level(level) == level)
                        let ys = [Int32(1), 2].map { matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: $0) }
                        #expect(ys.allSatisfy { same($0, scalar) }, "\(String(cString: akk_cpu_level_name(level))) \(label), 1 and 2 threads")
                    }
                    _ = akk_force_level(-1)
                }
            }
        }
        // Rows that do not fill groups of 8, rows that are not whole blocks, other types: refused.
        let src = [UInt8](repeating: 0, count: 18 * 12)
        var out = src
        #expect(akk_repack_iq4mx_r8(iq4nl, src, &out, 12, 32) == -1)
        #expect(akk_repack_iq4mx_r8(mxfp4, src, &out, 8, 48) == -1)
        #expect(akk_repack_iq4mx_r8(Int32(AKK_Q4_0.rawValue), src, &out, 8, 32) == -1)
        #expect(akk_iq4mx_r8_row(iq4nl, src, -1, 32, &out) == -1)
    }

    /// IQ4_XS repacked in groups of 16 rows (AKK_IQ4_XS_R16): the repacking is lossless, and at
    /// every level (scalar included) its products equal the plain IQ4_XS's scalar reference bit for
    /// bit in both orders (vec_dot below AKK_TILED_MIN_ROWS tokens, tiled from there): tokens 1...9,
    /// 70 and 130 (more than a 64-token chunk), one group and several, 1 and 2 threads (row splits
    /// that end inside a group), ranges of rows that start or end at a half group, decode over
    /// several groups (the two-stream path, groups left over), sane and corrupted scales; at the
    /// avx512 level with and without the VBMI lookups.
    @Test func repackedIQ4XSEqualsPlainExactlyAtEveryLevel() {
        var rng = SplitMix64(seed: 1123)
        let r16 = Int32(AKK_IQ4_XS_R16.rawValue)
        #expect(akk_vec_dot_type(r16) == Int32(AKK_Q8_K.rawValue) && akk_row_bytes(r16, 512) == akk_row_bytes(iq4xs, 512))
        var cases: [(Int, Int, Int)] = (1...9).map { (1 + $0 % 3, 16 * (1 + $0 % 3), $0) }
        cases += [(2, 48, 70), (1, 16, 130), (3, 32, 8), (7, 16, 1), (2, 80, 4)]
        // decode (1 token) over two or more groups: the avx512 two-stream path with its prepared token
        cases += [(1, 32, 1), (2, 64, 1), (3, 80, 1), (14, 112, 1)]
        for (blocks, nOut, tokens) in cases {
            let nIn = blocks * 256, rb = rowBytes(iq4xs, nIn)
            for corrupt in [false, true] {
                let w = iqWeights(iq4xs, rows: nOut, n: nIn, corrupt: corrupt, rng: &rng)
                var packed = [UInt8](repeating: 0, count: w.count), row = [UInt8](repeating: 0, count: rb)
                #expect(akk_repack_iq4_xs_r16(w, &packed, Int64(nOut), Int64(nIn)) == 0)
                for r in 0..<nOut {
                    #expect(akk_iq4_xs_r16_row(packed, Int64(r), Int64(nIn), &row) == 0)
                    #expect(row[...] == w[(r * rb)..<((r + 1) * rb)], "iq4_xs_r16 row \(r) of \(nOut)x\(nIn)")
                }
                let x = acts(iq4xs, count: nIn, tokens: tokens, rng: &rng)
                let label = "iq4_xs_r16 \(nIn)x\(nOut)x\(tokens)\(corrupt ? " corrupted" : "")"
                _ = akk_force_level(Int32(AKK_CPU_SCALAR.rawValue))
                let ref = matmul(iq4xs, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                let avx512 = Int32(AKK_CPU_AVX512.rawValue)
                for level in [Int32(AKK_CPU_SCALAR.rawValue)] + simdLevels { for vbmi: Int32 in level == avx512 ? [0, 1] : [-1] {
                    #expect(akk_force_level(level) == level)
                    let used = akk_iq4_xs_vbmi(vbmi)
                    let lv = String(cString: akk_cpu_level_name(level)) + (level == avx512 ? " vbmi \(used)" : "")
                    let ys = [Int32(1), 2].map { matmul(r16, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: $0) }
                    #expect(ys.allSatisfy { same($0, ref) && !$0.contains(12345) }, "\(lv) \(label), 1 and 2 threads")
                    // rows [8, nOut - 8) and [16, nOut): ranges that start or end at a half group
                    for (r0, r1) in [(8, nOut - 8), (16, nOut), (0, nOut - 8)] where r1 > r0 {
                        var y = [Float](repeating: 12345, count: nOut * tokens)
                        let xs = rowBytes(Int32(AKK_Q8_K.rawValue), nIn)
                        packed.withUnsafeBytes { wp in x.withUnsafeBytes { xp in y.withUnsafeMutableBufferPointer { yp in
                            akk_matmul_rows(r16, wp.baseAddress!, Int64(r0), Int64(r1), Int64(nIn), xp.baseAddress!, Int64(xs),
                                            Int64(tokens), yp.baseAddress!, Int64(nOut))
                        } } }
                        let ok = (0..<tokens).allSatisfy { t in (0..<nOut).allSatisfy { o in
                            (r0..<r1).contains(o) ? same(y[t * nOut + o], ref[t * nOut + o]) : y[t * nOut + o] == 12345 } }
                        #expect(ok, "\(lv) \(label) rows \(r0)..<\(r1)")
                    }
                } }
                _ = akk_force_level(-1)
                _ = akk_iq4_xs_vbmi(-1)
            }
        }
        // Rows that do not fill groups of 16, rows that are not whole super-blocks: refused.
        let src = [UInt8](repeating: 0, count: 136 * 24)
        var out = src
        #expect(akk_repack_iq4_xs_r16(src, &out, 8, 256) == -1)
        #expect(akk_repack_iq4_xs_r16(src, &out, 16, 128) == -1)
        #expect(akk_iq4_xs_r16_row(src, -1, 256, &out) == -1)
    }

    /// The 8-row views compute the same sums as the plain types in another float order: close,
    /// and both close to a float64 dot of the dequantised rows.
    @Test func eightRowViewsAgreeWithPlainTypesAndDouble() {
        var rng = SplitMix64(seed: 8)
        for (plain, view) in [(iq4nl, iq4nlX8), (mxfp4, mxfp4X8)] {
            let nIn = 32 * 24, nOut = 24, tokens = 3
            let w = iqWeights(plain, rows: nOut, n: nIn, rng: &rng)
            let xf = (0..<(nIn * tokens)).map { _ in Float.random(in: -2...2, using: &rng) }
            var x = [UInt8](repeating: 0, count: nIn / 32 * 34 * tokens)
            xf.withUnsafeBufferPointer { xp in x.withUnsafeMutableBytes { o in
                for t in 0..<tokens { akk_quantize_row_q8_0(xp.baseAddress! + t * nIn, o.baseAddress! + t * nIn / 32 * 34, Int64(nIn)) }
            } }
            let a = matmul(plain, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
            let b = matmul(view, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
            var wd = [Float](repeating: 0, count: nIn * nOut), xd = [Float](repeating: 0, count: nIn * tokens)
            w.withUnsafeBytes { r in wd.withUnsafeMutableBufferPointer { _ = akk_dequantize_row(plain, r.baseAddress!, $0.baseAddress!, Int64(nIn * nOut)) } }
            x.withUnsafeBytes { r in xd.withUnsafeMutableBufferPointer { _ = akk_dequantize_row(Int32(AKK_Q8_0.rawValue), r.baseAddress!, $0.baseAddress!, Int64(nIn * tokens)) } }
            var differ = 0
            for t in 0..<tokens {
                for o in 0..<nOut {
                    var ref = 0.0, mag = 0.0
                    for i in 0..<nIn {
                        ref += Double(wd[o * nIn + i]) * Double(xd[t * nIn + i])
                        mag += abs(Double(wd[o * nIn + i]) * Double(xd[t * nIn + i]))
                    }
                    let y = t * nOut + o
                    #expect(abs(Double(a[y]) - ref) <= 1e-5 * mag && abs(Double(b[y]) - ref) <= 1e-5 * mag, "\(name(view)) row \(o)")
                    if a[y] != b[y] { differ += 1 }
                }
            }
            print("\(name(view)): \(differ) of \(nOut * tokens) outputs differ in the last bits from \(name(plain))")
        }
    }

    /// The fused expert step with IQ4_XS down weights quantises its hidden rows to Q8_K per block
    /// of 256: equal to the separate products, SwiGLU and quantisation, on 1-3 threads.
    @Test func moeStepWithNewTypesEqualsSeparateProducts() {
        var rng = SplitMix64(seed: 31)
        let d = 256, f = 512
        for (gt, dt) in [(mxfp4X8, mxfp4X8), (iq4xs, iq4xs), (iq4nlX8, iq4xs), (iq4xs, mxfp4)] {
            let rowsPer = [1, 3, 2]
            let n = rowsPer.reduce(0, +)
            let gates = rowsPer.map { _ in iqWeights(gt, rows: f, n: d, rng: &rng) }
            let ups = rowsPer.map { _ in iqWeights(gt, rows: f, n: d, rng: &rng) }
            let downs = rowsPer.map { _ in iqWeights(dt, rows: d, n: f, rng: &rng) }
            let xf = (0..<(n * d)).map { _ in Float.random(in: -2...2, using: &rng) }
            let x = acts(gt, count: d, tokens: n, rng: &rng)
            _ = xf
            let xs = rowBytes(akk_vec_dot_type(gt), d), hs = rowBytes(akk_vec_dot_type(dt), f)
            let rw = (0..<n).map { _ in Float.random(in: 0.1...1, using: &rng) }
            // separate products
            var want = [Float](repeating: 0, count: n * d)
            var row0 = 0
            for (e, k) in rowsPer.enumerated() {
                let xe = Array(x[(row0 * xs)..<((row0 + k) * xs)])
                var g = matmul(gt, gates[e], nOut: f, nIn: d, xe, tokens: k, threads: 1)
                let u = matmul(gt, ups[e], nOut: f, nIn: d, xe, tokens: k, threads: 1)
                var h = [UInt8](repeating: 0, count: hs * k)
                g.withUnsafeMutableBufferPointer { gp in u.withUnsafeBufferPointer { up in h.withUnsafeMutableBytes { hp in
                    for r in 0..<k {
                        akk_swiglu(gp.baseAddress! + r * f, up.baseAddress! + r * f, gp.baseAddress! + r * f, Int64(f))
                        akk_quantize_activation(dt, gp.baseAddress! + r * f, hp.baseAddress! + r * hs, Int64(f))
                    }
                } } }
                let y = matmul(dt, downs[e], nOut: d, nIn: f, h, tokens: k, threads: 1)
                for r in 0..<k { for o in 0..<d { want[(row0 + r) * d + o] = y[r * d + o] * rw[row0 + r] } }
                row0 += k
            }
            for threads: Int32 in [1, 2, 3] {
                var out = [Float](repeating: .nan, count: n * d)
                var g = [Float](repeating: 0, count: n * f), u = g
                var h = [UInt8](repeating: 0, count: hs * n)
                var rc: Int32 = -1
                gates[0].withUnsafeBytes { g0 in gates[1].withUnsafeBytes { g1 in gates[2].withUnsafeBytes { g2 in
                ups[0].withUnsafeBytes { u0 in ups[1].withUnsafeBytes { u1 in ups[2].withUnsafeBytes { u2 in
                downs[0].withUnsafeBytes { d0 in downs[1].withUnsafeBytes { d1 in downs[2].withUnsafeBytes { d2 in
                x.withUnsafeBytes { xp in
                    let gp = [g0, g1, g2], up = [u0, u1, u2], dp = [d0, d1, d2]
                    var start = 0
                    let jobs = (0..<3).map { e -> akk_moe_expert in
                        defer { start += rowsPer[e] }
                        return akk_moe_expert(gate: gp[e].baseAddress!, up: up[e].baseAddress!, down: dp[e].baseAddress!,
                                              row0: Int64(start), n_rows: Int64(rowsPer[e]))
                    }
                    rc = akk_moe_ffn(gt, gt, dt, Int64(d), Int64(f), jobs, 3, xp.baseAddress!, Int64(xs), xp.baseAddress!, Int64(xs),
                                     &g, &u, &h, Int64(hs), rw, &out, Int64(d), threads)
                }}}}}}}}}}
                #expect(rc == 0)
                #expect(out.map(\.bitPattern) == want.map(\.bitPattern), "\(name(gt))/\(name(dt)) threads \(threads)")
            }
        }
    }
}
