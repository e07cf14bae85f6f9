// adak_model_apply_chat_template and the session's stop reasons, stop strings, logit bias,
// logits callback, state save/load, truncate and copy (adak.h, "since 0.5").
import AdaK
import CAdaK
import Glibc

@_cdecl("adak_model_apply_chat_template")
public func adak_model_apply_chat_template(_ model: OpaquePointer?, _ messages: UnsafePointer<adak_chat_message>?,
                                           _ n: Int, _ addAssistant: Int32, _ buf: UnsafeMutablePointer<CChar>?,
                                           _ capacity: Int, _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_model_apply_chat_template"
    guard let box = modelBox(model) else { return invalid(f, "model is NULL or not a live adak_model") }
    guard let len else { return invalid(f, "len is NULL") }
    guard isValidCount(n), messages != nil || n == 0 else { return invalid(f, "messages is NULL or n is out of range") }
    guard buf != nil || capacity == 0, isValidCount(capacity) else { return invalid(f, "buf is NULL but capacity is \(capacity)") }
    var msgs: [ChatMessage] = []
    for i in 0..<n {
        let m = messages![i]
        guard let r = m.role, let c = m.content else { return invalid(f, "messages[\(i)] has a NULL role or content") }
        guard let role = hostString(r), let content = hostString(c) else {
            return invalid(f, "messages[\(i)] is not valid UTF-8")
        }
        msgs.append(ChatMessage(role: role, content: content))
    }
    do {
        let text = try box.model.applyChatTemplate(msgs, addAssistant: addAssistant != 0)
        return writeText(Array(text.utf8), to: buf, capacity: capacity, length: len, function: f)
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_stop_reason")
public func adak_session_stop_reason(_ session: OpaquePointer?, _ reason: UnsafeMutablePointer<Int32>?) -> Int32 {
    let f = "adak_session_stop_reason"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let reason else { return invalid(f, "reason is NULL") }
    guard let r = box.session.stopReason else { return invalid(f, "no generation has ended since the session was created, reset, rewound or loaded") }
    reason.pointee = r.rawValue
    return Status.ok
}

/// `n` host byte strings (NUL-terminated when `lengths` is NULL), or nil after recording why not.
private func hostByteStrings(_ strings: UnsafePointer<UnsafePointer<CChar>?>?, _ lengths: UnsafePointer<Int>?,
                             _ n: Int, _ f: String) -> [[UInt8]]? {
    guard isValidCount(n), strings != nil || n == 0 else { invalid(f, "strings is NULL or n is out of range"); return nil }
    var out: [[UInt8]] = []
    for i in 0..<n {
        guard let s = strings![i] else { invalid(f, "strings[\(i)] is NULL"); return nil }
        let count = lengths.map { $0[i] } ?? strlen(s)
        guard isValidCount(count) else { invalid(f, "lengths[\(i)] is out of range"); return nil }
        out.append(Array(UnsafeRawBufferPointer(start: s, count: count)))
    }
    return out
}

@_cdecl("adak_session_set_stop_strings")
public func adak_session_set_stop_strings(_ session: OpaquePointer?, _ strings: UnsafePointer<UnsafePointer<CChar>?>?,
                                          _ lengths: UnsafePointer<Int>?, _ n: Int) -> Int32 {
    let f = "adak_session_set_stop_strings"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let stops = hostByteStrings(strings, lengths, n, f) else { return Status.invalidArgument }
    box.session.stopStrings = stops
    return Status.ok
}

@_cdecl("adak_session_set_choices")
public func adak_session_set_choices(_ session: OpaquePointer?, _ choices: UnsafePointer<UnsafePointer<CChar>?>?,
                                     _ lengths: UnsafePointer<Int>?, _ n: Int) -> Int32 {
    let f = "adak_session_set_choices"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let texts = hostByteStrings(choices, lengths, n, f) else { return Status.invalidArgument }
    do {
        try box.session.setChoices(texts)
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_set_regex")
public func adak_session_set_regex(_ session: OpaquePointer?, _ pattern: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_session_set_regex"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    var text: String? = nil
    if let pattern {
        guard let t = hostString(pattern) else { return invalid(f, "pattern is not valid UTF-8") }
        text = t
    }
    do {
        try box.session.setRegex(text)
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_set_logit_bias")
public func adak_session_set_logit_bias(_ session: OpaquePointer?, _ tokens: UnsafePointer<Int32>?,
                                        _ biases: UnsafePointer<Float>?, _ n: Int) -> Int32 {
    let f = "adak_session_set_logit_bias"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard isValidCount(n), (tokens != nil && biases != nil) || n == 0 else {
        return invalid(f, "tokens or biases is NULL or n is out of range")
    }
    var bias: [Int32: Float] = [:]
    for i in 0..<n { bias[tokens![i], default: 0] += biases![i] }
    do {
        try box.session.setLogitBias(bias)
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_set_logits_callback")
public func adak_session_set_logits_callback(_ session: OpaquePointer?, _ callback: adak_logits_callback?,
                                             _ userData: UnsafeMutableRawPointer?) -> Int32 {
    let f = "adak_session_set_logits_callback"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let callback else {
        box.session.logitsHook = nil
        return Status.ok
    }
    box.session.logitsHook = { [unowned box] row in
        let was = box.inCallback
        box.inCallback = true
        defer { box.inCallback = was }
        callback(userData, row.baseAddress, row.count)
    }
    return Status.ok
}

@_cdecl("adak_session_save_state")
public func adak_session_save_state(_ session: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ capacity: Int,
                                    _ len: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_save_state"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let len else { return invalid(f, "len is NULL") }
    guard buf != nil || capacity == 0, isValidCount(capacity) else { return invalid(f, "buf is NULL but capacity is \(capacity)") }
    let bytes = box.session.saveState()
    len.pointee = bytes.count
    guard capacity >= bytes.count else {
        return fail(Status.bufferTooSmall, "\(f): the state needs \(bytes.count) bytes, the buffer has \(capacity)")
    }
    bytes.withUnsafeBytes { buf!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return Status.ok
}

@_cdecl("adak_session_load_state")
public func adak_session_load_state(_ session: OpaquePointer?, _ buf: UnsafeRawPointer?, _ len: Int) -> Int32 {
    let f = "adak_session_load_state"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let buf, isValidCount(len) else { return invalid(f, "buf is NULL or len is out of range") }
    do {
        try box.session.loadState(UnsafeRawBufferPointer(start: buf, count: len))
        box.invalidateLogits()
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_save_state_file")
public func adak_session_save_state_file(_ session: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_session_save_state_file"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let path, let p = hostString(path) else { return invalid(f, "path is NULL or not valid UTF-8") }
    do {
        try box.session.saveState(toFile: p)
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_load_state_file")
public func adak_session_load_state_file(_ session: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    let f = "adak_session_load_state_file"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard let path, let p = hostString(path) else { return invalid(f, "path is NULL or not valid UTF-8") }
    do {
        try box.session.loadState(fromFile: p)
        box.invalidateLogits()
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_truncate")
public func adak_session_truncate(_ session: OpaquePointer?, _ position: Int64) -> Int32 {
    let f = "adak_session_truncate"
    guard let box = mutableSessionBox(session, f) else { return Status.invalidArgument }
    guard position >= 0, position <= Int64(box.session.position) else {
        return invalid(f, "position \(position) is not in [0, \(box.session.position)]")
    }
    do {
        try box.session.truncate(to: Int(position))
        box.invalidateLogits()
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_copy")
public func adak_session_copy(_ session: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    let f = "adak_session_copy"
    guard let out else { return invalid(f, "out is NULL") }
    out.pointee = nil
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    do {
        let copy = try box.session.copy()
        out.pointee = OpaquePointer(register(SessionBox(session: copy), as: .session))
        return Status.ok
    } catch {
        return fail(error, in: f)
    }
}

@_cdecl("adak_session_get_tokens")
public func adak_session_get_tokens(_ session: OpaquePointer?, _ tokens: UnsafeMutablePointer<Int32>?,
                                    _ capacity: Int, _ n: UnsafeMutablePointer<Int>?) -> Int32 {
    let f = "adak_session_get_tokens"
    guard let box = sessionBox(session) else { return invalid(f, "session is NULL or not a live adak_session") }
    guard let n else { return invalid(f, "n is NULL") }
    guard tokens != nil || capacity == 0, isValidCount(capacity) else { return invalid(f, "tokens is NULL but capacity is \(capacity)") }
    let ids = box.session.tokens
    n.pointee = ids.count
    guard capacity >= ids.count else {
        return fail(Status.bufferTooSmall, "\(f): the context holds \(ids.count) tokens, the buffer \(capacity)")
    }
    if let tokens { for (i, t) in ids.enumerated() { tokens[i] = t } }
    return Status.ok
}
