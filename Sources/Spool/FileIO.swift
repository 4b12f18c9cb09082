#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore

/// Failures a test makes the next calls of a kind return (`pwrite`, `fdatasync`): how the spool's
/// handling of EIO and of a failed sync is tested without a failing disk. Empty in the agent.
final class SpoolFaultInjection: @unchecked Sendable {
    static let shared = SpoolFaultInjection()
    private let lock = Lock()
    private var pending: [String: [Int32]] = [:]

    /// The next `count` calls of `call` on the spool at `path` fail with `code` (per path: tests
    /// of other spools running meanwhile are not touched).
    func fail(_ call: String, with code: Int32, times count: Int = 1, path: String) {
        lock.withLock { pending[call + " " + path, default: []] += Array(repeating: code, count: count) }
    }

    func clear() { lock.withLock { pending = [:] } }

    /// The errno the next `call` on `path` must fail with, if any.
    func take(_ call: String, path: String) -> Int32? {
        lock.withLock {
            guard !pending.isEmpty, var list = pending[call + " " + path], !list.isEmpty else { return nil }
            let code = list.removeFirst()
            pending[call + " " + path] = list
            return code
        }
    }
}

/// Whole-buffer pread/pwrite with EINTR retried and failures as `SpoolError.io` naming the call.
struct SpoolFile {
    let fd: Int32
    let path: String

    func fail(_ call: String, _ code: Int32 = errno) -> SpoolError {
        SpoolError(.io, path: path, "\(call) failed: \(errnoDescription(code))\(code == ENOSPC ? " (the disk is full)" : "")")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = retryingEINTR { pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n < 0 { throw fail("pread") }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        if let code = SpoolFaultInjection.shared.take("pwrite", path: path) { throw fail("pwrite", code) }
        var done = 0
        while done < buffer.count {
            let n = retryingEINTR { pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done)) }
            if n < 0 { throw fail("pwrite") }
            done += n
        }
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    func datasync() throws {
        if let code = SpoolFaultInjection.shared.take("fdatasync", path: path) { throw fail("fdatasync", code) }
        if retryingEINTR({ fdatasync(fd) }) != 0 { throw fail("fdatasync") }
    }

    func size() throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("fstat") }
        return Int64(st.st_size)
    }

    /// Reserves the blocks up front (so a full disk is found now, not mid-run), falling back to a
    /// sparse extension where the filesystem cannot preallocate.
    /// A disk too full for it gets back what the attempt took (the file returns to its size).
    func reserve(_ length: Int64) throws {
        let before = (try? size()) ?? 0
        let rc = posix_fallocate(fd, 0, off_t(length))
        if rc == 0 { return }
        if rc == ENOSPC {
            _ = ftruncate(fd, off_t(before))
            throw fail("posix_fallocate", rc)
        }
        guard ftruncate(fd, off_t(length)) == 0 else { throw fail("ftruncate") }
    }
}

extension Array where Element == UInt8 {  // little-endian helpers for the file format
    @inline(__always) mutating func appendLE(_ v: UInt32) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }
    @inline(__always) mutating func appendLE(_ v: UInt64) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }

    @inline(__always) func u32(at i: Int) -> UInt32 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian }
    }

    @inline(__always) func u64(at i: Int) -> UInt64 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian }
    }
}

/// The current UTC time as `20261129T012345Z`, for names of files set aside.
func compactUTCStamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let iso = Timestamp(millisecondsSince1970: Int64(ts.tv_sec) * 1000).iso8601
    return String(iso.prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
}
