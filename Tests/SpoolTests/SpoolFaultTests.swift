import Testing
import EdgeCore
@testable import Spool
#if canImport(Glibc)
import Glibc
#endif

/// EIO from a write and a failed fdatasync, injected at the spool's file layer: an append that
/// failed says so, the appends after it keep their data, and nothing is called durable before a
/// sync that succeeded with it.
@Suite(.serialized) struct SpoolFaultTests {
    func payload(_ i: Int) -> [UInt8] { Array("reading \(i)".utf8) }

    func reopened(_ path: String) throws -> [String] {
        let spool = try FileSpool(path: path, options: FileSpool.Options(capacityBytes: 1 << 20, readOnly: true))
        defer { try? spool.close() }
        return try spool.peek(maxRecords: 1000, maxBytes: 1 << 20).map { String(decoding: $0.payload, as: UTF8.self) }
    }

    /// The defect the issue names: a transient write error, then successful appends that vanished
    /// (`pendingAt` reset while the failed frames were still pending).
    @Test func aTransientWriteErrorLosesNoLaterAppend() throws {
        defer { SpoolFaultInjection.shared.clear() }
        let dir = makeTestDirectory()
        let path = dir + "/spool"
        // Unsynced, so no sector padding follows a failed frame: the next frames must go right after it.
        let spool = try FileSpool(path: path, options: FileSpool.Options(capacityBytes: 1 << 20, sync: .none))
        try spool.append((1...3).map(payload))
        SpoolFaultInjection.shared.fail("pwrite", with: EIO, path: path)
        #expect { try spool.append([payload(4)]) } throws: { "\($0)".contains("pwrite failed") && "\($0)".contains(path) }
        try spool.append((5...7).map(payload))
        try spool.close()
        let records = try reopened(path)
        for i in [1, 2, 3, 5, 6, 7] { #expect(records.contains("reading \(i)"), "reading \(i) lost: \(records)") }
        #expect(Set(records).count == records.count, "a record twice: \(records)")
    }

    /// A failed fdatasync is not forgotten: the append fails, nothing is durable through it, and
    /// the next successful sync covers the data the failed one did not.
    @Test func aFailedSyncIsNotCountedDurable() throws {
        defer { SpoolFaultInjection.shared.clear() }
        let dir = makeTestDirectory()
        let path = dir + "/spool"
        let spool = try FileSpool(path: path, options: FileSpool.Options(capacityBytes: 1 << 20, sync: .always))
        try spool.append([payload(1)])
        let durable = spool.stats.durableThrough
        SpoolFaultInjection.shared.fail("fdatasync", with: EIO, path: path)
        #expect { try spool.append([payload(2)]) } throws: { "\($0)".contains("fdatasync failed") }
        #expect(spool.stats.durableThrough == durable, "a failed sync made the append durable")
        try spool.append([payload(3)])
        #expect(spool.stats.durableThrough == spool.stats.newestSeq, "the next sync covers everything")
        try spool.close()
        let records = try reopened(path)
        #expect(records == ["reading 1", "reading 2", "reading 3"], "\(records)")
    }
}

func makeTestDirectory() -> String {
    var template = Array("/tmp/tagoedge-spool-fault-XXXXXX".utf8CString)
    _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: template)
}
