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
