#if canImport(Glibc)
import Glibc
#endif
import EdgeCore

/// sd_notify without libsystemd: datagrams to `$NOTIFY_SOCKET` (a path, or `@abstract`).
/// Does nothing when the agent is not started by systemd with Type=notify.
public final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private var length: socklen_t = 0
    /// Half of `$WATCHDOG_USEC`, when systemd asked for a watchdog.
    public let watchdogIntervalMilliseconds: Int64?

    public init(environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }) {
        // A value that is not a positive number of microseconds is no watchdog (a negative one
        // trapped the status service's wait; one under 2 ms made it spin).
        watchdogIntervalMilliseconds = environment("WATCHDOG_USEC").flatMap(Int64.init).flatMap { $0 > 0 ? max($0 / 2000, 1) : nil }
        guard let path = environment("NOTIFY_SOCKET"), !path.isEmpty, path.utf8.count < 108 else {
            fd = -1
            return
        }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    }

    deinit { if fd >= 0 { close(fd) } }

    public var isActive: Bool { fd >= 0 }

    /// Sends `READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1` or several, newline-separated.
    public func notify(_ message: String) {
        guard fd >= 0 else { return }
        let bytes = Array(message.utf8)
        _ = withUnsafePointer(to: &address) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
    }
}
