import AdaK
import ArgumentParser
import CAdaKKernels
import Foundation

/// Prefill and decode throughput, with the memory-bandwidth roofline of decoding.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode speed (tokens/s) against the bandwidth roofline.")

    @Option(name: .shortAndLong, help: "GGUF model file") var model: String
    @Option(name: [.short, .long], help: "Threads (0: all cores)") var threads = 0
    @Option(help: "Prompt tokens for the prefill measurement") var promptTokens = 128
    @Option(help: "Tokens decoded one at a time after the prompt") var genTokens = 128
    @Option(help: "Rounds; medians are reported") var rounds = 3
    @Option(help: "Write the results as JSON to this file") var json: String?
    @Option(help: "Weight format for tensor types the kernels don't run natively: f32, q8_0, q4_0") var weightType = "q8_0"
    @Flag(help: "Skip the bandwidth probe") var noProbe = false
    @Flag(help: "Keep Q4_0, Q4_K, IQ4_NL, MXFP4 and IQ4_XS matrices in the file's row layout instead of 8- (IQ4_XS: 16-) row groups") var noRepack = false
    @Option(help: "KV cache type: f32 or f16") var kvType = "f32"
    @Flag(help: "Time the steps of each decoded token (attention, projections, routing, experts, ...) and print where the time goes")
    var phases = false
    @Option(help: "Concurrent sessions decoded in batched steps (one forward pass per step for all)") var sessions = 1
    @OptionGroup var routing: RoutingOptions

    /// The benchmark's token ids (also used by bench/compare_llamacpp.py): deterministic,
    /// spread over the vocabulary, avoiding the first and last 100 ids (special tokens).
    static func tokenIds(count: Int, offset: Int, vocab: Int) -> [Int32] {
        (0..<count).map { i in Int32(100 + ((offset + i) * 7919) % max(vocab - 200, 1)) }
    }

    func run() throws {
        guard let wt = WeightType(rawValue: weightType) else { throw ValidationError("unknown --weight-type") }
        guard promptTokens >= 1, genTokens >= 1, rounds >= 1 else { throw ValidationError("counts must be >= 1") }
        guard let kv = KVCacheType(rawValue: kvType) else { throw ValidationError("--kv-type must be f32 or f16") }
        var mp = ModelParams()
        mp.weightType = wt
        mp.repack = !noRepack
        let m = try Model(path: model, params: mp)
        var sp = SessionParams()
        sp.threads = threads
        sp.contextSize = promptTokens + genTokens + 1
        sp.kvType = kv
        sp.sampling = .greedy
        if sessions > 1 { return try runSessions(m, sp) }
        let s = try Session(model: m, params: sp)
        try routing.apply(to: s)
        let vocab = m.config.nVocab
        let prompt = Self.tokenIds(count: promptTokens, offset: 0, vocab: vocab)
        let gen = Self.tokenIds(count: genTokens, offset: promptTokens, vocab: vocab)

        // warm-up: touch every weight once
        s.reset()
        try s.evaluate(Array(prompt.prefix(8)))
        // The host's memory bandwidth drifts by tens of per cent within minutes, so the probe runs
        // right before and right after each round's decode; the round's bandwidth is the better
        // of the two, and the % of roofline is the median of the rounds' own ratios.
        let probe = noProbe ? nil : akk_bw_probe_create(1 << 30, Int32(s.threads))
        defer { akk_bw_probe_free(probe) }
        if !noProbe && probe == nil { throw ValidationError("no memory for the 1 GiB bandwidth probe (use --no-probe)") }
        var prefill: [Double] = [], decode: [Double] = [], bandwidth: [Double] = []
        var kSeen = 0.0
        let clock = phases ? PhaseClock() : nil
        for _ in 0..<rounds {
            s.reset()
            let t0 = now()
            try s.evaluate(prompt)
            let t1 = now()
            let before = akk_bw_probe_run(probe, 3)
            s.resetStats()
            s.phaseClock = clock
            let t2 = now()
            for t in gen { try s.evaluate([t]) }
            let t3 = now()
            s.phaseClock = nil
            bandwidth.append(max(before, akk_bw_probe_run(probe, 3)))
            prefill.append(Double(promptTokens) / (t1 - t0))
            decode.append(Double(genTokens) / (t3 - t2))
            kSeen = s.stats.meanK
        }
        let pre = median(prefill), dec = median(decode)
        let k = m.config.isMoE ? kSeen : 0
        // what a token reads, step by step, at the mean k, the KV cache at mid-decode
        let stepBytes = m.bytesPerStep(k: m.config.isMoE ? k : nil, position: promptTokens + genTokens / 2, kvType: kv)
        let bytes = stepBytes.reduce(0, +)
        let bw = noProbe ? 0 : median(bandwidth)
        let roof = bw > 0 ? bw * 1e9 / bytes : 0
        let roofPercent = noProbe ? 0 : median(zip(decode, bandwidth).map { 100 * $0 * bytes / ($1 * 1e9) })
        let st = s.stats
        print("model: \(model)")
        print("  \(m.config.arch), \(m.config.nLayer) layers, d \(m.config.nEmbd), experts \(m.config.nExpert) (native K \(m.config.nExpertUsed)), threads \(s.threads), routing \(s.routing.policy.rawValue)\(s.routing.budget.map { ", budget \($0)" } ?? ""), \(CPUInfo.summary)")
        print("| prefill tok/s | decode tok/s | mean k | expert FLOPs | MB/token | read GB/s | roofline tok/s | % of roofline |")
        print("|---|---|---|---|---|---|---|---|")
        print("| \(fmt(pre, 1)) | \(fmt(dec, 2)) | \(fmt(k, 2)) | \(fmt(100 * st.expertFraction, 1))% | \(fmt(bytes / 1e6, 1)) | \(fmt(bw, 1)) | \(fmt(roof, 2)) | \(roof > 0 ? fmt(roofPercent, 1) : "-") |")
        var phaseTable: [String: Double] = [:]
        if let clock {
            // all rounds' decoded tokens; the rest of a token's time (sampling, the session's
            // bookkeeping) is what the steps do not cover
            let total = clock.seconds.reduce(0, +) * 1e6 / Double(max(clock.tokens, 1))
            let wall = 1e6 * decode.map { 1 / $0 }.reduce(0, +) / Double(decode.count)  // µs per decoded token
            print("\n| decode step (\(clock.tokens) tokens) | µs/token | % | MB/token | GB/s | % of probe |")
            print("|---|---|---|---|---|---|")
            for p in PhaseClock.Phase.allCases where clock.seconds[p.rawValue] > 0 {
                let us = clock.microsPerToken(p), mb = stepBytes[p.rawValue] / 1e6
                let gbs = mb > 0 ? mb * 1e6 / (us * 1e3) : 0
                phaseTable["\(p)"] = us
                print("| \(p.label) | \(fmt(us, 1)) | \(fmt(100 * us / wall, 1)) | \(mb > 0 ? fmt(mb, 2) : "-") | \(mb > 0 ? fmt(gbs, 1) : "-") | \(mb > 0 && bw > 0 ? fmt(100 * gbs / bw, 1) : "-") |")
            }
            print("| (outside the steps) | \(fmt(wall - total, 1)) | \(fmt(100 * (wall - total) / wall, 1)) | | | |")
        }
        if let json {
            let obj: [String: Any] = [
                "model": model, "threads": s.threads, "cpu_level": CPUInfo.level, "routing": s.routing.policy.rawValue,
                "budget": s.routing.budget.map { Double($0) } ?? NSNull(), "k": k,
                "prompt_tokens": promptTokens, "gen_tokens": genTokens, "rounds": rounds,
                "prefill_tps": pre, "decode_tps": dec, "prefill_runs": prefill, "decode_runs": decode,
                "expert_fraction": st.expertFraction, "bytes_per_token": bytes,
                "bandwidth_gbs": bw, "roofline_tps": roof, "bandwidth_runs": bandwidth,
                "roofline_percent": roofPercent, "phases_us_per_token": phases ? phaseTable : NSNull(),
                "kv_cache_bytes": m.kvBytesPerToken(position: sp.contextSize - 1, kvType: kv),
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}

extension Bench {
    /// `--sessions N`: N sessions prefill their own prompts (one at a time), then decode
    /// `genTokens` steps in which ONE forward pass advances all N (Session.evaluate(batch:)).
    /// Reports aggregate and per-stream decode tokens/s (medians over the rounds).
    func runSessions(_ m: Model, _ sp: SessionParams) throws {
        guard sessions <= 512 else { throw ValidationError("--sessions must be at most 512") }
        let all = try (0..<sessions).map { _ in try Session(model: m, params: sp) }
        for s in all { try routing.apply(to: s) }
        let vocab = m.config.nVocab
        // stream i: its own prompt and decode tokens (stream 0's are the single-session bench's)
        let prompts = (0..<sessions).map { Self.tokenIds(count: promptTokens, offset: $0 * 7, vocab: vocab) }
        let gens = (0..<sessions).map { Self.tokenIds(count: genTokens, offset: promptTokens + $0 * 7, vocab: vocab) }
        try all[0].evaluate(Array(prompts[0].prefix(8)))   // warm-up: touch every weight once
        // each round also decodes stream 0 alone right before, so the speed-up compares runs
        // made under the same load (the host may be shared)
        var decode: [Double] = [], alone: [Double] = []
        for _ in 0..<rounds {
            all[0].reset()
            try all[0].evaluate(prompts[0])
            let a0 = now()
            for t in gens[0] { try all[0].evaluate([t]) }
            alone.append(Double(genTokens) / (now() - a0))
            for (s, p) in zip(all, prompts) {
                s.reset()
                try s.evaluate(p)
                s.resetStats()
            }
            let t0 = now()
            for t in 0..<genTokens { try Session.evaluate(batch: all.indices.map { (all[$0], [gens[$0][t]]) }) }
            decode.append(Double(sessions * genTokens) / (now() - t0))
        }
        let speedup = median(zip(decode, alone).map { $0 / $1 })
        let agg = median(decode), k = m.config.isMoE ? all.map { $0.stats.meanK }.reduce(0, +) / Double(sessions) : 0
        print("model: \(model)")
        print("  \(m.config.arch), \(m.config.nLayer) layers, d \(m.config.nEmbd), experts \(m.config.nExpert) (native K \(m.config.nExpertUsed)), threads \(all[0].threads), routing \(all[0].routing.policy.rawValue), sessions \(sessions)")
        print("| sessions | aggregate decode tok/s | per-stream decode tok/s | one session alone tok/s | aggregate / alone | mean k |")
        print("|---|---|---|---|---|---|")
        print("| \(sessions) | \(fmt(agg, 2)) | \(fmt(agg / Double(sessions), 2)) | \(fmt(median(alone), 2)) | \(fmt(speedup, 2)) | \(fmt(k, 2)) |")
        if let json {
            let obj: [String: Any] = [
                "model": model, "threads": all[0].threads, "routing": all[0].routing.policy.rawValue,
                "sessions": sessions, "prompt_tokens": promptTokens, "gen_tokens": genTokens, "rounds": rounds,
                "decode_tps": agg, "decode_tps_per_stream": agg / Double(sessions), "decode_runs": decode, "k": k,
                "alone_runs": alone, "speedup_vs_alone": speedup,
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }
}

func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
