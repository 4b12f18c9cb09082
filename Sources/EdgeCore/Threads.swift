#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a detached POSIX thread running `body` (for servers and loops that block in system
/// calls, where a task would hold a cooperative thread). Returns false if the thread could not start.
@discardableResult
public func startThread(_ body: @escaping () -> Void) -> Bool {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        body.run()
        return nil
    }, box.toOpaque())
    if rc != 0 {
        box.release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// A POSIX thread that its owner joins: `join()` returns once `body` has returned, so what the
/// thread uses (a spool, a socket) can then be closed safely.
public final class JoinableThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let lock = Lock()
    private var joined = false
    /// False when the system refused to start the thread.
    public let started: Bool

    public init(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(body))
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, box.toOpaque())
        if rc != 0 { box.release() }
        started = rc == 0
    }

    /// Waits for the thread to end (at most once; later calls return at once).
    public func join() {
        let first = lock.withLock { () -> Bool in
            defer { joined = true }
            return !joined
        }
        guard started, first else { return }
        pthread_join(thread, nil)
    }

    deinit {
        if started && !joined { pthread_detach(thread) }
    }
}
