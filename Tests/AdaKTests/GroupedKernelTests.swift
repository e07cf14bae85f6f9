import Testing
@testable import AdaK
import CAdaKKernels

/// Rows of floats quantised to the vec-dot type of `wtype`, each row `stride` bytes.
private func activations(_ wtype: Int32, _ x: [Float], n: Int, rows: Int) -> (bytes: [UInt8], stride: Int) {
    let stride = Int(akk_row_bytes(akk_vec_dot_type(wtype), Int64(n)))
    var out = [UInt8](repeating: 0, count: stride * rows + 64)
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBytes { o in
            for r in 0..<rows { akk_quantize_activation(wtype, xp.baseAddress! + r * n, o.baseAddress! + r * stride, Int64(n)) }
        }
    }
    return (out, stride)
}

private func matmul(_ t: Int32, _ w: UnsafeRawPointer, nOut: Int, nIn: Int, _ x: [UInt8], stride: Int, rows: Int) -> [Float] {
    var y = [Float](repeating: 0, count: nOut * rows)
    x.withUnsafeBytes { xp in
        y.withUnsafeMutableBufferPointer { yp in
            akk_matmul(t, w, Int64(nOut), Int64(nIn), xp.baseAddress!, Int64(stride), Int64(rows), yp.baseAddress!, Int64(nOut), 1)
        }
    }
    return y
}

/// The grouped kernels reorganise work between threads and parallel regions only: every output
/// must equal, bit for bit, the per-product akk_matmul sequence they replace.
@Suite struct GroupedKernelTests {
    @Test func matmulMultiEqualsSeparateMatmuls() {
        var rng = SplitMix64(seed: 11)
        let t = Int32(AKK_Q4_0.rawValue), nIn = 256
        for tokens in [1, 3, 17] {
            let shapes = [96, 32, 40]   // Q, K, V-like
            let ws = shapes.map { randomWeights(t, rows: $0, n: nIn, rng: &rng) }
            let x = (0..<(tokens * nIn)).map { _ in Float.random(in: -2...2, using: &rng) }
            let (xq, stride) = activations(t, x, n: nIn, rows: tokens)
            let want = (0..<3).map { j in ws[j].withUnsafeBytes { matmul(t, $0.baseAddress!, nOut: shapes[j], nIn: nIn, xq, stride: stride, rows: tokens) } }
            for threads in [1, 2, 3] {
                var g0 = [Float](repeating: .nan, count: shapes[0] * tokens)
                var g1 = [Float](repeating: .nan, count: shapes[1] * tokens)
                var g2 = [Float](repeating: .nan, count: shapes[2] * tokens)
                ws[0].withUnsafeBytes { w0 in ws[1].withUnsafeBytes { w1 in ws[2].withUnsafeBytes { w2 in
                xq.withUnsafeBytes { xp in
                g0.withUnsafeMutableBufferPointer { y0 in g1.withUnsafeMutableBufferPointer { y1 in g2.withUnsafeMutableBufferPointer { y2 in
                    let wp = [w0.baseAddress!, w1.baseAddress!, w2.baseAddress!]
                    let yp = [y0.baseAddress!, y1.baseAddress!, y2.baseAddress!]
                    let jobs = (0..<3).map { j in
                        akk_mm_job(wtype: t, W: wp[j], n_out: Int64(shapes[j]), n_in: Int64(nIn), X: xp.baseAddress!,
                                   xstride: Int64(stride), n_tok: Int64(tokens), Y: yp[j], ystride: Int64(shapes[j]))
                    }
                    akk_matmul_multi(jobs, 3, Int32(threads))
                }}}}}}}
                let got = [g0, g1, g2]
                for j in 0..<3 {
                    #expect(got[j].map(\.bitPattern) == want[j].map(\.bitPattern), "tokens \(tokens) threads \(threads) job \(j)")
                }
            }
        }
    }

    @Test func moeFFNEqualsPerExpertMatmuls() {
        var rng = SplitMix64(seed: 7)
        let q40 = Int32(AKK_Q4_0.rawValue), q80 = Int32(AKK_Q8_0.rawValue), q41 = Int32(AKK_Q4_1.rawValue), f32 = Int32(AKK_F32.rawValue)
        // (gate/up type, down type, n_embd, n_ff): widths with SwiGLU tails (n_ff % 8 != 0, f32 down)
        let cases: [(Int32, Int32, Int, Int)] = [(q40, q40, 128, 96), (q80, q80, 64, 160), (q41, q41, 96, 64),
                                                 (q40, q80, 64, 352), (q80, f32, 64, 100)]
        // native K-quant / Q5_x experts (Q8_K hidden activations: phase-1 chunks of 256)
        let k = { (t: UInt32) in Int32(t) }
        let kcases: [(Int32, Int32, Int, Int)] = [(k(AKK_Q4_K.rawValue), k(AKK_Q6_K.rawValue), 256, 512),
                                                  (k(AKK_Q5_0.rawValue), k(AKK_Q5_K.rawValue), 96, 768),
                                                  (k(AKK_Q3_K.rawValue), k(AKK_Q2_K.rawValue), 256, 256),
                                                  (k(AKK_Q5_1.rawValue), k(AKK_Q5_0.rawValue), 64, 160)]
        func weights(_ t: Int32, rows: Int, n: Int) -> [UInt8] {
            kquantTypes.contains(t) ? randomKQuantWeights(t, rows: rows, n: n, rng: &rng) : randomWeights(t, rows: rows, n: n, rng: &rng)
        }
        for (gt, dt, d, f) in cases + kcases {
            let nE = 5
            let gate = (0..<nE).map { _ in weights(gt, rows: f, n: d) }
            let up = (0..<nE).map { _ in weights(gt, rows: f, n: d) }
            let down = (0..<nE).map { _ in weights(dt, rows: d, n: f) }
            // gathered rows: expert e gets counts[e] rows (expert 2 none)
            let counts = [3, 1, 0, 6, 2]
            let total = counts.reduce(0, +)
            let x = (0..<(total * d)).map { _ in Float.random(in: -3...3, using: &rng) }
            let wts = (0..<total).map { _ in Float.random(in: 0...1, using: &rng) }
            let (xq, xs) = activations(gt, x, n: d, rows: total)

            // reference: per expert, as the engine did before (akk_matmul per matrix)
            var want = [Float](repeating: 0, count: total * d)
            var row0 = 0
            for e in 0..<nE where counts[e] > 0 {
                let n = counts[e]
                let sub = Array(xq[(row0 * xs)..<((row0 + n) * xs)])
                var g = gate[e].withUnsafeBytes { matmul(gt, $0.baseAddress!, nOut: f, nIn: d, sub, stride: xs, rows: n) }
                let u = up[e].withUnsafeBytes { matmul(gt, $0.baseAddress!, nOut: f, nIn: d, sub, stride: xs, rows: n) }
                g.withUnsafeMutableBufferPointer { gp in
                    u.withUnsafeBufferPointer { up in
                        for r in 0..<n { akk_swiglu(gp.baseAddress! + r * f, up.baseAddress! + r * f, gp.baseAddress! + r * f, Int64(f)) }
                    }
                }
                let (hq, hs) = activations(dt, g, n: f, rows: n)
                let y = down[e].withUnsafeBytes { matmul(dt, $0.baseAddress!, nOut: d, nIn: f, hq, stride: hs, rows: n) }
                for r in 0..<n { for i in 0..<d { want[(row0 + r) * d + i] = y[r * d + i] * wts[row0 + r] } }
                row0 += n
            }

            for threads in [1, 2, 3] {
                var got = [Float](repeating: .nan, count: total * d)
                var gBuf = [Float](repeating: 0, count: total * f), uBuf = gBuf, hBuf = gBuf
                let hStride = akk_row_bytes(akk_vec_dot_type(dt), Int64(f))
                let rc: Int32 = gate.withUnsafeBufferPointers { gp in up.withUnsafeBufferPointers { upp in down.withUnsafeBufferPointers { dp in
                    var jobs: [akk_moe_expert] = []
                    var r0 = 0
                    for e in 0..<nE where counts[e] > 0 {
                        jobs.append(akk_moe_expert(gate: gp[e], up: upp[e], down: dp[e], row0: Int64(r0), n_rows: Int64(counts[e])))
                        r0 += counts[e]
                    }
                    return xq.withUnsafeBytes { xp in
                        akk_moe_ffn(gt, gt, dt, Int64(d), Int64(f), jobs, Int32(jobs.count), xp.baseAddress!, Int64(xs),
                                    xp.baseAddress!, Int64(xs), &gBuf, &uBuf, &hBuf, hStride, wts, &got, Int64(d), Int32(threads))
                    }
                }}}
                #expect(rc == 0)
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(gt)/\(dt) d \(d) f \(f) threads \(threads)")
            }
        }
    }

    @Test func moeFFNRejectsUnsupportedShapes() {
        let job = akk_moe_expert(gate: nil, up: nil, down: nil, row0: 0, n_rows: 1)
        // Q8_0 down weights need n_ff to be a multiple of 32
        let rc = [job].withUnsafeBufferPointer {
            akk_moe_ffn(Int32(AKK_Q8_0.rawValue), Int32(AKK_Q8_0.rawValue), Int32(AKK_Q8_0.rawValue), 64, 100, $0.baseAddress, 1,
                        nil, 0, nil, 0, nil, nil, nil, 0, nil, nil, 0, 1)
        }
        #expect(rc == -1)
    }
}

private extension Array where Element == [UInt8] {
    /// Base pointers of every inner array, valid inside `body`.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeRawPointer]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafeRawPointer]) -> R {
            if i == count { return body(acc) }
            return self[i].withUnsafeBytes { go(i + 1, acc + [$0.baseAddress!]) }
        }
        return go(0, [])
    }
}
