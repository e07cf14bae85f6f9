#if canImport(Glibc)
import Glibc
#endif

/// Severity of a log message; the raw values are those of `enum adak_log_level` in adak.h.
public enum LogLevel: Int32, Sendable {
    case error = 1, warning = 2, info = 3, debug = 4
}

/// The library's log: one process-wide sink (installed by a host through the C API or by a
/// Swift program) that receives messages from whichever thread produced them. Without a sink
/// nothing is formatted or printed: an embedded library stays silent unless asked.
public enum Log {
    public typealias Sink = @Sendable (LogLevel, String) -> Void

    private final class State: @unchecked Sendable {
        let mutex: UnsafeMutablePointer<pthread_mutex_t>
        var sink: Sink?
        init() {
            mutex = .allocate(capacity: 1)
            pthread_mutex_init(mutex, nil)
        }
    }

    private static let state = State()

    /// Set on a thread while it delivers a message: whatever the sink logs meanwhile (a failing
    /// call made from a host's log callback, say) is dropped instead of recursing.
    private static let delivering: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Installs `sink` (nil: silence). Messages being delivered on other threads at this moment
    /// may still reach the previous sink.
    public static func setSink(_ sink: Sink?) {
        pthread_mutex_lock(state.mutex)
        state.sink = sink
        pthread_mutex_unlock(state.mutex)
    }

    /// Delivers a message to the sink, if there is one. The sink is called outside the lock, so
    /// it may itself log or replace the sink.
    public static func emit(_ level: LogLevel, _ message: @autoclosure () -> String) {
        pthread_mutex_lock(state.mutex)
        let sink = state.sink
        pthread_mutex_unlock(state.mutex)
        guard let sink, pthread_getspecific(delivering) == nil else { return }
        pthread_setspecific(delivering, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(delivering, nil) }
        sink(level, message())
    }

    public static func error(_ m: @autoclosure () -> String) { emit(.error, m()) }
    public static func warning(_ m: @autoclosure () -> String) { emit(.warning, m()) }
    public static func info(_ m: @autoclosure () -> String) { emit(.info, m()) }
    public static func debug(_ m: @autoclosure () -> String) { emit(.debug, m()) }
}
