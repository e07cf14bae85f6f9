// adak_session_*: creation, settings, evaluation, logits, sampling and generation.
import AdaK
import Glibc

/// The object behind an `adak_session *`: the core session plus the copy of the logits whose
/// pointer adak_session_logits hands out (valid until the session changes).
final class SessionBox {
    let session: Session
    /// Host-visible copy of the logits, made on demand; nil when it would be stale.
    var logitsCopy: UnsafeMutableBufferPointer<Float>?

    init(session: Session) { self.session = session }

    /// True while adak_session_generate runs the host's callback: calls that change the
    /// session are refused then, instead of re-entering the core mid-step.
    var inCallback = false

    /// Whether an evaluation has left logits to read or sample from.
    var hasLogits: Bool { session.logitRows > 0 }

    /// Called by every operation that changes the logits.
    func invalidateLogits() {
        logitsCopy?.deallocate()
        logitsCopy = nil
    }

    deinit { logitsCopy?.deallocate() }
}

func sessionBox(_ pointer: OpaquePointer?) -> SessionBox? {
    lookup(UnsafeRawPointer(pointer), .session, as: SessionBox.self)
}

/// The session behind a handle for a call that changes it, or nil after recording why not.
func mutableSessionBox(_ pointer: OpaquePointer?, _ function: String) -> SessionBox? {
    guard let box = sessionBox(pointer) else {
        invalid(function, "session is NULL or not a live adak_session")
        return nil
    }
    guard !box.inCallback else {
        invalid(function, "called from the token callback of adak_session_generate on the same session")
        return nil
    }
    return box
}

// Layout of adak_session_params (append-only): uint32 size @0, int32 n_ctx @4,
// int32 n_threads @8, int32 n_batch @12, uint64 seed @16; since 0.4 int32 kv_type @24.
let sessionParamsMinSize = 24
let sessionParamsKVTypeEnd = 28
let sessionParamsMaxSize = 4096
let defaultBatch = 512

@_cdecl("adak_session_params_init")
public func adak_session_params_init(_ params: UnsafeMutableRawPointer?, _ size: Int) -> Int32 {
    let f = "adak_session_params_init"
    guard let params else { return invalid(f, "params is NULL") }
    guard size >= sessionParamsMinSize, size <= sessionParamsMaxSize else {
        return invalid(f, "size \(size) is not a valid sizeof(adak_session_params)")
    }
    let defaults = SessionParams()
    params.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    params.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
    params.storeBytes(of: Int32(clamping: defaults.contextSize), toByteOffset: 4, as: Int32.self)
    params.storeBytes(of: Int32(clamping: defaults.threads), toByteOffset: 8, as: Int32.self)
    params.storeBytes(of: Int32(clamping: defaults.batchSize), toByteOffset: 12, as: Int32.self)
    params.storeBytes(of: defaults.sampling.seed, toByteOffset: 16, as: UInt64.self)
    return Status.ok
}

@_cdecl("adak_session_create")
public func adak_session_create(_ model: OpaquePointer?, _ params: UnsafeRawPointer?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_session_create"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    var p = SessionParams()
    if let params {
        let size = Int(params.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        guard size >= sessionParamsMinSize, size <= sessionParamsMaxSize else {
            return invalid(f, "params->size \(size) is not a valid sizeof(adak_session_params); use adak_session_params_init")
        }
        let nCtx = Int(params.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        let nThreads = Int(params.loadUnaligned(fromByteOffset: 8, as: Int32.self))
        let nBatch = Int(params.loadUnaligned(fromByteOffset: 12, as: Int32.self))
        // Upper bounds are the core's (it reports them); negative values are caught here.
        guard nCtx >= 0 else { return invalid(f, "n_ctx \(nCtx) is negative") }
        guard nThreads >= 0 else { return invalid(f, "n_threads \(nThreads) is negative") }
        guard nBatch >= 0 else { return invalid(f, "n_batch \(nBatch) is negative") }
        p.contextSize = nCtx
        p.threads = nThreads
        p.batchSize = nBatch == 0 ? defaultBatch : nBatch
        p.sampling.seed = params.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        if size >= sessionParamsKVTypeEnd {
            switch params.loadUnaligned(fromByteOffset: 24, as: Int32.self) {
            case 0: p.kvType = .f32
            case 1: p.kvType = .f16
            case let other: return invalid(f, "kv_type \(other) is not an adak_kv_type")
            }
        }
    }
    do {
        let session = try Session(model: box.model, params: p)
        out.pointee = OpaquePointer(register(SessionBox(session: session), as: .session))
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_free")
public func adak_session_free(_ session: OpaquePointer?) {
    unregister(UnsafeRawPointer(session), .session, as: SessionBox.self)
}

@_cdecl("adak_session_reset")
public func adak_session_reset(_ session: OpaquePointer?) -> Int32 {
    guard let box = mutableSessionBox(session, "adak_session_reset") else { return Status.invalidArgument }
    box.session.reset()
    box.invalidateLogits()
    return Status.ok
}

@_cdecl("adak_session_position")
public func adak_session_position(_ session: OpaquePointer?) -> Int64 {
    guard let box = sessionBox(session) else {
        return Int64(invalid("adak_session_position", "session is NULL or not a live adak_session"))
    }
    return Int64(box.session.position)
}

@_cdecl("adak_session_set_float")
public func adak_session_set_float(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Double) -> Int32 {
    let f = "adak_session_set_float"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard value.isFinite, abs(value) <= Double(Float.greatestFiniteMagnitude) else {
        return invalid(f, "\(name): value \(value) is not a finite float")
    }
    var s = box.session.sampling
    switch name {
    case "temperature": s.temperature = Float(value)
    case "top_p": s.topP = Float(value)
    case "min_p": s.minP = Float(value)
    case "repeat_penalty": s.repeatPenalty = Float(value)
    default: return setRoutingFloat(box, name, value, f) ?? invalid(f, "unknown float key \"\(name)\"")
    }
    return apply(s, to: box, function: f, key: name)
}

/// Installs validated sampling settings; on a validation error nothing changes.
func apply(_ s: SamplingParams, to box: SessionBox, function: String, key: String) -> Int32 {
    do {
        try s.validate()
    } catch {
        return fail(error, in: "\(function) \"\(key)\"")
    }
    box.session.sampling = s
    return Status.ok
}

@_cdecl("adak_session_get_float")
public func adak_session_get_float(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                   _ value: UnsafeMutablePointer<Double>?) -> Int32 {
    let f = "adak_session_get_float"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value else { return invalid(f, "value is NULL") }
    let s = box.session.sampling
    switch name {
    case "temperature": value.pointee = Double(s.temperature)
    case "top_p": value.pointee = Double(s.topP)
    case "min_p": value.pointee = Double(s.minP)
    case "repeat_penalty": value.pointee = Double(s.repeatPenalty)
    default:
        guard let v = getRoutingFloat(box, name) else { return invalid(f, "unknown float key \"\(name)\"") }
        value.pointee = v
    }
    return Status.ok
}

@_cdecl("adak_session_set_int")
public func adak_session_set_int(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Int64) -> Int32 {
    let f = "adak_session_set_int"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    var s = box.session.sampling
    switch name {
    case "top_k":
        guard value >= 0, value <= Int64(Int32.max) else { return invalid(f, "top_k \(value) is not in [0, \(Int32.max)]") }
        s.topK = Int(value)
    case "repeat_last_n":
        guard value >= 0, value <= Int64(Int32.max) else { return invalid(f, "repeat_last_n \(value) is not in [0, \(Int32.max)]") }
        s.repeatLastN = Int(value)
    case "seed":
        guard value >= 0 else { return invalid(f, "seed \(value) is negative") }
        s.seed = UInt64(value)
    case "position", "n_ctx", "n_threads", "n_batch", "logit_rows":
        return invalid(f, "\"\(name)\" is read-only")
    default:
        return setRoutingInt(box, name, value, f) ?? invalid(f, "unknown integer key \"\(name)\"")
    }
    return apply(s, to: box, function: f, key: name)
}

@_cdecl("adak_session_get_int")
public func adak_session_get_int(_ session: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                 _ value: UnsafeMutablePointer<Int64>?) -> Int32 {
    let f = "adak_session_get_int"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let key, let name = hostString(key) else { return invalid(f, "key is NULL or not UTF-8") }
    guard let value else { return invalid(f, "value is NULL") }
    let s = box.session.sampling
    let result: Int64
    switch name {
    case "top_k": result = Int64(s.topK)
    case "repeat_last_n": result = Int64(s.repeatLastN)
    case "seed": result = Int64(bitPattern: s.seed)
    case "position": result = Int64(box.session.position)
    case "n_ctx": result = Int64(box.session.contextSize)
    case "n_threads": result = Int64(box.session.threads)
    case "n_batch": result = Int64(box.session.batchSize)
    case "logit_rows": result = Int64(box.session.logitRows)
    default:
        guard let v = getRoutingInt(box, name) else { return invalid(f, "unknown integer key \"\(name)\"") }
        result = v
    }
    value.pointee = result
    return Status.ok
}

@_cdecl("adak_session_evaluate")
public func adak_session_evaluate(_ session: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                                  _ flags: UInt32) -> Int32 {
    let f = "adak_session_evaluate"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let tokens else { return invalid(f, "tokens is NULL") }
    guard n > 0 else { return invalid(f, "n must be at least 1") }
    guard flags & ~UInt32(1) == 0 else { return invalid(f, "unknown flags 0x\(String(flags, radix: 16))") }
    let ids = Array(UnsafeBufferPointer(start: tokens, count: n))
    let nVocab = box.session.model.config.nVocab
    for (i, id) in ids.enumerated() where id < 0 || Int(id) >= nVocab {
        return invalid(f, "tokens[\(i)] = \(id) is not in [0, \(nVocab))")
    }
    do {
        try box.session.evaluate(ids, allLogits: flags & 1 != 0)
    } catch {
        return fail(error, in: f)
    }
    box.invalidateLogits()
    return Status.ok
}

@_cdecl("adak_session_logits")
public func adak_session_logits(_ session: OpaquePointer?, _ rows: UnsafeMutablePointer<Int>?,
                                _ vocab: UnsafeMutablePointer<Int>?) -> UnsafePointer<Float>? {
    let f = "adak_session_logits"
    rows?.pointee = 0
    guard let box = sessionBox(session) else {
        invalid(f, "session is NULL or not a live adak_session")
        return nil
    }
    let nVocab = box.session.model.config.nVocab
    vocab?.pointee = nVocab
    guard box.hasLogits else {
        invalid(f, "nothing has been evaluated since the session was created or reset")
        return nil
    }
    let nRows = box.session.logitRows
    if box.logitsCopy == nil {
        let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(nRows * nVocab, 1))
        copy.initialize(repeating: 0)
        box.session.withLogits { source in
            let n = min(source.count, copy.count)
            if n > 0, let s = source.baseAddress, let d = copy.baseAddress {
                d.update(from: s, count: n)
            }
        }
        box.logitsCopy = copy
    }
    rows?.pointee = nRows
    return box.logitsCopy.flatMap { UnsafePointer($0.baseAddress) }
}

@_cdecl("adak_session_copy_logits")
public func adak_session_copy_logits(_ session: OpaquePointer?, _ row: Int, _ out: UnsafeMutablePointer<Float>?,
                                     _ capacity: Int) -> Int32 {
    let f = "adak_session_copy_logits"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let out else { return invalid(f, "out is NULL") }
    guard box.hasLogits else { return invalid(f, "nothing has been evaluated since the session was created or reset") }
    let nVocab = box.session.model.config.nVocab
    let nRows = box.session.logitRows
    guard row >= 0, row < nRows else { return invalid(f, "row \(row) is not in [0, \(nRows))") }
    guard capacity >= nVocab else {
        return fail(Status.bufferTooSmall, "\(f): a row has \(nVocab) logits, the buffer holds \(capacity)")
    }
    let copied = box.session.withLogits { source -> Bool in
        guard source.count >= (row + 1) * nVocab, let base = source.baseAddress else { return false }
        out.update(from: base + row * nVocab, count: nVocab)
        return true
    }
    return copied ? Status.ok : fail(Status.internal, "\(f): the session holds fewer logits than it reports")
}

@_cdecl("adak_session_sample")
public func adak_session_sample(_ session: OpaquePointer?, _ token: UnsafeMutablePointer<Int32>?) -> Int32 {
    let f = "adak_session_sample"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let token else { return invalid(f, "token is NULL") }
    guard box.hasLogits else {
        return invalid(f, "nothing has been evaluated since the session was created or reset")
    }
    token.pointee = box.session.sample()
    return Status.ok
}

public typealias adak_token_callback = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?, Int) -> Int32

@_cdecl("adak_session_generate")
public func adak_session_generate(_ session: OpaquePointer?, _ prompt: UnsafePointer<Int32>?, _ nPrompt: Int,
                                  _ maxTokens: Int32, _ callback: adak_token_callback?,
                                  _ userData: UnsafeMutableRawPointer?,
                                  _ nGenerated: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_generate"
    nGenerated?.pointee = 0
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard isValidCount(nPrompt) else { return invalid(f, "n_prompt is out of range") }
    guard prompt != nil || nPrompt == 0 else { return invalid(f, "prompt is NULL but n_prompt is \(nPrompt)") }
    guard maxTokens >= 0 else { return invalid(f, "max_tokens \(maxTokens) is negative") }
    var ids: [Int32] = []
    if let prompt, nPrompt > 0 { ids = Array(UnsafeBufferPointer(start: prompt, count: nPrompt)) }
    let nVocab = box.session.model.config.nVocab
    for (i, id) in ids.enumerated() where id < 0 || Int(id) >= nVocab {
        return invalid(f, "prompt[\(i)] = \(id) is not in [0, \(nVocab))")
    }
    guard !ids.isEmpty || box.hasLogits else {
        return invalid(f, "the prompt is empty and nothing has been evaluated since the session was created or reset")
    }
    var count = 0
    defer {
        nGenerated?.pointee = count
        box.invalidateLogits()
    }
    do {
        _ = try box.session.generate(prompt: ids, maxTokens: Int(maxTokens)) { id, piece in
            count += 1
            guard let callback else { return true }
            box.inCallback = true
            defer { box.inCallback = false }
            let stop = piece.withUnsafeBufferPointer { bytes -> Int32 in
                // Never NULL, also for an empty piece.
                let empty: StaticString = ""
                let base = UnsafeRawPointer(bytes.baseAddress) ?? UnsafeRawPointer(empty.utf8Start)
                return callback(userData, id, base.assumingMemoryBound(to: CChar.self), bytes.count)
            }
            return stop == 0
        }
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}
