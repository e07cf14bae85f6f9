// adak_session_*: creation, settings, evaluation, logits, sampling and generation.
import AdaK
import CAdaK
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

extension adak_session_params: SizeTagged {
    /// 0.1's struct ended where 0.4's kv_type starts.
    static let firstVersionSize = MemoryLayout<adak_session_params>.offset(of: \.kv_type)!

    static var defaults: adak_session_params {
        let d = SessionParams()
        var p = adak_session_params()
        p.size = UInt32(MemoryLayout<adak_session_params>.size)
        p.n_ctx = Int32(clamping: d.contextSize)
        p.n_threads = Int32(clamping: d.threads)
        p.n_batch = Int32(clamping: d.batchSize)
        p.seed = d.sampling.seed
        p.kv_type = Int32(ADAK_KV_F32.rawValue)
        return p
    }
}

@_cdecl("adak_session_params_init")
public func adak_session_params_init(_ params: UnsafeMutablePointer<adak_session_params>?, _ size: Int) -> Int32 {
    initSized(params, size: size, defaults: .defaults, function: "adak_session_params_init")
}

@_cdecl("adak_session_create")
public func adak_session_create(_ model: OpaquePointer?, _ params: UnsafePointer<adak_session_params>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_session_create"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    var p = SessionParams()
    if let params {
        guard let c = readSized(params, defaults: .defaults, function: f, name: "params") else { return Status.invalidArgument }
        p.contextSize = Int(c.n_ctx)
        p.threads = Int(c.n_threads)
        p.batchSize = c.n_batch == 0 ? SessionParams().batchSize : Int(c.n_batch)
        p.sampling.seed = c.seed
        switch UInt32(bitPattern: c.kv_type) {
        case ADAK_KV_F32.rawValue: p.kvType = .f32
        case ADAK_KV_F16.rawValue: p.kvType = .f16
        default: return invalid(f, "kv_type \(c.kv_type) is not an adak_kv_type")
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

// MARK: - Sampling settings

extension adak_sampling_params: SizeTagged {
    static let firstVersionSize = MemoryLayout<adak_sampling_params>.size

    init(_ s: SamplingParams) {
        self.init()
        size = UInt32(MemoryLayout<adak_sampling_params>.size)
        temperature = s.temperature
        top_k = Int32(clamping: s.topK)
        top_p = s.topP
        min_p = s.minP
        repeat_penalty = s.repeatPenalty
        repeat_last_n = Int32(clamping: s.repeatLastN)
        seed = s.seed
    }

    var core: SamplingParams {
        var s = SamplingParams()
        s.temperature = temperature
        s.topK = Int(top_k)
        s.topP = top_p
        s.minP = min_p
        s.repeatPenalty = repeat_penalty
        s.repeatLastN = Int(repeat_last_n)
        s.seed = seed
        return s
    }
}

@_cdecl("adak_sampling_params_init")
public func adak_sampling_params_init(_ params: UnsafeMutablePointer<adak_sampling_params>?, _ size: Int) -> Int32 {
    initSized(params, size: size, defaults: adak_sampling_params(SamplingParams()), function: "adak_sampling_params_init")
}

@_cdecl("adak_session_set_sampling")
public func adak_session_set_sampling(_ session: OpaquePointer?, _ params: UnsafePointer<adak_sampling_params>?) -> Int32 {
    setSessionStruct(session, params, defaults: adak_sampling_params(SamplingParams()),
                     function: "adak_session_set_sampling") { box, p in try box.session.setSampling(p.core) }
}

@_cdecl("adak_session_get_sampling")
public func adak_session_get_sampling(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<adak_sampling_params>?) -> Int32 {
    getSessionStruct(session, out, function: "adak_session_get_sampling") { adak_sampling_params($0.session.sampling) }
}

/// An adak_session_set_* of a size-tagged struct: the fields the caller's size covers (defaults
/// for the rest), converted and applied by `apply`, which validates through the core and changes
/// nothing when it throws.
func setSessionStruct<T: SizeTagged>(_ session: OpaquePointer?, _ params: UnsafePointer<T>?, defaults: T,
                                     function f: String, apply: (SessionBox, T) throws -> Void) -> Int32 {
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let params else { return invalid(f, "params is NULL") }
    guard let p = readSized(params, defaults: defaults, function: f, name: "params") else { return Status.invalidArgument }
    do {
        try apply(box, p)
    } catch {
        return fail(error, in: f)
    }
    return Status.ok
}

/// An adak_session_get_* of a size-tagged struct: `value` written as far as out->size says.
func getSessionStruct<T: SizeTagged>(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<T>?, function f: String,
                                     value: (SessionBox) -> T) -> Int32 {
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let out else { return invalid(f, "out is NULL") }
    return writeSized(value(box), to: out, function: f, name: "out") ? Status.ok : Status.invalidArgument
}

// MARK: - Keyed settings (deprecated since 0.5: shims over the typed setters' validation)

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

/// Installs sampling settings through the core's validation; on an error nothing changes.
func apply(_ s: SamplingParams, to box: SessionBox, function: String, key: String) -> Int32 {
    do {
        try box.session.setSampling(s)
    } catch {
        return fail(error, in: "\(function) \"\(key)\"")
    }
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
            // an end token only comes with text held back for a stop string: not a generated token
            if !box.session.model.tokenizer.isEndOfGeneration(id) { count += 1 }
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
