#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole (small) text file: configuration files, captures, kernel files.
/// Throws `HardwareError` naming the path and the errno.
public func readTextFile(_ path: String, limit: Int = 4 << 20) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw HardwareError(device: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw HardwareError(device: path, operation: "read", errno: errno)
        }
        if n == 0 { break }
        data.append(contentsOf: chunk.prefix(n))
        if data.count > limit { throw HardwareError(device: path, operation: "read", errno: 0, detail: "file larger than \(limit / 1024) KiB") }
    }
    return String(decoding: data, as: UTF8.self)
}

/// Replaces `path` with `bytes` atomically (a temporary file, then rename), so a reader or a
/// crash never sees half a file. `sync` flushes it to disk first (for state that must survive
/// a power cut). Returns false if it could not be written.
@discardableResult
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600, sync: Bool = false) -> Bool {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { return false }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        done += n
    }
    if sync { fsync(fd) }
    close(fd)
    guard done == bytes.count else {
        unlink(tmp)
        return false
    }
    return rename(tmp, path) == 0
}
