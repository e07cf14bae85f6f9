/// Every failure the core reports. The C-ABI layer maps each case to a status code and keeps the
/// message as the handle's (or thread's) last error.
public enum AdaKError: Error, Equatable, CustomStringConvertible {
    /// An argument from the caller is out of range or malformed.
    case invalidArgument(String)
    /// A file could not be opened, read or mapped.
    case io(String)
    /// A file is not well-formed (truncated, inconsistent, out of bounds).
    case format(String)
    /// Well-formed but not supported (architecture, tensor type, tokenizer model).
    case unsupported(String)
    /// An allocation failed or a size limit was exceeded.
    case outOfMemory(String)
    /// The session's context window is full.
    case contextFull(String)
    /// The operation was stopped by a callback.
    case cancelled(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .io(let m), .format(let m), .unsupported(let m),
             .outOfMemory(let m), .contextFull(let m), .cancelled(let m):
            return m
        }
    }

    public var description: String { message }
}
