import Foundation
import Testing
@testable import AdaK
import CAdaKKernels

/// The f32 ops of the forward pass (ops.c): the AVX2 paths are bit-identical to their lane-exact
/// scalar references, GGML's vector exp stays within its documented error, and attention agrees
/// with a float64 reference. (Bit-exactness against llama.cpp itself is SmolLM2Tests' job.)
/// No akk_force_scalar here: KernelTests toggles it process-wide, so these tests call the explicit
/// `_scalar` entry points instead.
@Suite struct OpsTests {
    private static func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    private static func randoms(_ n: Int, _ range: ClosedRange<Float>, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float.random(in: range, using: &rng) }
    }

    @Test func expfSIMDEqualsScalarReference() {
        // ordinary range, the |n| > 126 and > 192 slow paths, and special values
        var x = Self.randoms(4000, -110...95, seed: 1)
        x += [0, -0.0, 1, -1, 88.3, 88.4, 88.8, -87.3, -87.4, -103.9, -104, -150, -200, 200,
              .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e-30, -1e-30]
        var y = [Float](repeating: 0, count: x.count)
        akk_expf_ggml_row(x, &y, Int64(x.count))
        let ref = x.map { akk_expf_ggml_ref($0) }
        #expect(Self.bits(y) == Self.bits(ref))
        #expect(akk_expf_ggml_ref(-.infinity) == 0)
        #expect(akk_expf_ggml_ref(.infinity) == .infinity)
        #expect(akk_expf_ggml_ref(-104) == 0)
        #expect(akk_expf_ggml_ref(89) == .infinity)
    }

    /// ggml documents "maximum error 1.45358 plus 0.5 ulps" for ggml_v_expf; check ≤ 2 ulp against
    /// exp in double over the range where the result is a normal float.
    @Test func expfWithinDocumentedError() {
        var worst = 0.0
        var x: Float = -87.0
        while x <= 88.0 {
            let got = Double(akk_expf_ggml_ref(x))
            let want = Foundation.exp(Double(x))
            let ulp = Double(Float(want).ulp)
            worst = max(worst, abs(got - want) / ulp)
            x = x.nextUp.nextUp.nextUp + 0.0007
        }
        #expect(worst <= 2.0, "max error \(worst) ulp")
        #expect(akk_expf_ggml_ref(0) == 1)
    }

    @Test func softmaxSIMDEqualsScalar() {
        for n in [1, 3, 8, 13, 64, 255, 256, 1000] {
            var x = Self.randoms(n, -12...12, seed: UInt64(n))
            // masked cells as the attention passes them
            for i in stride(from: n / 2 + 1, to: n, by: 3) { x[i] = -.infinity }
            var a = x, b = x
            akk_softmax(&a, Int64(n))
            akk_softmax_scalar(&b, Int64(n))
            #expect(Self.bits(a) == Self.bits(b), "n = \(n)")
            let s = a.reduce(0.0) { $0 + Double($1) }
            #expect(abs(s - 1) < 1e-5, "n = \(n): sum \(s)")
            for i in stride(from: n / 2 + 1, to: n, by: 3) { #expect(a[i] == 0) }
        }
    }

    /// The batch forms of the per-row ops (a prefill's norms, residual adds, RoPE and activation
    /// quantisation, split over threads, RMSNorm's rows interleaved by four) give each row the bits
    /// of the one-row op, for row counts below and above the threading threshold and with tails.
    @Test func rowOpsEqualTheirOneRowForms() {
        for (rows, n) in [(1, 576), (5, 64), (13, 576), (64, 1024), (7, 2048)] {
            let x = Self.randoms(rows * n, -3...3, seed: UInt64(rows * 1000 + n))
            let w = Self.randoms(n, 0.5...1.5, seed: 7)
            var y = [Float](repeating: 0, count: rows * n), ref = y
            akk_rmsnorm_rows(x, Int64(n), w, &y, Int64(n), Int64(rows), Int64(n), 1e-5, 2)
            for r in 0..<rows { x.withUnsafeBufferPointer { xp in ref.withUnsafeMutableBufferPointer { rp in
                akk_rmsnorm(xp.baseAddress! + r * n, w, rp.baseAddress! + r * n, Int64(n), 1e-5) } } }
            #expect(Self.bits(y) == Self.bits(ref), "rmsnorm \(rows) x \(n)")

            let b = Self.randoms(rows * n, -2...2, seed: 9)
            for scale: Float in [1, 0.22] {
                var a = x
                akk_add_scaled(&a, b, scale, Int64(rows * n), 2)
                let want = zip(x, b).map { scale == 1 ? $0 + $1 : $0 + $1 * scale }
                #expect(Self.bits(a) == Self.bits(want), "add \(rows) x \(n) scale \(scale)")
            }

            // RoPE: q of n/64 heads of 64, k of half as many (or none), positions from 17
            let hq = n / 64, hk = max(hq / 2, 1)
            var q = x, k = Array(x.prefix(rows * hk * 64))
            var q1 = q, k1 = k
            akk_rope_rows(&q, Int64(n), Int32(hq), &k, Int64(hk * 64), Int32(hk), Int64(rows), 64, 64, 17, 10000, 1, 2)
            for r in 0..<rows {
                q1.withUnsafeMutableBufferPointer { akk_rope($0.baseAddress! + r * n, Int32(hq), 64, 64, Int32(17 + r), 10000, 1) }
                k1.withUnsafeMutableBufferPointer { akk_rope($0.baseAddress! + r * hk * 64, Int32(hk), 64, 64, Int32(17 + r), 10000, 1) }
            }
            #expect(Self.bits(q) == Self.bits(q1) && Self.bits(k) == Self.bits(k1), "rope \(rows) x \(n)")

            for wtype in [AKK_Q4_0, AKK_Q4_1] + (n % 256 == 0 ? [AKK_Q4_K] : []) {
                let t = Int32(wtype.rawValue)
                let rb = Int(akk_row_bytes(akk_vec_dot_type(t), Int64(n)))
                var got = [UInt8](repeating: 0, count: rows * rb), want = got
                akk_quantize_activation_rows(t, x, Int64(n), &got, Int64(rb), Int64(rows), Int64(n), 2)
                for r in 0..<rows { x.withUnsafeBufferPointer { xp in want.withUnsafeMutableBytes { wp in
                    akk_quantize_activation(t, xp.baseAddress! + r * n, wp.baseAddress! + r * rb, Int64(n)) } } }
                #expect(got == want, "quantise \(rows) x \(n) for type \(t)")
            }
        }
    }

    @Test func swigluSIMDEqualsScalar() {
        for n in [1, 7, 8, 29, 1536] {
            let g = Self.randoms(n, -30...30, seed: UInt64(100 + n))
            let u = Self.randoms(n, -4...4, seed: UInt64(200 + n))
            var a = [Float](repeating: 0, count: n), b = a
            akk_swiglu(g, u, &a, Int64(n))
            akk_swiglu_scalar(g, u, &b, Int64(n))
            #expect(Self.bits(a) == Self.bits(b), "n = \(n)")
            for i in 0..<n {
                let want = Double(g[i]) / (1 + Foundation.exp(-Double(g[i]))) * Double(u[i])
                #expect(abs(Double(a[i]) - want) <= 1e-5 * max(1, abs(want)))
            }
        }
    }

    @Test func tinyBLASDotSIMDEqualsScalar() {
        for n in [8, 64, 256, 2048] {
            let a = Self.randoms(n, -1...1, seed: UInt64(300 + n))
            let b = Self.randoms(n, -1...1, seed: UInt64(400 + n))
            let s = akk_dot_f32_1acc(Int64(n), a, b)
            let r = akk_dot_f32_1acc_scalar(Int64(n), a, b)
            #expect(s.bitPattern == r.bitPattern, "n = \(n)")
        }
    }

    @Test func kvPadding() {
        #expect(akk_attn_n_kv(1, 2048) == 256)
        #expect(akk_attn_n_kv(256, 2048) == 256)
        #expect(akk_attn_n_kv(257, 2048) == 512)
        #expect(akk_attn_n_kv(2000, 2048) == 2048)
        #expect(akk_attn_n_kv(5, 100) == 100)
    }

    /// Attention over a transposed V cache against float64 softmax attention, for a batch (tinyBLAS
    /// path) and for single-token decoding (vec_dot path), with GQA.
    @Test func attentionMatchesFloat64Reference() {
        let nHead = 4, nHeadKV = 2, hd = 32, nCtx = 300, kvDim = nHeadKV * hd, qDim = nHead * hd
        let nPos = 270 // crosses the 256 padding boundary
        let k = Self.randoms(nCtx * kvDim, -1...1, seed: 7)
        let v = Self.randoms(nPos * kvDim, -1...1, seed: 8)
        let q = Self.randoms(nPos * qDim, -1...1, seed: 9)
        var vt = [Float](repeating: 0, count: kvDim * nCtx)
        for p in 0..<nPos { for i in 0..<kvDim { vt[i * nCtx + p] = v[p * kvDim + i] } }
        let scale = 1 / Float(hd).squareRoot()
        var scratch = [Float](repeating: 0, count: 4 * nCtx)

        func reference(_ t: Int, _ h: Int) -> [Double] {
            let g = h / (nHead / nHeadKV)
            var s = (0...t).map { j in
                (0..<hd).reduce(0.0) { $0 + Double(q[t * qDim + h * hd + $1]) * Double(k[j * kvDim + g * hd + $1]) } * Double(scale)
            }
            let m = s.max()!
            s = s.map { Foundation.exp($0 - m) }
            let z = s.reduce(0, +)
            return (0..<hd).map { d in (0...t).reduce(0.0) { $0 + s[$1] / z * Double(v[$1 * kvDim + g * hd + d]) } }
        }

        // batch: all positions at once
        var out = [Float](repeating: 0, count: nPos * qDim)
        akk_attention(q, Int64(qDim), k, Int64(kvDim), vt, Int64(nCtx), &out, Int64(qDim), Int32(nPos), 0,
                      Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), Int32(AKK_F32.rawValue), 2)
        // decode: the last position alone
        var one = [Float](repeating: 0, count: qDim)
        let t = nPos - 1
        q.withUnsafeBufferPointer { qp in
            akk_attention(qp.baseAddress! + t * qDim, Int64(qDim), k, Int64(kvDim), vt, Int64(nCtx), &one, Int64(qDim),
                          1, Int32(t), Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), Int32(AKK_F32.rawValue), 2)
        }
        // decode takes its own path (scores position by position): the same bits on 1, 2 and 3
        // threads (scalar reference: KernelTests.attentionScalarEqualsSIMD)
        for threads: Int32 in [1, 3] {
            var again = [Float](repeating: 0, count: qDim)
            q.withUnsafeBufferPointer { qp in
                akk_attention(qp.baseAddress! + t * qDim, Int64(qDim), k, Int64(kvDim), vt, Int64(nCtx), &again, Int64(qDim),
                              1, Int32(t), Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), Int32(AKK_F32.rawValue), threads)
            }
            #expect(again.map(\.bitPattern) == one.map(\.bitPattern), "decode on \(threads) threads")
        }
        var worst = 0.0
        for tt in [0, 1, 17, 255, 256, t] {
            for h in 0..<nHead {
                let r = reference(tt, h)
                for d in 0..<hd { worst = max(worst, abs(Double(out[tt * qDim + h * hd + d]) - r[d])) }
                if tt == t { for d in 0..<hd { worst = max(worst, abs(Double(one[h * hd + d]) - r[d])) } }
            }
        }
        #expect(worst < 2e-6, "max abs error \(worst)")
    }

    /// An f16 KV cache: the result is attention over the fp16-rounded q, K, V and probabilities
    /// (llama.cpp converts q and the softmax output to fp16 for its f16 dots), within 2e-3 of a
    /// float64 reference on the rounded q, K and V; decode gives the same bits on 1 and 3 threads.
    @Test func attentionWithF16CacheMatchesReference() {
        let nHead = 4, nHeadKV = 2, hd = 64, nCtx = 300, kvDim = nHeadKV * hd, qDim = nHead * hd
        let nPos = 270
        let r16: (Float) -> Float = { akk_fp16_to_fp32(akk_fp32_to_fp16($0)) }
        let k = Self.randoms(nCtx * kvDim, -1...1, seed: 17), v = Self.randoms(nPos * kvDim, -1...1, seed: 18)
        let q = Self.randoms(nPos * qDim, -1...1, seed: 19)
        let kh = k.map { akk_fp32_to_fp16($0) }
        var vt = [UInt16](repeating: 0, count: kvDim * nCtx)
        for p in 0..<nPos { for i in 0..<kvDim { vt[i * nCtx + p] = akk_fp32_to_fp16(v[p * kvDim + i]) } }
        let scale = 1 / Float(hd).squareRoot()
        var scratch = [Float](repeating: 0, count: 4 * nCtx)
        func reference(_ t: Int, _ h: Int) -> [Double] {
            let g = h / (nHead / nHeadKV)
            var s = (0...t).map { j in
                (0..<hd).reduce(0.0) { $0 + Double(r16(q[t * qDim + h * hd + $1])) * Double(r16(k[j * kvDim + g * hd + $1])) } * Double(scale)
            }
            let m = s.max()!
            s = s.map { Foundation.exp($0 - m) }
            let z = s.reduce(0, +)
            return (0..<hd).map { d in (0...t).reduce(0.0) { $0 + s[$1] / z * Double(r16(v[$1 * kvDim + g * hd + d])) } }
        }
        let f16 = Int32(AKK_F16.rawValue)
        var out = [Float](repeating: 0, count: nPos * qDim)
        akk_attention(q, Int64(qDim), kh, Int64(kvDim), vt, Int64(nCtx), &out, Int64(qDim), Int32(nPos), 0,
                      Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), f16, 2)
        let t = nPos - 1
        var ones: [[Float]] = []
        for threads: Int32 in [1, 3] {
            var one = [Float](repeating: 0, count: qDim)
            q.withUnsafeBufferPointer { qp in
                akk_attention(qp.baseAddress! + t * qDim, Int64(qDim), kh, Int64(kvDim), vt, Int64(nCtx), &one, Int64(qDim),
                              1, Int32(t), Int32(nHead), Int32(nHeadKV), Int32(hd), scale, &scratch, Int32(nCtx), f16, threads)
            }
            ones.append(one)
        }
        #expect(Self.bits(ones[0]) == Self.bits(ones[1]))
        var worst = 0.0
        for tt in [0, 1, 17, 255, 256, t] {
            for h in 0..<nHead {
                let r = reference(tt, h)
                for d in 0..<hd { worst = max(worst, abs(Double(out[tt * qDim + h * hd + d]) - r[d])) }
                if tt == t { for d in 0..<hd { worst = max(worst, abs(Double(ones[0][h * hd + d]) - r[d])) } }
            }
        }
        #expect(worst < 2e-3, "max abs error \(worst)")
        #expect(worst > 0)
    }
}
