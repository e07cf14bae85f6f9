import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

private let qTypes: [Int32] = [Int32(AKK_Q8_0.rawValue), Int32(AKK_Q4_0.rawValue), Int32(AKK_Q4_1.rawValue)]
private let matmulTypes: [Int32] = [Int32(AKK_F32.rawValue)] + qTypes

private func typeName(_ t: Int32) -> String { String(cString: akk_type_name(t)) }
private func rowBytes(_ t: Int32, _ n: Int) -> Int { Int(akk_row_bytes(t, Int64(n))) }

/// Random rows of `type` (n elements each): random quant bytes, fp16 scales of sane size (and
/// negative mins for Q4_1). F32 rows are uniform in [-1, 1].
func randomWeights(_ type: Int32, rows: Int, n: Int, rng: inout SplitMix64) -> [UInt8] {
    if type == Int32(AKK_F32.rawValue) {
        let f = (0..<(rows * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        return f.withUnsafeBytes { Array($0) }
    }
    let bs = Int(akk_block_bytes(type))
    var out = (0..<(rowBytes(type, n) * rows)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    for b in 0..<(out.count / bs) {
        let d = akk_fp32_to_fp16(Float.random(in: 0.001...0.05, using: &rng) * (Bool.random(using: &rng) ? 1 : -1))
        out[b * bs] = UInt8(d & 0xff); out[b * bs + 1] = UInt8(d >> 8)
        if type == Int32(AKK_Q4_1.rawValue) {
            let m = akk_fp32_to_fp16(-Float.random(in: 0...0.2, using: &rng))
            out[b * bs + 2] = UInt8(m & 0xff); out[b * bs + 3] = UInt8(m >> 8)
        }
    }
    return out
}

/// Activations with a varying dynamic range per block, some all-zero blocks and exact ties.
private func randomActivations(count: Int, rng: inout SplitMix64) -> [Float] {
    var x = [Float](repeating: 0, count: count)
    for b in 0..<(count / 32) {
        let kind = Int.random(in: 0..<8, using: &rng)
        let scale = Float.random(in: 0.01...10, using: &rng)
        for j in 0..<32 {
            switch kind {
            case 0: x[b * 32 + j] = 0
            case 1: x[b * 32 + j] = Float(Int.random(in: -254...254, using: &rng)) / 2 // ties at .5 with max 127
            default: x[b * 32 + j] = Float.random(in: -1...1, using: &rng) * scale
            }
        }
        if kind == 1 { x[b * 32 + Int.random(in: 0..<32, using: &rng)] = 127 }
    }
    return x
}

private func quantize(_ wtype: Int32, _ x: [Float], n: Int, tokens: Int) -> [UInt8] {
    let vt = akk_vec_dot_type(wtype)
    let rb = rowBytes(vt, n)
    var out = [UInt8](repeating: 0, count: rb * tokens)
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBytes { op in
            for t in 0..<tokens {
                akk_quantize_activation(wtype, xp.baseAddress! + t * n, op.baseAddress! + t * rb, Int64(n))
            }
        }
    }
    return out
}

private func matmul(_ type: Int32, _ w: [UInt8], nOut: Int, nIn: Int, _ x: [UInt8], tokens: Int,
                    threads: Int32) -> [Float] {
    var y = [Float](repeating: .nan, count: nOut * tokens)
    let xs = rowBytes(akk_vec_dot_type(type), nIn)
    w.withUnsafeBytes { wp in
        x.withUnsafeBytes { xp in
            y.withUnsafeMutableBufferPointer { yp in
                akk_matmul(type, wp.baseAddress!, Int64(nOut), Int64(nIn), xp.baseAddress!, Int64(xs),
                           Int64(tokens), yp.baseAddress!, Int64(nOut), threads)
            }
        }
    }
    return y
}

private func withScalar<T>(_ body: () throws -> T) rethrows -> T {
    akk_force_scalar(1)
    defer { akk_force_scalar(0) }
    return try body()
}

private func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

private func level(_ l: akk_cpu_level) -> Int32 { Int32(l.rawValue) }

/// Serialized: the scalar/SIMD switch is process-wide.
@Suite(.serialized) struct KernelTests {
    init() { _ = akk_init() }

    @Test func simdPathIsActiveOnThisMachine() {
        #if arch(x86_64)
        // The project's machines have AVX2 (Zen 3) or AVX-512 (Zen 4); otherwise the exactness
        // tests below would compare the scalar path with itself.
        #expect(akk_cpu_max_level() >= level(AKK_CPU_AVX2))
        #endif
        // The default level is ADAK_CPU's when the CPU has it (else the best, with a warning).
        let best = akk_cpu_max_level()
        let asked = ProcessInfo.processInfo.environment["ADAK_CPU"].map { name in
            (0..<level(AKK_CPU_N_LEVELS)).first { String(cString: akk_cpu_level_name($0)) == name } ?? -1
        }
        let want = asked.map { $0 >= 0 && $0 <= best ? $0 : best } ?? best
        #expect((akk_cpu_warning() != nil) == (asked.map { $0 < 0 || $0 > best } ?? false))
        #expect(akk_force_level(-1) == want)
        #expect(akk_init() == (want >= level(AKK_CPU_AVX2) ? 1 : 0))
        for l in 0..<level(AKK_CPU_N_LEVELS) { #expect(akk_force_level(l) == min(l, best)) }
        #expect(akk_force_level(99) == best)
        #expect(akk_force_level(level(AKK_CPU_SCALAR)) == 0)
        #expect(akk_have_avx2() == 0)
        akk_force_scalar(0)
        #expect(akk_force_level(-1) == want)
        #expect(String(cString: akk_cpu_level_name(level(AKK_CPU_AVX512))) == "avx512")
    }

    /// The tests below compare the level in force (ADAK_CPU's or the best) with the scalar
    /// references; these force each SIMD level in turn over the row kernels' decode and prefill
    /// paths (tile tails, token chunks, both threads' splits), so one machine checks every level.
    @Test func avx2EqualsScalarExactly() { expectLevelEqualsScalar(level(AKK_CPU_AVX2)) }

    @Test(.enabled(if: akk_cpu_max_level() >= level(AKK_CPU_AVX512), "this CPU lacks AVX-512 F/BW/VL/VNNI"))
    func avx512EqualsScalarExactly() { expectLevelEqualsScalar(level(AKK_CPU_AVX512)) }

    private func expectLevelEqualsScalar(_ want: Int32) {
        var rng = SplitMix64(seed: 17 + UInt64(want))
        let q4 = Int32(AKK_Q4_0.rawValue), r8 = Int32(AKK_Q4_0_R8.rawValue)
        for type in matmulTypes + [r8] {
            let base = type == r8 ? q4 : type
            for (nIn, nOut, tokens) in [(96, 8, 1), (32 * 37, 64, 1), (32 * 8, 1032, 1), (32 * 5, 24, 3),
                                        (32 * 3, 40, 9), (32 * 24, 208, 70), (32 * 40, 48, 130)] {
                var w = randomWeights(base, rows: nOut, n: nIn, rng: &rng)
                if type == r8 {
                    var packed = w
                    #expect(akk_repack_q4_0_r8(w, &packed, Int64(nOut), Int64(nIn)) == 0)
                    w = packed
                }
                let x = quantize(base, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
                let scalar = withScalar { matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1) }
                #expect(akk_force_level(want) == want)
                for threads: Int32 in [1, 2] {
                    let y = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads)
                    #expect(bits(y) == bits(scalar), "\(String(cString: akk_cpu_level_name(want))) \(typeName(type)) \(nIn)x\(nOut)x\(tokens) threads \(threads)")
                }
                _ = akk_force_level(-1)
            }
        }
    }

    // MARK: every kernel of the table at every level

    /// Walks the kernel table (akk_kernel_name: every function of an implementation set, as
    /// `adak kernels` lists it): each entry, reached through the public entry point that runs it,
    /// gives the scalar level's bits at every level this CPU has, on random inputs of odd sizes
    /// with normal, extreme and non-finite scales (NaN = NaN: payloads are not part of the
    /// contract), 1 and 2 threads. An entry this test does not know fails it.
    @Test func everyKernelEqualsScalarAtEveryLevel() {
        var rng = SplitMix64(seed: 1717)
        let levels = Array(level(AKK_CPU_SCALAR)...akk_cpu_max_level())
        func canon(_ a: [Float]) -> [UInt32] { a.map { $0.isNaN ? 0x7fc0_0000 : $0.bitPattern } }
        var walked = 0
        func atEveryLevel(_ label: String, _ run: () -> [UInt32]) {
            _ = akk_force_level(level(AKK_CPU_SCALAR))
            let ref = run()
            walked += 1
            for l in levels.dropFirst() {
                _ = akk_force_level(l)
                let same = run() == ref
                #expect(same, "\(label) at \(String(cString: akk_cpu_level_name(l)))")
            }
            _ = akk_force_level(-1)
        }
        let typeIds: [Int32] = [0, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 20, 23, 39, 1002, 1012, 1020, 1039,
                                 Int32(AKK_Q4_K_R8_DENSE.rawValue), Int32(AKK_IQ4_NL_R8.rawValue), Int32(AKK_MXFP4_R8.rawValue),
                                 Int32(AKK_IQ4_XS_R16.rawValue)]
        let typeNamed = Dictionary(uniqueKeysWithValues: typeIds.map { (typeName($0), $0) })
        let scales: [ScaleRange] = [.normal, .extreme, .nonFinite]
        let r8Base: [Int32: Int32] = [Int32(AKK_Q4_0_R8.rawValue): Int32(AKK_Q4_0.rawValue),
                                      Int32(AKK_Q4_K_R8.rawValue): Int32(AKK_Q4_K.rawValue),
                                      Int32(AKK_Q4_K_R8_DENSE.rawValue): Int32(AKK_Q4_K.rawValue),
                                      Int32(AKK_IQ4_NL_R8.rawValue): Int32(AKK_IQ4_NL.rawValue),
                                      Int32(AKK_MXFP4_R8.rawValue): Int32(AKK_MXFP4.rawValue),
                                      Int32(AKK_IQ4_XS_R16.rawValue): Int32(AKK_IQ4_XS.rawValue)]
        func weights(_ type: Int32, rows: Int, n: Int, _ sc: ScaleRange) -> [UInt8] {
            if type == Int32(AKK_F32.rawValue) {
                var w = randomWeights(type, rows: rows, n: n, rng: &rng)
                if sc == .nonFinite { w.withUnsafeMutableBytes { $0.storeBytes(of: Float.nan, toByteOffset: 4 * (rows * n / 2), as: Float.self) } }
                return w
            }
            guard let base = r8Base[type] else { return randomKQuantWeights(type, rows: rows, n: n, scales: sc, rng: &rng) }
            let w = randomKQuantWeights(base, rows: rows, n: n, scales: sc, rng: &rng)
            var packed = w
            let rc = type == Int32(AKK_Q4_0_R8.rawValue) ? akk_repack_q4_0_r8(w, &packed, Int64(rows), Int64(n))
                : type == Int32(AKK_IQ4_XS_R16.rawValue) ? akk_repack_iq4_xs_r16(w, &packed, Int64(rows), Int64(n))
                : akk_block_elems(base) == 256 ? akk_repack_q4_k_r8(w, &packed, Int64(rows), Int64(n))
                : akk_repack_iq4mx_r8(base, w, &packed, Int64(rows), Int64(n))
            #expect(rc == 0)
            return packed
        }
        func rowsEntry(_ type: Int32, tiled: Bool, hasTiled: Bool) {
            let base = r8Base[type] ?? type, be = Int(akk_block_elems(base))
            let r8 = r8Base[type] != nil
            // (blocks, rows, tokens): decode (21 rows: the avx512 Q8_0/Q5_0 decode's 4-row tiles over parts of 5), few tokens, tile tails, the by-token split of few rows
            // over 2 threads (8 rows x 9 tokens: 5 + 4 tokens, still one product of 9 rows), chunks,
            // more than 64 blocks (the avx512 Q8_0/Q4_x/Q5_x tiles' scale segments); 11 rows x 12 tokens: the avx2
            // dense tiles' (4 x 2) row tail of 3
            // AKK_IQ4_XS_R16: groups of 16 rows (2 threads split 48 and 80 rows inside a group)
            let r16 = type == Int32(AKK_IQ4_XS_R16.rawValue)
            let shapes: [(Int, Int, Int)] = r16 ? (tiled ? [(1, 16, 8), (2, 48, 9), (3, 32, 13), (2, 80, 11), (1, 16, 70)]
                                                         : [(1, 16, 1), (3, 48, 1), (2, 32, 3), (5, 16, 7), (1, 80, 5), (2, 48, 2)])
                : tiled ? [(1, 5, 8), (2, 13, 9), (5, 8, 9), (2, 40, 11), (1, 24, 70)]
                : r8 ? [(1, 8, 1), (3, 16, 1), (2, 24, 3), (5, 8, 9), (1, 16, 70)]
                : hasTiled ? [(1, 1, 1), (3, 7, 1), (2, 13, 2), (5, 8, 3), (2, 40, 5), (1, 9, 7)]
                : [(1, 1, 1), (3, 7, 1), (2, 21, 1), (2, 13, 2), (5, 8, 3), (2, 40, 5), (3, 17, 9), (2, 24, 70), (10, 6, 6),
                   (4, 11, 12)]
            for (k, (blocks, nOut, tokens)) in shapes.enumerated() {
                let nIn = blocks * (be == 256 ? 256 : 32 * (k % 2 == 0 ? 3 : 7))
                let sc = base == Int32(AKK_F32.rawValue) ? scales[k % 2 * 2] : scales[k % 3]
                let w = weights(type, rows: nOut, n: nIn, sc)
                let x = quantize(base, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
                for threads: Int32 in [1, 2] {
                    atEveryLevel("rows \(typeName(type))\(tiled ? " tiled" : "") \(nIn)x\(nOut)x\(tokens) \(sc) threads \(threads)") {
                        canon(matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads))
                    }
                }
            }
        }
        // akk_attention for the entry `name`'s cache type at (heads, kv heads, head dim) x (tokens, pos0)
        func attention(_ name: String, nCtx: Int, _ shapes: [(Int, Int, Int)], _ cases: [(Int, Int)]) {
            let f16 = name.hasSuffix("f16"), type = Int32(f16 ? AKK_F16.rawValue : AKK_F32.rawValue)
            for (nHead, nHeadKV, hd) in shapes {
                let kvDim = nHeadKV * hd, qDim = nHead * hd, maxTokens = cases.map { $0.0 }.max()!
                let kf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
                let vf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
                let q = (0..<(maxTokens * qDim)).map { _ in Float.random(in: -2...2, using: &rng) }
                let kh = kf.map { akk_fp32_to_fp16($0) }, vh = vf.map { akk_fp32_to_fp16($0) }
                for (tokens, pos0) in cases { for threads: Int32 in [1, 2] {
                    atEveryLevel("\(name) heads \(nHead)/\(nHeadKV) dim \(hd) ctx \(nCtx) tokens \(tokens) pos \(pos0) threads \(threads)") {
                        var out = [Float](repeating: 0, count: tokens * qDim)
                        var scratch = [Float](repeating: 0, count: max(4, nHead) * nCtx)
                        let body = { (k: UnsafeRawPointer, v: UnsafeRawPointer) in
                            akk_attention(q, Int64(qDim), k, Int64(kvDim), v, Int64(nCtx), &out, Int64(qDim), Int32(tokens),
                                          Int32(pos0), Int32(nHead), Int32(nHeadKV), Int32(hd), 0.125, &scratch, Int32(nCtx), type, threads)
                        }
                        if f16 { kh.withUnsafeBytes { k in vh.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        else { kf.withUnsafeBytes { k in vf.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        return canon(out)
                    }
                } }
            }
        }
        let names = (0..<akk_kernel_count()).map { String(cString: akk_kernel_name($0)) }
        let hasTiled = Set(names.filter { $0.hasSuffix(" tiled") }.map { String($0.dropFirst(5).dropLast(6)) })
        for name in names {
            let parts = name.split(separator: " ").map(String.init)
            if parts[0] == "rows", let type = typeNamed[parts[1]] {
                rowsEntry(type, tiled: parts.count == 3, hasTiled: hasTiled.contains(parts[1]))
            } else if parts[0] == "quantize", let act = ["q8_0": AKK_Q8_0, "q8_1": AKK_Q8_1, "q8_K": AKK_Q8_K][parts[1]] {
                // through a weight type of that activation type; Q8_K also NaN and infinities
                let wtype = Int32((act == AKK_Q8_0 ? AKK_Q8_0 : act == AKK_Q8_1 ? AKK_Q4_1 : AKK_Q4_K).rawValue)
                #expect(akk_vec_dot_type(wtype) == Int32(act.rawValue))
                let be = act == AKK_Q8_K ? 256 : 32
                for blocks in [1, 2, 3, 7, 37] {
                    var x = randomActivations(count: blocks * be, rng: &rng)
                    if act == AKK_Q8_K { for i in x.indices where i % 97 == 13 { x[i] = [Float.nan, .infinity, -.infinity][i % 3] } }
                    atEveryLevel("\(name) \(blocks) blocks") { quantize(wtype, x, n: x.count, tokens: 1).map(UInt32.init) }
                }
            } else if name == "dot" {
                for type in typeIds where r8Base[type] == nil {
                    let be = Int(akk_block_elems(type)), nIn = be == 256 ? 768 : 32 * 37
                    let w = weights(type, rows: 1, n: nIn, scales[Int(type) % 3])
                    let x = quantize(type, randomActivations(count: nIn, rng: &rng), n: nIn, tokens: 1)
                    atEveryLevel("dot \(typeName(type))") {
                        canon([w.withUnsafeBytes { wp in x.withUnsafeBytes { akk_vec_dot(type, Int64(nIn), wp.baseAddress!, $0.baseAddress!) } }])
                    }
                }
            } else if name == "fp16->fp32 row" || name == "fp32->fp16 row" {
                for n in [1, 7, 8, 15, 16, 17, 31, 33, 100, 1000] {
                    let h = (0..<n).map { _ in UInt16.random(in: 0...UInt16.max, using: &rng) }
                    let f = (0..<n).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)) }
                    atEveryLevel("\(name) n \(n)") {
                        if name == "fp16->fp32 row" {
                            var y = [Float](repeating: 0, count: n)
                            akk_fp16_to_fp32_row(h, &y, Int64(n))
                            return y.map(\.bitPattern)
                        }
                        var y = [UInt16](repeating: 0, count: n)
                        akk_fp32_to_fp16_row(f, &y, Int64(n))
                        return y.map(UInt32.init)
                    }
                }
            } else if name.hasPrefix("attention rows f") {
                // Through decode (and prefill) attention: GQA groups of 1, 2, 3, 4, 5 (a four and a
                // one), 6 and 8 (two fours) on 1 and 2 threads (the V rows split on whole groups
                // and not); head dims with and without a tail past the steps of 32 (40, 48, 72);
                // positions that leave row chunks of 8 with a rest on each thread, and n_use with
                // a tail (the last position of a context of 260: 260 % 32 = 4)
                attention(name, nCtx: 260, [(6, 3, 40), (4, 2, 72), (5, 5, 64), (8, 2, 128), (12, 2, 48), (16, 4, 64),
                                            (16, 2, 128), (10, 2, 48), (8, 1, 64)],
                          [(1, 0), (1, 201), (1, 258), (1, 259), (3, 7)])
            } else if name.hasPrefix("attention prefill f") {
                // Through prefill attention: the GQA groups as above; head dims in both orders of
                // the f16 cache's scores (one accumulator when % 8 == 0, else ggml_vec_dot: 36, 20)
                // and with tails past the steps of 32; token counts that end vector and row blocks
                // partway and cross multiples of 32 positions (probability rows of different lengths
                // in one block); a context whose n_kv % 8 != 0 (90: the V product in ggml_vec_dot's
                // order, n_use with a tail)
                let shapes = [(6, 3, 40), (4, 2, 72), (5, 5, 64), (8, 2, 128), (12, 2, 36), (16, 4, 64), (10, 2, 48),
                              (8, 1, 64), (9, 3, 20)]
                attention(name, nCtx: 260, shapes, [(2, 0), (13, 7), (40, 3), (35, 221)])
                attention(name, nCtx: 90, shapes, [(9, 0), (30, 60)])
            } else {
                Issue.record("kernel table entry \(name) is not walked by this test")
            }
        }
        #expect(names.count == Int(akk_kernel_count()) && names.contains("rows q6_k tiled"))
        #expect(walked > 10 * names.count, "\(walked) cases")
    }

    /// The kernel table's coverage: every level of this CPU has every entry; a level runs its
    /// own kernel or the level below's (never above); the avx512 level has its own kernels for
    /// the prefill tiles and the activation quantisers (what `adak kernels` prints).
    @Test func kernelTableListsEveryLevel() {
        let best = akk_cpu_max_level()
        for i in 0..<akk_kernel_count() {
            let name = String(cString: akk_kernel_name(i))
            for l in level(AKK_CPU_SCALAR)...best {
                let o = akk_kernel_origin(i, l)
                #expect(o >= 0 && o <= l, "\(name) at level \(l): \(o)")
                if l > 0 { #expect(o == l || o == akk_kernel_origin(i, l - 1), "\(name) at level \(l)") }
            }
            #expect(akk_kernel_origin(i, level(AKK_CPU_SCALAR)) == 0)
            if best < level(AKK_CPU_AVX512) { #expect(akk_kernel_origin(i, level(AKK_CPU_AVX512)) == -1) }
        }
        #expect(akk_kernel_name(-1) == nil && akk_kernel_name(akk_kernel_count()) == nil)
        #expect(akk_kernel_origin(akk_kernel_count(), 0) == -1)
        if best >= level(AKK_CPU_AVX512) {
            let own = (0..<akk_kernel_count()).filter { akk_kernel_origin($0, best) == best }.map { String(cString: akk_kernel_name($0)) }
            for name in ["rows q4_0", "rows q8_0", "rows q4_k_r8", "rows q6_k tiled", "rows iq4_xs tiled", "quantize q8_K"] {
                #expect(own.contains(name), "\(name)")
            }
        }
    }

    // MARK: fp16

    @Test func fp16ToFp32AllHalves() {
        var hw = [Float](repeating: 0, count: 65536)
        let all = (0..<65536).map { UInt16($0) }
        all.withUnsafeBufferPointer { a in hw.withUnsafeMutableBufferPointer { akk_fp16_to_fp32_row(a.baseAddress!, $0.baseAddress!, 65536) } }
        var deq = [Float](repeating: 0, count: 65536)
        let rc = all.withUnsafeBufferPointer { a in deq.withUnsafeMutableBufferPointer {
            akk_dequantize_row(Int32(AKK_F16.rawValue), a.baseAddress!, $0.baseAddress!, 65536) } }
        #expect(rc == 0)
        #expect(bits(deq) == bits(hw))
        var mismatches = 0
        for h in all {
            let f = akk_fp16_to_fp32(h)
            let sign: Double = h & 0x8000 != 0 ? -1 : 1
            let e = Int((h >> 10) & 0x1f), m = Double(h & 0x3ff)
            let isNaN = e == 31 && m != 0
            if isNaN {
                // Quiet NaN with the payload kept (F16C behaviour).
                if !f.isNaN || f.bitPattern != (UInt32(h & 0x8000) << 16 | 0x7fc0_0000 | UInt32(h & 0x3ff) << 13) { mismatches += 1 }
            } else {
                let ref: Double = e == 31 ? sign * .infinity
                    : e == 0 ? sign * m * pow(2, -24) : sign * (1 + m / 1024) * pow(2, Double(e - 15))
                if f.bitPattern != Float(ref).bitPattern { mismatches += 1 }
                // Round trip back to the same half.
                if akk_fp32_to_fp16(f) != h { mismatches += 1 }
            }
            if hw[Int(h)].bitPattern != f.bitPattern { mismatches += 1 }
            if isNaN && akk_fp32_to_fp16(f) != h | 0x200 { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func fp32ToFp16MatchesSwiftFloat16AndF16C() {
        var rng = SplitMix64(seed: 7)
        var xs: [Float] = []
        // Random bit patterns over the whole float range, plus exact midpoints between halves.
        for _ in 0..<200_000 { xs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for h in stride(from: 0, to: 0x7c00, by: 1) {
            let a = Double(akk_fp16_to_fp32(UInt16(h))), b = Double(akk_fp16_to_fp32(UInt16(h + 1)))
            xs.append(Float((a + b) / 2)); xs.append(-Float((a + b) / 2))
        }
        xs += [65504, 65519.99, 65520, 1e-8, 2.98e-8, 5.96e-8, -0.0, .infinity, -.infinity]
        var hw = [UInt16](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in hw.withUnsafeMutableBufferPointer { akk_fp32_to_fp16_row(x.baseAddress!, $0.baseAddress!, Int64(xs.count)) } }
        var mismatches = 0
        for (i, x) in xs.enumerated() {
            let h = akk_fp32_to_fp16(x)
            if hw[i] != h { mismatches += 1 }
            if !x.isNaN && h != Float16(x).bitPattern { mismatches += 1 }
            if x.isNaN && (h & 0x7e00) != 0x7e00 { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    // MARK: activation quantisation

    @Test func quantisationScalarEqualsSIMD() {
        var rng = SplitMix64(seed: 11)
        for blocks in [1, 2, 3, 7, 37, 128] {
            let x = randomActivations(count: blocks * 32, rng: &rng)
            for t in [Int32(AKK_Q8_0.rawValue), Int32(AKK_Q4_1.rawValue)] {
                let simd = quantize(t, x, n: x.count, tokens: 1)
                let scalar = withScalar { quantize(t, x, n: x.count, tokens: 1) }
                #expect(simd == scalar, "\(typeName(akk_vec_dot_type(t))) blocks \(blocks)")
            }
        }
    }

    @Test func quantisationRoundsHalfToEvenAndSumsQ8_1() {
        // amax 127 -> d = 1, id = 1: q = x rounded half to even.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = 3.5; x[3] = -2.5; x[4] = -3.5; x[5] = 0.5; x[6] = -0.5; x[7] = 1.49
        for scalar in [false, true] {
            akk_force_scalar(scalar ? 1 : 0)
            let q0 = quantize(Int32(AKK_Q8_0.rawValue), x, n: 32, tokens: 1)
            let q1 = quantize(Int32(AKK_Q4_1.rawValue), x, n: 32, tokens: 1)
            akk_force_scalar(0)
            #expect(akk_fp16_to_fp32(UInt16(q0[0]) | UInt16(q0[1]) << 8) == 1)
            #expect(q0[2..<10].map { Int8(bitPattern: $0) } == [127, 2, 4, -2, -4, 0, 0, 1])
            #expect(Array(q0[2...]) == Array(q1[4...]))
            let sum = q1[4...].reduce(0) { $0 + Int(Int8(bitPattern: $1)) }
            #expect(akk_fp16_to_fp32(UInt16(q1[2]) | UInt16(q1[3]) << 8) == Float(sum))
        }
    }

    // MARK: dot products and matmul

    @Test func matmulScalarEqualsSIMDExactly() {
        var rng = SplitMix64(seed: 42)
        let nIns = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37].map { 32 * $0 }
        let nOuts = [1, 2, 3, 4, 5, 7, 9, 13, 17, 30]
        var checked = 0
        for type in matmulTypes {
            for (i, nIn) in nIns.enumerated() {
                let nOut = nOuts[(i + Int(type)) % nOuts.count]
                let tokens = 1 + (i * 5 + Int(type)) % 9
                let w = randomWeights(type, rows: nOut, n: nIn, rng: &rng)
                let x = quantize(type, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
                let simd = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
                let simd2 = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                let scalar = withScalar { matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1) }
                #expect(bits(simd) == bits(scalar), "\(typeName(type)) n_in \(nIn) n_out \(nOut) n_tok \(tokens)")
                #expect(bits(simd2) == bits(simd))
                // The single dot product is the same computation.
                let xs = rowBytes(akk_vec_dot_type(type), nIn), wr = rowBytes(type, nIn)
                for (o, t) in [(0, 0), (nOut - 1, tokens - 1)] {
                    let d = w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in
                        (akk_vec_dot(type, Int64(nIn), wp.baseAddress! + o * wr, xp.baseAddress! + t * xs),
                         akk_vec_dot_scalar(type, Int64(nIn), wp.baseAddress! + o * wr, xp.baseAddress! + t * xs))
                    } }
                    #expect(d.0.bitPattern == simd[t * nOut + o].bitPattern)
                    #expect(d.1.bitPattern == simd[t * nOut + o].bitPattern)
                }
                checked += 1
            }
        }
        // Larger cases that take the multi-threaded paths: split by rows (prefill-sized, several
        // token chunks and tiles) and split by tokens (few rows, e.g. a router over a prompt).
        for type in matmulTypes {
            for (nIn, nOut, tokens) in [(32 * 24, 203, 70), (32 * 32, 6, 150)] {
                let w = randomWeights(type, rows: nOut, n: nIn, rng: &rng)
                let x = quantize(type, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
                let simd = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                let scalar = withScalar { matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1) }
                #expect(bits(simd) == bits(scalar), "\(typeName(type)) \(nIn)x\(nOut)x\(tokens)")
                checked += 1
            }
        }
        #expect(checked == matmulTypes.count * (nIns.count + 2))
    }

    /// Decode (one token) splits each thread's rows into 4 streams plus leftover rows.
    @Test func decodeScalarEqualsSIMDExactly() {
        var rng = SplitMix64(seed: 5)
        for type in matmulTypes {
            for (nIn, nOut) in [(32, 1), (64, 3), (96, 4), (160, 5), (224, 8), (416, 13), (32 * 37, 61), (32 * 8, 1030)] {
                let w = randomWeights(type, rows: nOut, n: nIn, rng: &rng)
                let x = quantize(type, randomActivations(count: nIn, rng: &rng), n: nIn, tokens: 1)
                let scalar = withScalar { matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: 1, threads: 1) }
                for threads: Int32 in [1, 2] {
                    let simd = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: 1, threads: threads)
                    #expect(bits(simd) == bits(scalar), "\(typeName(type)) \(nIn)x\(nOut) threads \(threads)")
                }
            }
        }
    }

    /// Q4_0 repacked in groups of 8 rows: the repacking is lossless, the SIMD kernel equals its
    /// scalar reference bit for bit (decode and prefill shapes, token tiles with tails, several
    /// token chunks, 1 and 2 threads), and the values equal the plain Q4_0 kernel's up to the
    /// float summation order.
    @Test func q4_0RepackedScalarEqualsSIMDExactly() {
        var rng = SplitMix64(seed: 8)
        let q4 = Int32(AKK_Q4_0.rawValue), r8 = Int32(AKK_Q4_0_R8.rawValue)
        #expect(akk_vec_dot_type(r8) == Int32(AKK_Q8_0.rawValue))
        #expect(rowBytes(r8, 64) == rowBytes(q4, 64))
        let shapes = [(32, 8, 1), (64, 16, 3), (96, 24, 5), (32 * 7, 40, 1), (32 * 37, 64, 9),
                      (32 * 24, 208, 70), (32 * 8, 1032, 1), (32 * 40, 48, 130), (32 * 112, 16, 2),
                      (32 * 64, 1024, 1)] // the last one > 1 MB: repacked on all threads
        for (nIn, nOut, tokens) in shapes {
            let rb = rowBytes(q4, nIn)
            let w = randomWeights(q4, rows: nOut, n: nIn, rng: &rng)
            var packed = [UInt8](repeating: 0, count: w.count)
            #expect(akk_repack_q4_0_r8(w, &packed, Int64(nOut), Int64(nIn)) == 0)
            var row = [UInt8](repeating: 0, count: rb)
            for r in 0..<nOut {
                #expect(akk_q4_0_r8_row(packed, Int64(r), Int64(nIn), &row) == 0)
                #expect(row[...] == w[(r * rb)..<((r + 1) * rb)], "row \(r) of \(nOut)x\(nIn)")
            }
            let x = quantize(q4, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
            let scalar = withScalar { matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1) }
            for threads: Int32 in [1, 2] {
                let simd = matmul(r8, packed, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: threads)
                #expect(bits(simd) == bits(scalar), "\(nIn)x\(nOut)x\(tokens) threads \(threads)")
            }
            let plain = matmul(q4, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
            let scale = max(1e-3, plain.map { abs($0) }.max()!)
            let worst = zip(plain, scalar).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-5 * scale, "\(nIn)x\(nOut)x\(tokens): max |r8 - q4_0| \(worst) at scale \(scale)")
        }
        // Rows that do not fill groups of 8, or blocks that are not whole, are refused.
        var out = [UInt8](repeating: 0, count: 18 * 12)
        let src = [UInt8](repeating: 0, count: 18 * 12)
        #expect(akk_repack_q4_0_r8(src, &out, 12, 32) == -1)
        #expect(akk_repack_q4_0_r8(src, &out, 8, 48) == -1)
        #expect(akk_q4_0_r8_row(src, -1, 32, &out) == -1)
    }

    /// The fp16 dots of an f16 KV cache (ggml_vec_dot_f16's 4 x 8 lanes with a double tail, and
    /// tinyBLAS's single accumulator) and whole attention calls, f32 and f16 caches, batch and
    /// decode: the SIMD paths equal the scalar references bit for bit.
    @Test func attentionScalarEqualsSIMD() {
        var rng = SplitMix64(seed: 21)
        for n in [8, 16, 32, 40, 64, 72, 96, 100, 256, 263] {
            let a = (0..<n).map { _ in akk_fp32_to_fp16(Float.random(in: -2...2, using: &rng)) }
            let b = (0..<n).map { _ in akk_fp32_to_fp16(Float.random(in: -2...2, using: &rng)) }
            for oneAcc: Int32 in [0, 1] where oneAcc == 0 || n % 8 == 0 {
                let simd = akk_dot_f16(oneAcc, Int64(n), a, b)
                let scalar = withScalar { akk_dot_f16(oneAcc, Int64(n), a, b) }
                #expect(simd.bitPattern == scalar.bitPattern, "n \(n) one_acc \(oneAcc)")
            }
        }
        // heads in batches of 8 dots (4 at a time: 4, 6, 12 and 9 heads leave partial batches),
        // head dims with a tail past the steps of 32 (40, 72), decode near the start and later
        for (nHead, nHeadKV, hd) in [(4, 2, 64), (6, 3, 40), (12, 4, 72), (9, 9, 32)] {
            let nCtx = 300, kvDim = nHeadKV * hd, qDim = nHead * hd, nPos = 40
            let kf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let vf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let q = (0..<(nPos * qDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let kh = kf.map { akk_fp32_to_fp16($0) }, vh = vf.map { akk_fp32_to_fp16($0) }
            var scratch = [Float](repeating: 0, count: max(4, nHead) * nCtx)
            for type in [Int32(AKK_F32.rawValue), Int32(AKK_F16.rawValue)] {
                for (tokens, pos0) in [(nPos, 0), (1, 200), (1, 6)] {
                    func run() -> [Float] {
                        var out = [Float](repeating: 0, count: tokens * qDim)
                        let body = { (k: UnsafeRawPointer, v: UnsafeRawPointer) in
                            akk_attention(q, Int64(qDim), k, Int64(kvDim), v, Int64(nCtx), &out, Int64(qDim), Int32(tokens),
                                          Int32(pos0), Int32(nHead), Int32(nHeadKV), Int32(hd), 0.125, &scratch, Int32(nCtx), type, 2)
                        }
                        if type == Int32(AKK_F16.rawValue) {
                            kh.withUnsafeBytes { k in vh.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } }
                        } else {
                            kf.withUnsafeBytes { k in vf.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } }
                        }
                        return out
                    }
                    let simd = run()
                    let scalar = withScalar { run() }
                    #expect(bits(simd) == bits(scalar), "heads \(nHead)/\(nHeadKV) dim \(hd) type \(type) tokens \(tokens) pos \(pos0)")
                }
            }
        }
    }

    /// Decode attention (the blocked products, the row chunks, the GQA mapping, the thread split,
    /// the tails) equals llama.cpp's steps composed from single dots: every score one
    /// ggml_vec_dot_f16 (akk_dot_f16) of a K row and the fp16 q (f32 cache: ggml_vec_dot_f32) times
    /// the scale, the padding to n_use masked, softmax, the probabilities in fp16, every output
    /// one dot of a V^T row and them; at every level, 1 and 2 threads, both cache types.
    @Test func decodeAttentionEqualsSingleDots() {
        var rng = SplitMix64(seed: 33)
        let f32 = Int32(AKK_F32.rawValue), f16 = Int32(AKK_F16.rawValue)
        for (nHead, nHeadKV, hd, nCtx, pos0) in [(16, 4, 64, 300, 255), (32, 4, 128, 257, 256), (8, 8, 48, 77, 76),
                                                  (9, 3, 64, 700, 300), (16, 2, 40, 100, 37), (10, 2, 72, 33, 9)] {
            let kvDim = nHeadKV * hd, qDim = nHead * hd, group = nHead / nHeadKV, nValid = pos0 + 1
            let nKV = Int(akk_attn_n_kv(Int32(nValid), Int32(nCtx)))
            let nUse = nValid + 31 < nKV ? (nValid + 31) / 32 * 32 : nKV
            let kf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let vf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let q = (0..<qDim).map { _ in Float.random(in: -3...3, using: &rng) }
            let kh = kf.map { akk_fp32_to_fp16($0) }, vh = vf.map { akk_fp32_to_fp16($0) }
            for type in [f32, f16] {
                // one dot of n cache elements from offset a (K or V^T) and b from offset bo (f16:
                // the fp16 values of b)
                func dot(_ n: Int, _ cache: (f: [Float], h: [UInt16]), _ a: Int, _ b: [Float], _ bo: Int) -> Float {
                    if type == f16 {
                        let x = b[bo..<(bo + n)].map { akk_fp32_to_fp16($0) }
                        return cache.h.withUnsafeBufferPointer { akk_dot_f16(0, Int64(n), $0.baseAddress! + a, x) }
                    }
                    return cache.f.withUnsafeBytes { cp in b.withUnsafeBytes {
                        akk_vec_dot(f32, Int64(n), cp.baseAddress! + 4 * a, $0.baseAddress! + 4 * bo)
                    } }
                }
                let scale: Float = 0.125
                var want = [Float](repeating: 0, count: qDim)
                for h in 0..<nHead {
                    let g = h / group
                    var sc = (0..<nUse).map { j in j < nValid ? dot(hd, (kf, kh), j * kvDim + g * hd, q, h * hd) * scale : -Float.infinity }
                    akk_softmax(&sc, Int64(nUse))
                    for d in 0..<hd { want[h * hd + d] = dot(nUse, (vf, vh), (g * hd + d) * nCtx, sc, 0) }
                }
                for l in level(AKK_CPU_SCALAR)...akk_cpu_max_level() {
                    _ = akk_force_level(l)
                    for threads: Int32 in [1, 2] {
                        var out = [Float](repeating: 0, count: qDim)
                        var scratch = [Float](repeating: 0, count: max(2, nHead) * nCtx)
                        let body = { (k: UnsafeRawPointer, v: UnsafeRawPointer) in
                            akk_attention(q, Int64(qDim), k, Int64(kvDim), v, Int64(nCtx), &out, Int64(qDim), 1, Int32(pos0),
                                          Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), type, threads)
                        }
                        if type == f16 { kh.withUnsafeBytes { k in vh.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        else { kf.withUnsafeBytes { k in vf.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        #expect(bits(out) == bits(want), "heads \(nHead)/\(nHeadKV) dim \(hd) ctx \(nCtx) pos \(pos0) type \(type) level \(l) threads \(threads)")
                    }
                    _ = akk_force_level(-1)
                }
            }
        }
    }

    /// Prefill attention (the blocked products, the chunks of (token, head) pairs, causality, the
    /// thread split) equals llama.cpp's steps composed from single dots, as the prefill computed
    /// them before: every score of token t at its n_valid = pos0 + t + 1 positions one dot of a K
    /// row and q (f16 cache: q in fp16; tinyBLAS's one accumulator when head_dim % 8 == 0, else
    /// ggml_vec_dot_f16; f32 cache: ggml_vec_dot_f32) times the scale, the padding to n_use masked,
    /// softmax, the probabilities in the cache type, every output one dot of a V^T row and them
    /// (tinyBLAS when n_kv % 8 == 0 and head_dim % 4 == 0, else vec_dot); GQA 1-8, head dims 64,
    /// 128 and ones that take ggml_vec_dot's order, pos0 > 0; every level, 1 and 2 threads.
    @Test func prefillAttentionEqualsSingleDots() {
        var rng = SplitMix64(seed: 34)
        let f32 = Int32(AKK_F32.rawValue), f16 = Int32(AKK_F16.rawValue)
        for (nHead, nHeadKV, hd, nCtx, tokens, pos0) in [(8, 8, 64, 300, 37, 0), (8, 4, 128, 257, 20, 100), (9, 3, 64, 260, 45, 5),
                                                        (16, 4, 64, 100, 33, 60), (10, 2, 36, 90, 17, 40), (12, 2, 128, 130, 9, 0),
                                                        (7, 1, 44, 64, 12, 3), (16, 2, 64, 512, 8, 300)] {
            let kvDim = nHeadKV * hd, qDim = nHead * hd, group = nHead / nHeadKV
            let nKV = Int(akk_attn_n_kv(Int32(pos0 + tokens), Int32(nCtx)))
            let kf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let vf = (0..<(nCtx * kvDim)).map { _ in Float.random(in: -1...1, using: &rng) }
            let q = (0..<(tokens * qDim)).map { _ in Float.random(in: -3...3, using: &rng) }
            let kh = kf.map { akk_fp32_to_fp16($0) }, vh = vf.map { akk_fp32_to_fp16($0) }
            let kqOne: Int32 = hd % 8 == 0 ? 1 : 0, kqvOne: Int32 = nKV % 8 == 0 && hd % 4 == 0 ? 1 : 0
            for type in [f32, f16] {
                // one dot of n cache elements from offset a (K or V^T) and b from offset bo (f16:
                // the fp16 values of b) in the order oneAcc (f32 scores: always vec_dot)
                func dot(_ oneAcc: Int32, _ n: Int, _ cache: (f: [Float], h: [UInt16]), _ a: Int, _ b: [Float], _ bo: Int) -> Float {
                    if type == f16 {
                        let x = b[bo..<(bo + n)].map { akk_fp32_to_fp16($0) }
                        return cache.h.withUnsafeBufferPointer { akk_dot_f16(oneAcc, Int64(n), $0.baseAddress! + a, x) }
                    }
                    return cache.f.withUnsafeBufferPointer { cp in b.withUnsafeBufferPointer {
                        oneAcc == 1 ? akk_dot_f32_1acc(Int64(n), cp.baseAddress! + a, $0.baseAddress! + bo)
                            : akk_vec_dot(f32, Int64(n), cp.baseAddress! + a, $0.baseAddress! + bo)
                    } }
                }
                let scale: Float = 0.125
                var want = [Float](repeating: 0, count: tokens * qDim)
                for t in 0..<tokens {
                    let nValid = pos0 + t + 1, nUse = nValid + 31 < nKV ? (nValid + 31) / 32 * 32 : nKV
                    for h in 0..<nHead {
                        let g = h / group
                        var sc = (0..<nUse).map { j in
                            j < nValid ? dot(type == f16 ? kqOne : 0, hd, (kf, kh), j * kvDim + g * hd, q, t * qDim + h * hd) * scale
                                : -Float.infinity
                        }
                        akk_softmax(&sc, Int64(nUse))
                        for d in 0..<hd { want[t * qDim + h * hd + d] = dot(kqvOne, nUse, (vf, vh), (g * hd + d) * nCtx, sc, 0) }
                    }
                }
                for l in level(AKK_CPU_SCALAR)...akk_cpu_max_level() {
                    _ = akk_force_level(l)
                    for threads: Int32 in [1, 2] {
                        var out = [Float](repeating: 0, count: tokens * qDim)
                        var scratch = [Float](repeating: 0, count: max(2, nHead) * nCtx)
                        let body = { (k: UnsafeRawPointer, v: UnsafeRawPointer) in
                            akk_attention(q, Int64(qDim), k, Int64(kvDim), v, Int64(nCtx), &out, Int64(qDim), Int32(tokens), Int32(pos0),
                                          Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), type, threads)
                        }
                        if type == f16 { kh.withUnsafeBytes { k in vh.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        else { kf.withUnsafeBytes { k in vf.withUnsafeBytes { v in body(k.baseAddress!, v.baseAddress!) } } }
                        #expect(bits(out) == bits(want), "heads \(nHead)/\(nHeadKV) dim \(hd) ctx \(nCtx) tokens \(tokens) pos \(pos0) type \(type) level \(l) threads \(threads)")
                    }
                    _ = akk_force_level(-1)
                }
            }
        }
    }

    /// Work sharing (akk_work_next): whatever order the threads come in, every unit is handed
    /// out exactly once; a thread's own items come front to back, contiguous, halving towards
    /// the end of its range down to the smallest item; the others' are taken from the back.
    @Test func workSharingHandsOutEveryUnitOnce() {
        var rng = SplitMix64(seed: 5)
        for (units, threads, minUnits) in [(0, 2, 1), (1, 2, 1), (7, 3, 1), (100, 2, 3), (1000, 2, 7), (513, 4, 1), (64, 8, 2)] {
            var ranges = [akk_work_range](repeating: akk_work_range(), count: threads)
            akk_work_init(&ranges, Int32(threads), Int64(units), Int64(minUnits))
            var seen = [Int](repeating: 0, count: units)
            var lastOwn = [Int64](repeating: -1, count: threads)
            var active = Array(0..<threads)
            while !active.isEmpty {
                let i = Int(rng.next() % UInt64(active.count)), me = active[i]
                var u0: Int64 = 0, u1: Int64 = 0
                guard akk_work_next(&ranges, Int32(threads), Int32(me), &u0, &u1) != 0 else {
                    active.remove(at: i)
                    continue
                }
                #expect(u0 < u1 && u0 >= 0 && u1 <= Int64(units))
                for u in Int(u0)..<Int(u1) { seen[u] += 1 }
                let begin = Int64(units * me / threads), end = Int64(units * (me + 1) / threads)
                if u0 >= begin && u1 <= end {   // its own range: in order, front to back
                    #expect(lastOwn[me] < 0 || u0 == lastOwn[me], "units \(units) threads \(threads)")
                    lastOwn[me] = u1
                    // sizes halve towards the end, down to minUnits (the first item takes the rest)
                    if u0 > begin { #expect(u1 - u0 >= Int64(minUnits) && (u1 - u0 == Int64(minUnits) || u1 - u0 <= end - u1)) }
                    if u1 == end { #expect(u1 - u0 <= Int64(minUnits) || u0 == begin) }
                }
            }
            #expect(seen.allSatisfy { $0 == 1 }, "units \(units) threads \(threads) min \(minUnits)")
        }
    }

    @Test func matmulRowsWritesOnlyItsRows() {
        var rng = SplitMix64(seed: 8)
        let type = Int32(AKK_Q4_0.rawValue), nIn = 128, nOut = 21, tokens = 3
        let w = randomWeights(type, rows: nOut, n: nIn, rng: &rng)
        let x = quantize(type, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
        let full = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 1)
        var part = [Float](repeating: -7, count: nOut * tokens)
        w.withUnsafeBytes { wp in x.withUnsafeBytes { xp in part.withUnsafeMutableBufferPointer {
            akk_matmul_rows(type, wp.baseAddress!, 5, 12, Int64(nIn), xp.baseAddress!, Int64(rowBytes(akk_vec_dot_type(type), nIn)),
                            Int64(tokens), $0.baseAddress!, Int64(nOut))
        } } }
        for t in 0..<tokens {
            for o in 0..<nOut {
                let i = t * nOut + o
                if (5..<12).contains(o) { #expect(part[i].bitPattern == full[i].bitPattern) } else { #expect(part[i] == -7) }
            }
        }
    }

    /// Activations as floats: Q8_0/Q8_1 blocks dequantised (x = d*q), F32 as is.
    private func dequantActivations(_ type: Int32, _ x: [UInt8], n: Int, tokens: Int) -> [Double] {
        let vt = akk_vec_dot_type(type)
        if vt == Int32(AKK_F32.rawValue) {
            return x.withUnsafeBytes { Array($0.bindMemory(to: Float.self)).map(Double.init) }
        }
        let bs = vt == Int32(AKK_Q8_0.rawValue) ? 34 : 36, off = bs - 32
        var out: [Double] = []
        for b in 0..<(n * tokens / 32) {
            let d = Double(akk_fp16_to_fp32(UInt16(x[b * bs]) | UInt16(x[b * bs + 1]) << 8))
            for j in 0..<32 { out.append(d * Double(Int8(bitPattern: x[b * bs + off + j]))) }
        }
        return out
    }

    @Test func matmulMatchesDoubleReference() throws {
        var rng = SplitMix64(seed: 99)
        for type in matmulTypes {
            for (nIn, nOut, tokens) in [(32, 5, 1), (96, 13, 3), (32 * 37, 31, 9), (32 * 64, 64, 1)] {
                let w = randomWeights(type, rows: nOut, n: nIn, rng: &rng)
                let x = quantize(type, randomActivations(count: nIn * tokens, rng: &rng), n: nIn, tokens: tokens)
                let y = matmul(type, w, nOut: nOut, nIn: nIn, x, tokens: tokens, threads: 2)
                var wf = [Float](repeating: 0, count: nOut * nIn)
                let rc = w.withUnsafeBytes { wp in wf.withUnsafeMutableBufferPointer {
                    akk_dequantize_row(type, wp.baseAddress!, $0.baseAddress!, Int64(nOut * nIn)) } }
                try #require(rc == 0)
                let xf = dequantActivations(type, x, n: nIn, tokens: tokens)
                var worst = 0.0
                for t in 0..<tokens {
                    for o in 0..<nOut {
                        var ref = 0.0, mag = 0.0
                        if type == Int32(AKK_Q4_1.rawValue) {
                            // x = d_w*q_w + m_w with sum_j m_w*x_j taken as m_w*s_x (s_x is the
                            // fp16 block sum the format stores and llama.cpp uses).
                            for b in 0..<(nIn / 32) {
                                let wb = (o * nIn / 32 + b) * 20, xb = (t * nIn / 32 + b) * 36
                                let m = Double(akk_fp16_to_fp32(UInt16(w[wb + 2]) | UInt16(w[wb + 3]) << 8))
                                let s = Double(akk_fp16_to_fp32(UInt16(x[xb + 2]) | UInt16(x[xb + 3]) << 8))
                                ref += m * s; mag += abs(m * s)
                                for j in 0..<32 {
                                    let i = b * 32 + j
                                    let p = (Double(wf[o * nIn + i]) - m) * xf[t * nIn + i]
                                    ref += p; mag += abs(p)
                                }
                            }
                        } else {
                            for i in 0..<nIn {
                                let p = Double(wf[o * nIn + i]) * xf[t * nIn + i]
                                ref += p; mag += abs(p)
                            }
                        }
                        let err = abs(Double(y[t * nOut + o]) - ref) / max(mag, 1e-30)
                        worst = max(worst, err)
                    }
                }
                // float accumulation over <= 64 blocks: a few ulps of the magnitude sum.
                #expect(worst < 2e-6, "\(typeName(type)) \(nIn)x\(nOut)x\(tokens): \(worst)")
            }
        }
    }

    // MARK: dequantisation vs gguf-py

    @Test func dequantizeMatchesGGUFPy() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources/dequant_ref.bin")
        let data = [UInt8](try Data(contentsOf: url))
        func u32(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 | Int(data[o + 2]) << 16 | Int(data[o + 3]) << 24 }
        var off = 0
        var seen: Set<String> = []
        while off < data.count {
            let type = Int32(u32(off)), n = u32(off + 4), nbytes = u32(off + 8)
            off += 12
            let raw = Array(data[off..<(off + nbytes)]); off += nbytes
            let ref = (0..<n).map { UInt32(u32(off + 4 * $0)) }; off += 4 * n
            #expect(rowBytes(type, n) == nbytes)
            var out = [Float](repeating: .nan, count: n)
            let rc = raw.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer {
                akk_dequantize_row(type, r.baseAddress!, $0.baseAddress!, Int64(n)) } }
            #expect(rc == 0, "\(typeName(type))")
            #expect(bits(out) == ref, "\(typeName(type))")
            seen.insert(typeName(type))
        }
        #expect(seen == ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"])
    }

    @Test func unsupportedTypesAreRejected() {
        var out = [Float](repeating: 0, count: 256)
        let raw = [UInt8](repeating: 0, count: 512)
        let rc = raw.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer {
            akk_dequantize_row(Int32(AKK_Q8_K.rawValue), r.baseAddress!, $0.baseAddress!, 256) } }
        #expect(rc == -1)
        #expect(akk_vec_dot_type(Int32(AKK_Q8_K.rawValue)) == -1)
    }

    @Test func bandwidthProbeRuns() {
        #expect(akk_measure_read_bandwidth(1 << 20, 1) > 0)
    }
}
