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

    /// A kernel file is hardware's: its failures are `HardwareError`s (with their hints).
    public func readText(_ path: String) throws -> String {
        do {
            return try readTextFile(root + path, limit: 1 << 20)
        } catch {
            throw HardwareError(device: error.subject, operation: error.operation, errno: error.errno, detail: error.detail)
        }
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
