import Testing
import EdgeCore
@testable import Spool
#if canImport(Glibc)
import Glibc
#endif

/// The spool on a real file system that is too small (a tmpfs of 512 KiB, mounted by the test:
/// root only, as CI runs).
@Suite(.serialized) struct SpoolDiskTests {
    static let isRoot = getuid() == 0

    func sh(_ command: String) -> Int32 {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }

    func freeBytes(_ dir: String) -> UInt64 {
        var s = statvfs()
        statvfs(dir, &s)
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    @Test(.enabled(if: isRoot, "needs root: mounts a small tmpfs"))
    func aDiskTooSmallIsSaidAtOpenAndGivesBackWhatItTook() throws {
        var template = Array("/tmp/tagoedge-disk-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let dir = String(cString: template)
        #expect(sh("mount -t tmpfs -o size=512k tmpfs \(dir)") == 0)
        defer {
            _ = sh("umount -l \(dir)")
            rmdir(dir)
        }
        let free = freeBytes(dir)
        var options = FileSpool.Options(capacityBytes: 1 << 20, sync: .always)
        do {
            _ = try FileSpool(path: dir + "/spool", options: options)
            Issue.record("a 1 MiB spool opened on a 512 KiB disk")
        } catch {
            #expect("\(error)".contains("\(dir)/spool"), "\(error)")
            #expect("\(error)".contains("the disk is full"), "\(error)")
        }
        #expect(freeBytes(dir) == free, "the failed preallocation kept \(free - freeBytes(dir)) bytes: \(sh("ls -la \(dir) >&2; df -B1 \(dir) >&2"))")
        // A spool that fits opens, takes records, and keeps them across a reopen.
        options.capacityBytes = 256 << 10
        let spool = try FileSpool(path: dir + "/spool", options: options)
        try spool.append((1...20).map { Array("reading \($0)".utf8) })
        try spool.close()
        let again = try FileSpool(path: dir + "/spool", options: options)
        #expect(try again.peek(maxRecords: 100, maxBytes: 1 << 20).count == 20)
        try again.close()
    }
}
