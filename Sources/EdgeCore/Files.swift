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
