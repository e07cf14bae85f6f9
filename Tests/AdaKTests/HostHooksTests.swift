import Testing
import Glibc
@testable import AdaK

/// The hooks hosts use through the C API: load progress (with cancellation) and the log sink.
@Suite(.serialized) struct HostHooksTests {
    final class Collector: @unchecked Sendable {
        private var mutex = pthread_mutex_t()
        private var items: [(LogLevel, String)] = []
        init() { pthread_mutex_init(&mutex, nil) }
        func add(_ l: LogLevel, _ m: String) {
            pthread_mutex_lock(&mutex)
            items.append((l, m))
            pthread_mutex_unlock(&mutex)
        }
        var all: [(LogLevel, String)] {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return items
        }
    }

    static let tiny = Fixtures.path("models/tiny-olmoe.f32.gguf")

    @Test func progressIsMonotonicAndEndsAtOne() throws {
        let seen = Collector()
        var p = ModelParams()
        p.progress = { f in seen.add(.debug, String(f)); return true }
        let m = try Model(path: Self.tiny, params: p)
        let values = seen.all.compactMap { Double($0.1) }
        #expect(values.count == m.config.nLayer + 2)
        #expect(values.first == 0 && values.last == 1)
        #expect(values == values.sorted())
    }

    @Test func progressCanCancel() throws {
        let calls = Collector()
        var p = ModelParams()
        p.progress = { _ in calls.add(.debug, ""); return calls.all.count < 2 }
        #expect(throws: AdaKError.cancelled("model load cancelled by the progress callback")) {
            _ = try Model(path: Self.tiny, params: p)
        }
        #expect(calls.all.count == 2)
    }

    @Test func logSinkReceivesLoadMessagesAndDoesNotRecurse() throws {
        let got = Collector()
        Log.setSink { level, message in
            got.add(level, message)
            Log.error("from inside the sink")  // dropped: no recursion
        }
        defer { Log.setSink(nil) }
        _ = try Model(path: Self.tiny)
        #expect(got.all.contains { $0.0 == .info && $0.1.contains("olmoe") })
        #expect(!got.all.contains { $0.1 == "from inside the sink" })
    }
}
