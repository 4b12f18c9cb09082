#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole (small) text file: configuration files, captures, kernel files.
/// Throws `SystemError` naming the path and the errno.
public func readTextFile(_ path: String, limit: Int = 4 << 20) throws(SystemError) -> String {
    let fd = try systemCall("open", on: path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { b in retryingEINTR { read(fd, b.baseAddress, b.count) } }
        if n < 0 { throw SystemError(subject: path, operation: "read", errno: errno) }
        if n == 0 { break }
        data.append(contentsOf: chunk.prefix(n))
        if data.count > limit { throw SystemError(subject: path, operation: "read", errno: 0, detail: "file larger than \(limit / 1024) KiB") }
    }
    return String(decoding: data, as: UTF8.self)
}

/// Creates `path` and every folder above it that is missing (like `mkdir -p`); a relative path
/// stays relative to the working directory. Folders it makes get `mode`; existing ones are left
/// as they are. Throws naming the folder that could not be made and why (a file in the way is
/// ENOTDIR).
public func makeDirectories(_ path: String, mode: mode_t = 0o750) throws(SystemError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        prefix += part
        guard mkdir(prefix, mode) != 0 else { continue }
        let e = errno
        var st = stat()
        guard e == EEXIST, stat(prefix, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SystemError(subject: prefix, operation: "mkdir", errno: e == EEXIST ? ENOTDIR : e)
        }
    }
}

/// `base/name` with exactly one slash between them (`bundles/` and `GW001` give `bundles/GW001`).
public func joinPath(_ base: String, _ name: String) -> String {
    var b = Substring(base)
    while b.count > 1 && b.hasSuffix("/") { b = b.dropLast() }
    if b.isEmpty { return name }
    return b.hasSuffix("/") ? "\(b)\(name)" : "\(b)/\(name)"
}

/// Replaces `path` with `bytes` atomically (a temporary file, then rename), so a reader or a
/// crash never sees half a file. `sync` flushes it to disk first (for state that must survive
/// a power cut). Returns false if it could not be written.
@discardableResult
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600, sync: Bool = false) -> Bool {
    let tmp = path + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { return false }
    let written = (try? writeAll(fd, bytes, on: tmp)) != nil && (!sync || retryingEINTR { fsync(fd) } == 0)
    close(fd)
    guard written else {
        unlink(tmp)
        return false
    }
    return rename(tmp, path) == 0
}
