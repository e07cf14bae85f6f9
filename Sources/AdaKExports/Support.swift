// Shared machinery of the C ABI: status codes, the per-thread last-error message, the registry
// of live handles, and reading/writing the header's size-tagged structs. The types and constants
// come from include/adak.h itself (module CAdaK), so Swift never restates the ABI.
import AdaK
import CAdaK
import Glibc

// MARK: - Status codes (enum adak_status in include/adak.h)

enum Status {
    static let ok = ADAK_OK.rawValue
    static let invalidArgument = ADAK_ERR_INVALID_ARGUMENT.rawValue
    static let io = ADAK_ERR_IO.rawValue
    static let format = ADAK_ERR_FORMAT.rawValue
    static let unsupported = ADAK_ERR_UNSUPPORTED.rawValue
    static let outOfMemory = ADAK_ERR_OUT_OF_MEMORY.rawValue
    static let contextFull = ADAK_ERR_CONTEXT_FULL.rawValue
    static let cancelled = ADAK_ERR_CANCELLED.rawValue
    static let `internal` = ADAK_ERR_INTERNAL.rawValue
    static let bufferTooSmall = ADAK_ERR_BUFFER_TOO_SMALL.rawValue

    static func name(_ code: Int32) -> StaticString {
        switch code {
        case ok: return "ok"
        case invalidArgument: return "invalid argument"
        case io: return "input/output error"
        case format: return "malformed file"
        case unsupported: return "unsupported"
        case outOfMemory: return "out of memory"
        case contextFull: return "context full"
        case cancelled: return "cancelled"
        case `internal`: return "internal error"
        case bufferTooSmall: return "buffer too small"
        default: return "unknown status"
        }
    }
}

// MARK: - Size-tagged structs

/// Structs that cross the ABI start with `uint32_t size`; fields are only ever appended.
/// `firstVersionSize` is the size of the struct's first version: the smallest `size` accepted.
protocol SizeTagged {
    static var firstVersionSize: Int { get }
    var size: UInt32 { get set }
}

/// Sizes above this are taken for garbage rather than a struct from a newer header.
let maxStructSize = 4096

/// The `size` tag of a host's struct, or nil (and the reason recorded for `function`) when it is
/// not a plausible sizeof of the struct.
func sizeTag<T: SizeTagged>(_ raw: UnsafeRawPointer, of: T.Type, function: String, name: String) -> Int? {
    let size = Int(raw.loadUnaligned(as: UInt32.self))
    guard size >= T.firstVersionSize, size <= maxStructSize else {
        invalid(function, "\(name)->size \(size) is not a valid sizeof(\(T.self)) (at least \(T.firstVersionSize); initialise it with the struct's _init function or sizeof)")
        return nil
    }
    return size
}

/// A host's input struct: the fields its `size` covers, `defaults` for the rest; nil after
/// recording the error.
func readSized<T: SizeTagged>(_ pointer: UnsafePointer<T>, defaults: T, function: String, name: String) -> T? {
    let raw = UnsafeRawPointer(pointer)
    guard let size = sizeTag(raw, of: T.self, function: function, name: name) else { return nil }
    var value = defaults
    withUnsafeMutableBytes(of: &value) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: min(size, dst.count)))
    }
    return value
}

/// Writes `value` into a host's output struct: only the bytes its `size` covers (the size field
/// itself is kept). Returns false after recording the error.
func writeSized<T: SizeTagged>(_ value: T, to pointer: UnsafeMutablePointer<T>, function: String, name: String) -> Bool {
    let raw = UnsafeMutableRawPointer(pointer)
    guard let size = sizeTag(raw, of: T.self, function: function, name: name) else { return false }
    var v = value
    v.size = UInt32(size)
    withUnsafeBytes(of: &v) { src in raw.copyMemory(from: src.baseAddress!, byteCount: min(size, src.count)) }
    return true
}

/// Implements adak_*_params_init: zeroes the caller's `size` bytes, then writes the defaults
/// (with `size` set) into the part both sides know.
func initSized<T: SizeTagged>(_ pointer: UnsafeMutablePointer<T>?, size: Int, defaults: T, function: String) -> Int32 {
    guard let pointer else { return invalid(function, "params is NULL") }
    guard size >= T.firstVersionSize, size <= maxStructSize else {
        return invalid(function, "size \(size) is not a valid sizeof(\(T.self))")
    }
    let raw = UnsafeMutableRawPointer(pointer)
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    raw.storeBytes(of: UInt32(size), as: UInt32.self)
    _ = writeSized(defaults, to: pointer, function: function, name: "params")
    return Status.ok
}

// MARK: - Last error, one message per thread

/// Key of the thread-specific slot holding the thread's last error, a malloc'd C string freed
/// when it is replaced or when the thread exits.
let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

/// Records `message` as the calling thread's last error and returns `status`.
@discardableResult
func fail(_ status: Int32, _ message: String) -> Int32 {
    // Logged first: whatever a host's log callback calls cannot overwrite this message.
    Log.debug("\(Status.name(status)): \(message)")
    let copy = strdup(message)
    let old = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, copy)
    free(old)
    return status
}

/// Maps an error thrown by the core to a status code and records its message.
func fail(_ error: any Error, in function: String) -> Int32 {
    guard let e = error as? AdaKError else {
        return fail(Status.internal, "\(function): unexpected error \(error)")
    }
    let code: Int32
    switch e {
    case .invalidArgument: code = Status.invalidArgument
    case .io: code = Status.io
    case .format: code = Status.format
    case .unsupported: code = Status.unsupported
    case .outOfMemory: code = Status.outOfMemory
    case .contextFull: code = Status.contextFull
    case .cancelled: code = Status.cancelled
    }
    return fail(code, "\(function): \(e.message)")
}

@discardableResult
func invalid(_ function: String, _ message: String) -> Int32 {
    fail(Status.invalidArgument, "\(function): \(message)")
}

// MARK: - Handles

/// What a handle points at. A handle is an `Unmanaged` retained pointer to one of these boxes;
/// the registry lists the live ones, so a NULL, freed or made-up handle is reported instead of
/// dereferenced.
enum HandleKind: Sendable { case model, session, allocator, carveParams, trainParams, trainProgress }

/// The set of live handles behind a pthread mutex (the lookups of different threads on a shared
/// model take it only for a dictionary probe).
final class HandleRegistry: @unchecked Sendable {
    private var handles: [UInt: HandleKind] = [:]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func withLock<R>(_ body: (inout [UInt: HandleKind]) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&handles)
    }
}

let liveHandles = HandleRegistry()

func register(_ object: AnyObject, as kind: HandleKind) -> UnsafeMutableRawPointer {
    let pointer = Unmanaged.passRetained(object).toOpaque()
    liveHandles.withLock { $0[UInt(bitPattern: pointer)] = kind }
    return pointer
}

/// The box behind a live handle of the given kind, retained for the caller, or nil.
func lookup<T: AnyObject>(_ pointer: UnsafeRawPointer?, _ kind: HandleKind, as type: T.Type) -> T? {
    guard let pointer else { return nil }
    return liveHandles.withLock { handles -> T? in
        guard handles[UInt(bitPattern: pointer)] == kind else { return nil }
        // Taken under the lock, so a concurrent free cannot release the box in between.
        return Unmanaged<T>.fromOpaque(pointer).takeUnretainedValue()
    }
}

/// Removes a live handle and drops the reference the handle held. Unknown pointers are ignored.
func unregister<T: AnyObject>(_ pointer: UnsafeRawPointer?, _ kind: HandleKind, as type: T.Type) {
    guard let pointer else { return }
    let removed = liveHandles.withLock { handles -> Bool in
        guard handles[UInt(bitPattern: pointer)] == kind else { return false }
        handles[UInt(bitPattern: pointer)] = nil
        return true
    }
    if removed { Unmanaged<T>.fromOpaque(pointer).release() }
}

// MARK: - C strings and buffers

/// A NUL-terminated C string from a host pointer, rejecting invalid UTF-8.
func hostString(_ pointer: UnsafePointer<CChar>) -> String? {
    String(validatingCString: pointer)
}

/// Copies `bytes` to a host buffer following the sized-output rules of adak.h: `*length`
/// always receives the byte count; a too-small buffer gets nothing; a NUL is appended when
/// there is room.
func writeText(_ bytes: [UInt8], to buffer: UnsafeMutablePointer<CChar>?, capacity: Int,
               length: UnsafeMutablePointer<Int>, function: String) -> Int32 {
    length.pointee = bytes.count
    guard capacity >= bytes.count else {
        return fail(Status.bufferTooSmall, "\(function): the text needs \(bytes.count) bytes, the buffer has \(capacity)")
    }
    guard let buffer else { return Status.ok }  // capacity == 0 and nothing to write
    bytes.withUnsafeBufferPointer { source in
        if let base = source.baseAddress {
            UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: source.count)
        }
    }
    if capacity > bytes.count { buffer[bytes.count] = 0 }
    return Status.ok
}

/// Validates a host size_t that Swift sees as Int (values above Int.max arrive negative).
func isValidCount(_ n: Int) -> Bool { n >= 0 }
