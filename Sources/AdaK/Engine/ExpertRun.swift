import CAdaKKernels

/// Runs the routed experts of one MoE layer step: groups the `[tokens × kMax]` slots of an
/// `ExpertTable` by expert, gathers each expert's input rows, runs every active expert's
/// gate/up → SwiGLU → down in ONE OpenMP parallel region (`akk_moe_ffn`), and sums each token's
/// weighted expert outputs in slot order (as llama.cpp adds them). An expert no token chose is
/// never touched: its weights are not read.
///
/// All buffers are made once (and grown once if Ada-K routes more rows than the native top-k
/// would), so decoding allocates nothing here.
final class ExpertRun {
    let nExpert, nEmbd, nFF: Int
    private var bufs: Buffers
    private let count: UnsafeMutablePointer<Int>      // rows per expert
    private let next: UnsafeMutablePointer<Int>       // next free gathered row per expert
    private let jobs: UnsafeMutablePointer<akk_moe_expert>

    /// Gathered-row working memory for `capacity` rows (a row = one (token, expert) slot).
    private final class Buffers {
        let capacity: Int
        let g, u, out, weight: FloatBuffer
        let h, xg, xu: FloatBuffer        // raw rows in vec-dot formats (at most 4 bytes/element)
        let rowOfSlot: UnsafeMutablePointer<Int>
        let tokenOfRow: UnsafeMutablePointer<Int>

        init(capacity c: Int, nEmbd d: Int, nFF f: Int) throws {
            capacity = c
            g = try FloatBuffer(c * f, zeroed: false)
            u = try FloatBuffer(c * f, zeroed: false)
            h = try FloatBuffer(c * f, zeroed: false)
            out = try FloatBuffer(c * d, zeroed: false)
            weight = try FloatBuffer(c, zeroed: false)
            xg = try FloatBuffer(c * d, zeroed: false)
            xu = try FloatBuffer(c * d, zeroed: false)
            rowOfSlot = .allocate(capacity: c)
            tokenOfRow = .allocate(capacity: c)
        }

        deinit {
            rowOfSlot.deallocate()
            tokenOfRow.deallocate()
        }
    }

    /// `rows`: gathered rows to hold at first (batch size × native top-k).
    init(nExpert: Int, nEmbd: Int, nFF: Int, rows: Int) throws {
        self.nExpert = nExpert
        self.nEmbd = nEmbd
        self.nFF = nFF
        bufs = try Buffers(capacity: max(rows, nExpert, 1), nEmbd: nEmbd, nFF: nFF)
        count = .allocate(capacity: max(nExpert, 1))
        next = .allocate(capacity: max(nExpert, 1))
        jobs = .allocate(capacity: max(nExpert, 1))
    }

    deinit {
        count.deallocate()
        next.deallocate()
        jobs.deallocate()
    }

    /// out[t] = Σ_j weight[t, j] · expert_{id[t, j]}(x[t]) over the first ks[t] slots of token t,
    /// in slot order; x is `input` (its f32 rows and their quantised copies).
    func run(table: ExpertTable, ks: [Int], tokens n: Int, input: ActivationRows,
             gate: ExpertStack, up: ExpertStack, down: ExpertStack, threads: Int,
             out: UnsafeMutablePointer<Float>) {
        let kMax = max(table.kMax, 1)
        if n * kMax > bufs.capacity, let bigger = try? Buffers(capacity: n * kMax, nEmbd: nEmbd, nFF: nFF) {
            bufs = bigger
        }
        // capacity >= nExpert >= kMax, so every chunk holds at least one token
        let per = max(1, bufs.capacity / kMax)
        var t0 = 0
        while t0 < n {
            let t1 = min(n, t0 + per)
            step(table: table, ks: ks, t0: t0, t1: t1, input: input, gate: gate, up: up, down: down,
                 threads: threads, out: out)
            t0 = t1
        }
    }

    private func step(table: ExpertTable, ks: [Int], t0: Int, t1: Int, input: ActivationRows,
                      gate: ExpertStack, up: ExpertStack, down: ExpertStack, threads: Int,
                      out: UnsafeMutablePointer<Float>) {
        let d = nEmbd, f = nFF, nE = nExpert, kMax = max(table.kMax, 1)
        let b = bufs
        let s0 = t0 * kMax, s1 = t1 * kMax
        table.ids.withUnsafeBufferPointer { ids in
        table.weights.withUnsafeBufferPointer { wts in
            // rows per expert, then each expert's rows in slot order
            count.update(repeating: 0, count: nE)
            for i in s0..<s1 {
                let e = Int(ids[i])
                if e >= 0 && e < nE { count[e] += 1 }
            }
            var nJobs = 0, rows = 0
            for e in 0..<nE where count[e] > 0 {
                next[e] = rows
                jobs[nJobs] = akk_moe_expert(gate: gate.expert(e).data, up: up.expert(e).data,
                                             down: down.expert(e).data, row0: Int64(rows), n_rows: Int64(count[e]))
                nJobs += 1
                rows += count[e]
            }
            for i in s0..<s1 {
                let e = Int(ids[i])
                guard e >= 0 && e < nE else { b.rowOfSlot[i - s0] = -1; continue }
                let r = next[e]
                next[e] = r + 1
                b.rowOfSlot[i - s0] = r
                b.tokenOfRow[r] = i / kMax
                b.weight.p[r] = wts[i]
            }
            guard nJobs > 0 else {
                (out + t0 * d).update(repeating: 0, count: (t1 - t0) * d)
                return
            }

            // the experts' inputs: the token rows in the gate's and up's vec-dot formats; one token
            // needs no gathering (stride 0: every expert reads the same row)
            let (xg, sg) = input.input(for: gate.type)
            let (xu, su) = input.input(for: up.type)
            let gIn: UnsafeRawPointer, uIn: UnsafeRawPointer
            var gStride = sg, uStride = su
            if t1 - t0 == 1 {
                gIn = xg + t0 * sg
                uIn = xu + t0 * su
                gStride = 0
                uStride = 0
            } else {
                let gb = UnsafeMutableRawPointer(b.xg.p), ub = UnsafeMutableRawPointer(b.xu.p)
                for r in 0..<rows { (gb + r * sg).copyMemory(from: xg + b.tokenOfRow[r] * sg, byteCount: sg) }
                gIn = UnsafeRawPointer(gb)
                if xu == xg {
                    uIn = gIn
                } else {
                    for r in 0..<rows { (ub + r * su).copyMemory(from: xu + b.tokenOfRow[r] * su, byteCount: su) }
                    uIn = UnsafeRawPointer(ub)
                }
            }
            let hStride = akk_row_bytes(akk_vec_dot_type(down.type), Int64(f))
            let rc = akk_moe_ffn(gate.type, up.type, down.type, Int64(d), Int64(f), jobs, Int32(nJobs),
                                 gIn, Int64(gStride), uIn, Int64(uStride), b.g.p, b.u.p,
                                 UnsafeMutableRawPointer(b.h.p), hStride, b.weight.p, b.out.p, Int64(d),
                                 Int32(threads))
            if rc != 0 { b.out.p.update(repeating: 0, count: rows * d) }

            // sum each token's slots in slot order
            for t in t0..<t1 {
                let o = out + t * d
                var first = true
                for j in 0..<min(ks[t], kMax) {
                    let r = b.rowOfSlot[t * kMax + j - s0]
                    guard r >= 0 else { continue }
                    let src = b.out.p + r * d
                    if first {
                        o.update(from: src, count: d)
                        first = false
                    } else {
                        akk_vec_add(o, src, Int64(d))
                    }
                }
                if first { o.update(repeating: 0, count: d) }
            }
        }
        }
    }
}
