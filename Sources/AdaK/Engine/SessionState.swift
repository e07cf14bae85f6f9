// A session's state beyond its settings: saving and loading it (the KV cache of the context,
// the tokens, the last row of logits, the sampler's random stream and history, the budget
// controller), rewinding the context to a position, and copying a session.
//
// Saved layout (little-endian): "ADAKSTAT", u32 version, u64 model fingerprint, u32 n_layer,
// u32 kv_dim, u32 kv element bytes, u32 n_vocab, u32 position, i32 pending token (-1: none),
// u32 logit rows (0 or 1), position × i32 tokens, [n_vocab f32 logits], 4 × u64 rng state,
// u32 history count + i32 history, u32 MoE slots + slots × (f32 knob, f32 dither), then per layer
// K (position × kv_dim elements) and V (kv_dim rows × position elements), then u64 FNV-1a of
// everything before it. Settings (sampling, routing, stop strings, bias) are not part of it.

#if canImport(Glibc)
import Glibc
#endif

extension Model {
    /// Identifies the weights a saved session state belongs to: FNV-1a over the architecture's
    /// sizes and every tensor's name, shape, type and first and last 64 bytes.
    public var stateFingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) { h ^= v; h = h &* 0x0000_0100_0000_01b3 }
        let c = config
        for v in [c.nVocab, c.nEmbd, c.nLayer, c.nHead, c.nHeadKV, c.headDim, c.nExpert, c.nExpertUsed] { mix(UInt64(bitPattern: Int64(v))) }
        for t in gguf.tensors {
            for b in t.name.utf8 { mix(UInt64(b)) }
            for d in t.dims { mix(UInt64(d)) }
            mix(UInt64(t.type))
            let p = gguf.data(t)
            let n = min(64, t.byteCount)
            for i in 0..<n { mix(UInt64((p + i).load(as: UInt8.self))) }
            for i in (t.byteCount - n)..<t.byteCount { mix(UInt64((p + i).load(as: UInt8.self))) }
        }
        return h
    }
}

extension ForwardState {
    var kvDim: Int { config.nHeadKV * config.headDim }

    /// Calls `body` with each stretch of cache bytes the first `positions` tokens occupy, in the
    /// saved order: per layer the K rows, then each V row's first `positions` elements.
    func forEachKVRange(positions: Int, _ body: (UnsafeMutableRawPointer, Int) throws -> Void) rethrows {
        let e = kvType.bytes
        for l in 0..<config.nLayer {
            try body(UnsafeMutableRawPointer(kCache(l)), positions * kvDim * e)
            let v = UnsafeMutableRawPointer(vCache(l))
            for r in 0..<kvDim { try body(v + r * nCtx * e, positions * e) }
        }
    }
}

/// Appends little-endian values to a byte array.
struct StateWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func raw(_ p: UnsafeRawPointer, _ n: Int) { bytes += UnsafeRawBufferPointer(start: p, count: n) }
}

/// Reads what `StateWriter` wrote; every read is bounds-checked.
struct StateReader {
    let buf: UnsafeRawBufferPointer
    var at = 0
    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= buf.count - at else { throw AdaKError.format("session state is truncated") }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: buf[at..<at + n])
    }
    mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }
    mutating func i32() throws -> Int32 { Int32(bitPattern: try u32()) }
    mutating func f32() throws -> Float { Float(bitPattern: try u32()) }
    mutating func count(max: Int, _ what: String) throws -> Int {
        let n = Int(try u32())
        guard n <= max else { throw AdaKError.format("session state: \(what) \(n) exceeds \(max)") }
        return n
    }
}

func fnv1a(_ b: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for x in b { h ^= UInt64(x); h = h &* 0x0000_0100_0000_01b3 }
    return h
}

extension Session {
    static let stateMagic = Array("ADAKSTAT".utf8)
    static let stateVersion: UInt32 = 1

    /// The session's state as bytes (see the layout at the top of this file).
    public func saveState() -> [UInt8] {
        let c = model.config
        var w = StateWriter()
        w.bytes = Self.stateMagic
        w.u32(Self.stateVersion)
        w.u64(model.stateFingerprint)
        w.u32(UInt32(c.nLayer))
        w.u32(UInt32(state.kvDim))
        w.u32(UInt32(kvType.bytes))
        w.u32(UInt32(c.nVocab))
        w.u32(UInt32(position))
        w.i32(pending ?? -1)
        w.u32(logitRows > 0 ? 1 : 0)
        for t in tokens { w.i32(t) }
        if logitRows > 0 { w.raw(state.logits.p + (logitRows - 1) * c.nVocab, c.nVocab * 4) }
        for s in sampler.rngState { w.u64(s) }
        w.u32(UInt32(sampler.history.count))
        for t in sampler.history { w.i32(t) }
        w.u32(UInt32(router.knob.count))
        for i in router.knob.indices { w.f32(router.knob[i]); w.f32(router.dither[i]) }
        state.forEachKVRange(positions: position) { p, n in w.raw(p, n) }
        let sum = w.bytes.withUnsafeBytes { fnv1a($0) }
        w.u64(sum)
        return w.bytes
    }

    /// Restores a state from `saveState` into this session (any context size that holds it).
    /// Throws, leaving the session unchanged, when the bytes are damaged or belong to another
    /// model, format version, KV cache type or size.
    public func loadState(_ bytes: UnsafeRawBufferPointer) throws {
        let c = model.config
        guard bytes.count >= Self.stateMagic.count + 12,
              bytes.prefix(Self.stateMagic.count).elementsEqual(Self.stateMagic) else {
            throw AdaKError.format("not a libadak session state")
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - 8)])
        let sum = UInt64(littleEndian: (bytes.baseAddress! + (bytes.count - 8)).loadUnaligned(as: UInt64.self))
        guard fnv1a(body) == sum else { throw AdaKError.format("session state is damaged (checksum mismatch)") }
        var r = StateReader(buf: body, at: Self.stateMagic.count)
        let version = try r.u32()
        guard version == Self.stateVersion else {
            throw AdaKError.unsupported("session state version \(version) (this library reads \(Self.stateVersion))")
        }
        guard try r.u64() == model.stateFingerprint else {
            throw AdaKError.invalidArgument("session state belongs to another model")
        }
        let nLayer = Int(try r.u32()), kvDim = Int(try r.u32()), e = Int(try r.u32()), nVocab = Int(try r.u32())
        guard nLayer == c.nLayer, kvDim == state.kvDim, nVocab == c.nVocab else {
            throw AdaKError.invalidArgument("session state sizes (layers \(nLayer), kv \(kvDim), vocab \(nVocab)) do not fit this model")
        }
        guard e == kvType.bytes else {
            throw AdaKError.invalidArgument("session state has a \(e == 2 ? "f16" : "f32") KV cache, this session \(kvType.rawValue)")
        }
        let pos = try r.count(max: contextSize, "position (context size)")
        let pend = try r.i32()
        guard pend >= -1, Int(pend) < nVocab else { throw AdaKError.format("session state: bad pending token \(pend)") }
        let rows = try r.count(max: 1, "logit rows")
        var toks = [Int32]()
        toks.reserveCapacity(pos)
        for _ in 0..<pos {
            let t = try r.i32()
            guard t >= 0, Int(t) < nVocab else { throw AdaKError.format("session state: token \(t) out of range") }
            toks.append(t)
        }
        let logits = rows > 0 ? try r.take(nVocab * 4) : nil
        let rng = [try r.u64(), try r.u64(), try r.u64(), try r.u64()]
        let nHist = try r.count(max: 1 << 22, "history")
        var hist = [Int32]()
        for _ in 0..<nHist { hist.append(try r.i32()) }
        let slots = try r.count(max: router.knob.count, "MoE slots")
        guard slots == router.knob.count else { throw AdaKError.format("session state: \(slots) MoE slots, the model has \(router.knob.count)") }
        var knob = [Float](), dither = [Float]()
        for _ in 0..<slots { knob.append(try r.f32()); dither.append(try r.f32()) }
        let kvStart = r.at
        var kvBytes = 0
        state.forEachKVRange(positions: pos) { _, n in kvBytes += n }
        guard body.count - kvStart == kvBytes else { throw AdaKError.format("session state: KV cache size mismatch") }
        // everything checked: apply
        try state.reserveLogits(rows: 1)
        state.forEachKVRange(positions: pos) { p, n in
            p.copyMemory(from: body.baseAddress! + r.at, byteCount: n)
            r.at += n
        }
        if let logits { UnsafeMutableRawPointer(state.logits.p).copyMemory(from: logits.baseAddress!, byteCount: nVocab * 4) }
        position = pos
        tokens = toks
        pending = pend >= 0 ? pend : nil
        logitRows = rows
        sampler.restore(rngState: rng, history: hist)
        router.knob = knob
        router.dither = dither
        router.calibrated = pos > 0
        stopReason = nil
    }

    public func loadState(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try loadState($0) }
    }

    /// Writes `saveState()` to `path` (replaced).
    public func saveState(toFile path: String) throws {
        let b = saveState()
        guard let f = fopen(path, "wb") else { throw AdaKError.io("cannot write \(path): \(String(cString: strerror(errno)))") }
        let n = b.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let closed = fclose(f)
        guard n == b.count, closed == 0 else { throw AdaKError.io("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Loads a state written by `saveState(toFile:)`.
    public func loadState(fromFile path: String) throws {
        let f = try MappedFile(path: path)
        try loadState(UnsafeRawBufferPointer(start: f.base, count: f.count))
    }

    /// Rewinds the context to its first `newPosition` tokens (0...position): what follows is
    /// forgotten, as is a generated token not yet evaluated, and there are no logits until the
    /// next `evaluate`. Evaluating after it gives the logits a fresh session fed the same
    /// evaluate calls would (bit-identical; the budget controller and the sampler's random
    /// stream carry on).
    public func truncate(to newPosition: Int) throws {
        guard newPosition >= 0, newPosition <= position else {
            throw AdaKError.invalidArgument("cannot truncate to \(newPosition): the context holds \(position) tokens")
        }
        let dropped = position - newPosition
        restartChoices()
        position = newPosition
        tokens.removeLast(dropped)
        pending = nil
        logitRows = 0
        stopReason = nil
        sampler.restore(rngState: sampler.rngState,
                        history: Array(sampler.history.dropLast(min(dropped, sampler.history.count))))
    }

    /// An independent copy: the same model, settings, context, logits, sampler and routing
    /// state (not the logits hook, which belongs to its caller). Changing either afterwards does
    /// not change the other.
    public func copy() throws -> Session {
        var p = SessionParams()
        p.contextSize = contextSize
        p.threads = threads
        p.batchSize = batchSize
        p.kvType = kvType
        p.sampling = sampling
        p.routing = routing
        let s = try Session(model: model, params: p)
        if let a = allocator { try s.setAllocator(a) }
        s.router.config = router.config
        s.router.knob = router.knob
        s.router.dither = router.dither
        s.router.calibrated = router.calibrated
        s.router.stats = router.stats
        s.sampler = sampler
        s.stopStrings = stopStrings
        s.logitBias = logitBias
        try s.state.reserveLogits(rows: max(logitRows, 1))
        s.state.logits.p.update(from: state.logits.p, count: logitRows * model.config.nVocab)
        var dst: [(UnsafeMutableRawPointer, Int)] = []
        s.state.forEachKVRange(positions: position) { p, n in dst.append((p, n)) }
        var i = 0
        state.forEachKVRange(positions: position) { p, n in
            dst[i].0.copyMemory(from: p, byteCount: n)
            i += 1
        }
        s.position = position
        s.tokens = tokens
        s.pending = pending
        s.logitRows = logitRows
        s.stopReason = stopReason
        return s
    }
}
