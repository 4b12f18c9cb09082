#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore

/// Reads the kernel's virtual files (1-Wire `w1_slave`, thermal zones) with plain open/read.
/// `root` prefixes every path, so tests and the bench can point it at a tree of their own.
public final class LinuxSysfs: SysfsReader {
    public let root: String

    public init(root: String = "") {
        self.root = root
    }

    public func readText(_ path: String) throws -> String {
        try readTextFile(root + path, limit: 1 << 20)
    }

    public func list(_ path: String) throws -> [String] {
        let full = root + path
        guard let dir = opendir(full) else { throw HardwareError(device: full, operation: "opendir", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

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
