import AdaK

/// Batched decoding of several sessions in one forward pass (adak.h: adak_batch_decode).
@_cdecl("adak_batch_decode")
public func adak_batch_decode(_ sessions: UnsafePointer<OpaquePointer?>?, _ nSessions: Int,
                              _ tokens: UnsafePointer<Int32>?, _ nTokens: UnsafePointer<Int>?) -> Int32 {
    let f = "adak_batch_decode"
    guard let sessions else { return invalid(f, "sessions is NULL") }
    guard nSessions > 0, nSessions <= 1 << 16 else { return invalid(f, "n_sessions \(nSessions) is not in [1, 65536]") }
    var boxes: [SessionBox] = []
    var counts: [Int] = []
    var total = 0
    for i in 0..<nSessions {
        guard let box = mutableSessionBox(sessions[i], "\(f): sessions[\(i)]") else { return Status.invalidArgument }
        let n = nTokens?[i] ?? 1
        guard n >= 0, n <= 1 << 20 else { return invalid(f, "n_tokens[\(i)] = \(n) is out of range") }
        boxes.append(box)
        counts.append(n)
        total += n
    }
    guard total == 0 || tokens != nil else { return invalid(f, "tokens is NULL") }
    var entries: [(session: Session, tokens: [Int32])] = []
    var at = 0
    for (box, n) in zip(boxes, counts) {
        entries.append((box.session, n == 0 ? [] : Array(UnsafeBufferPointer(start: tokens! + at, count: n))))
        at += n
    }
    do {
        try Session.evaluate(batch: entries)
    } catch {
        return fail(error, in: f)
    }
    for box in boxes { box.invalidateLogits() }
    return Status.ok
}
