#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The door the project's system calls on files, sockets and processes go through: EINTR is
// retried here and failures become `SystemError` here, once. (Buses and GPIO lines go through
// the C shim, whose failures are `HardwareError`.)

/// A system call on a file, a socket or a process that failed, with the errno, the call and what
/// it was called on: `/var/lib/tagoedge/spool.dead: open failed: Permission denied`.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path, address or program.
    public var subject: String
    /// The call: `open`, `write`, `bind`.
    public var operation: String
    /// The errno; 0 when the failure is not the kernel's.
    public var errno: Int32
    /// Extra words when there is no errno, or to say more than it does.
    public var detail: String?

    public init(subject: String, operation: String, errno: Int32, detail: String? = nil) {
        self.subject = subject
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(subject): \(operation) failed"
        if errno != 0 { text += ": \(errnoDescription(errno))\(errno == ENOSPC ? " (the disk is full)" : "")" }
        if let detail { text += errno != 0 ? "; \(detail)" : ": \(detail)" }
        return text
    }
}

/// `strerror`'s text for an errno.
public func errnoDescription(_ code: Int32) -> String {
    guard let cString = strerror(code) else { return "errno \(code)" }
    return String(cString: cString)
}

/// Calls `call` again for as long as it fails with EINTR; returns what it last returned, with
/// errno as the call left it.
@inlinable
public func retryingEINTR<T: FixedWidthInteger & SignedInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result < 0 && errno == EINTR { continue }
        return result
    }
}

/// A call that returns -1 on failure, retried on EINTR, its failure thrown naming `operation` and
/// `subject`.
@inlinable
public func systemCall<T: FixedWidthInteger & SignedInteger>(_ operation: String, on subject: String, _ call: () -> T) throws(SystemError) -> T {
    let result = retryingEINTR(call)
    guard result >= 0 else { throw SystemError(subject: subject, operation: operation, errno: errno) }
    return result
}

/// Writes all of `bytes` to `fd` (a short write is continued, EINTR retried).
public func writeAll(_ fd: Int32, _ bytes: [UInt8], on subject: String) throws(SystemError) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { b in retryingEINTR { write(fd, b.baseAddress! + done, b.count - done) } }
        if n < 0 { throw SystemError(subject: subject, operation: "write", errno: errno) }
        guard n > 0 else { throw SystemError(subject: subject, operation: "write", errno: EIO, detail: "no progress") }
        done += n
    }
}
