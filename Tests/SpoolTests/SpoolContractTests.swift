import Testing
import TestSupport
import EdgeCore
@testable import Spool
#if canImport(Glibc)
import Glibc
#endif

/// A fresh folder for a spool, removed at the latest when the test process exits.
func temporaryDirectory() -> String { makeTemporaryDirectory("tagoedge-spool") }

func payload(_ n: UInt64, size: Int = 40) -> [UInt8] {
    var p = [UInt8](repeating: UInt8(n & 0xFF), count: size)
    withUnsafeBytes(of: n.littleEndian) { for (i, b) in $0.enumerated() where i < size { p[i] = b } }
    return p
}

/// The contract every spool keeps (after Telegraf's BufferSuiteTest): run against the file and
/// the memory implementation alike.
enum Kind: String, CaseIterable, CustomTestStringConvertible {
    case file, memory
    var testDescription: String { rawValue }
}

final class SpoolUnderTest {
    let kind: Kind
    let dir = temporaryDirectory()
    var spool: Spool
    let capacity: Int64
    let policy: SpoolFullPolicy

    init(_ kind: Kind, capacity: Int64 = 64 << 10, policy: SpoolFullPolicy = .dropOldest, sync: SpoolSyncMode = .batch) throws {
        self.kind = kind
        self.capacity = capacity
        self.policy = policy
        switch kind {
        case .file: spool = try FileSpool(path: dir + "/spool", options: .init(capacityBytes: capacity, sync: sync, policy: policy), clock: ManualClock())
        case .memory: spool = MemorySpool(capacityBytes: capacity, policy: policy)
        }
    }

    /// Closes and opens again (the file spool); the memory spool stays as it is.
    func reopen() throws {
        guard kind == .file, let file = spool as? FileSpool else { return }
        try file.close()
        // Another test's child process, between its fork and exec, can still hold the closed
        // descriptor's lock for a moment (flock belongs to the open file, which a fork shares).
        for attempt in 0..<100 {
            do {
                spool = try FileSpool(path: dir + "/spool", options: .init(capacityBytes: capacity, policy: policy), clock: ManualClock())
                return
            } catch let error as SpoolError where error.kind == .locked && attempt < 99 {
                usleep(10_000)
            }
        }
    }

    deinit { removeTree(dir) }
}

@Suite struct SpoolContractTests {
    @Test(arguments: Kind.allCases)
    func appendPeekAcknowledgeInOrder(kind: Kind) throws {
        let s = try SpoolUnderTest(kind)
        #expect(try s.spool.append((1...10).map { payload($0) }) == 1...10)
        #expect(try s.spool.append([payload(11)]) == 11...11)
        let batch = try s.spool.peek(maxRecords: 4, maxBytes: 1 << 20)
        #expect(batch.map(\.seq) == [1, 2, 3, 4])
        #expect(batch[2].payload == payload(3))
        // Peeking again returns the same records until they are acknowledged.
        #expect(try s.spool.peek(maxRecords: 4, maxBytes: 1 << 20).map(\.seq) == [1, 2, 3, 4])
        try s.spool.acknowledge(through: 4)
        #expect(try s.spool.peek(maxRecords: 100, maxBytes: 1 << 20).map(\.seq) == Array(5...11))
        let st = s.spool.stats
        #expect(st.recordCount == 7)
        #expect(st.oldestSeq == 5)
        #expect(st.newestSeq == 11)
        #expect(st.acknowledgedThrough == 4)
        #expect(st.dropped == 0)
    }

    @Test(arguments: Kind.allCases)
    func peekHonoursTheByteLimitButAlwaysReturnsOne(kind: Kind) throws {
        let s = try SpoolUnderTest(kind)
        try s.spool.append((1...5).map { payload($0, size: 100) })
        #expect(try s.spool.peek(maxRecords: 10, maxBytes: 250).count == 2)
        #expect(try s.spool.peek(maxRecords: 10, maxBytes: 10).count == 1)
        #expect(try s.spool.peek(maxRecords: 0, maxBytes: 1000).isEmpty)
    }

    @Test(arguments: Kind.allCases)
    func partialAcknowledgementAndAcknowledgingTooFar(kind: Kind) throws {
        let s = try SpoolUnderTest(kind)
        try s.spool.append((1...6).map { payload($0) })
        try s.spool.acknowledge(through: 2)
        try s.spool.acknowledge(through: 1)  // going back changes nothing
        #expect(s.spool.stats.oldestSeq == 3)
        try s.spool.acknowledge(through: 1000)  // beyond the newest: everything, no more
        #expect(s.spool.stats.recordCount == 0)
        #expect(s.spool.stats.acknowledgedThrough == 6)
        #expect(try s.spool.append([payload(7)]) == 7...7)  // sequence numbers keep increasing
        #expect(try s.spool.peek(maxRecords: 10, maxBytes: 1 << 20).map(\.seq) == [7])
    }

    @Test(arguments: Kind.allCases)
    func overfillDropsTheOldestAndCountsThem(kind: Kind) throws {
        let s = try SpoolUnderTest(kind, capacity: 16 << 10)  // 12 KiB of ring
        let n: UInt64 = 1000
        for i in 1...n { try s.spool.append([payload(i, size: 40)]) }
        let st = s.spool.stats
        #expect(st.dropped > 0)
        #expect(st.newestSeq == n)
        #expect(UInt64(st.recordCount) + st.dropped == n)
        let kept = try s.spool.peek(maxRecords: 10_000, maxBytes: 1 << 30)
        #expect(kept.map(\.seq) == Array((n - UInt64(kept.count) + 1)...n))  // the newest, contiguous
        #expect(kept.allSatisfy { $0.payload == payload($0.seq, size: 40) })
    }

    @Test(arguments: Kind.allCases)
    func rejectNewestKeepsTheOldest(kind: Kind) throws {
        let s = try SpoolUnderTest(kind, capacity: 16 << 10, policy: .rejectNewest)
        var accepted: UInt64 = 0
        var rejected = 0
        for i in 1...1000 as ClosedRange<UInt64> {
            do {
                try s.spool.append([payload(i, size: 40)])
                accepted += 1
            } catch let e as SpoolError {
                #expect(e.kind == .full)
                rejected += 1
            }
        }
        #expect(rejected > 0)
        #expect(s.spool.stats.dropped == UInt64(rejected))
        #expect(try s.spool.peek(maxRecords: 10_000, maxBytes: 1 << 30).map(\.seq) == Array(1...accepted))
        // Acknowledging makes room again.
        try s.spool.acknowledge(through: accepted)
        #expect(try s.spool.append([payload(1001)]) != nil)
    }

    @Test(arguments: Kind.allCases)
    func wrapsAroundManyTimesWithAcknowledgements(kind: Kind) throws {
        let s = try SpoolUnderTest(kind, capacity: 16 << 10)
        var expected: UInt64 = 1
        var seq: UInt64 = 0
        for round in 0..<200 {
            let size = 20 + (round * 37) % 300
            let batch = (0..<(1 + round % 7)).map { _ -> [UInt8] in seq += 1; return payload(seq, size: size) }
            try s.spool.append(batch)
            let got = try s.spool.peek(maxRecords: 5, maxBytes: 1 << 20)
            #expect(got.first?.seq == expected, "round \(round)")
            for r in got { #expect(r.payload.prefix(8) == payload(r.seq, size: 8)[...]) }
            if let last = got.last {
                try s.spool.acknowledge(through: last.seq)
                expected = last.seq + 1
            }
        }
        #expect(s.spool.stats.dropped == 0)
        let rest = try s.spool.peek(maxRecords: 10_000, maxBytes: 1 << 30).map(\.seq)
        #expect(rest == Array(expected..<(seq + 1)))
    }

    @Test(arguments: Kind.allCases)
    func reopenKeepsUnacknowledgedRecordsAndSequence(kind: Kind) throws {
        let s = try SpoolUnderTest(kind)
        try s.spool.append((1...20).map { payload($0) })
        try s.spool.acknowledge(through: 5)
        try s.reopen()
        #expect(try s.spool.peek(maxRecords: 100, maxBytes: 1 << 20).map(\.seq) == Array(6...20))
        #expect(try s.spool.append([payload(21)]) == 21...21)
        #expect(s.spool.stats.acknowledgedThrough == 5)
    }

    @Test(arguments: Kind.allCases)
    func oversizedRecordIsRefused(kind: Kind) throws {
        let s = try SpoolUnderTest(kind, capacity: 16 << 10)
        #expect { try s.spool.append([[UInt8](repeating: 1, count: 8000)]) } throws: { ($0 as? SpoolError)?.kind == .recordTooLarge }
        #expect(s.spool.stats.recordCount == 0)
    }
}

/// `visit`, the in-place walk the MQTT uplink reads with, and the acknowledgements that follow it.
@Suite struct SpoolVisitTests {
    @Test(arguments: Kind.allCases)
    func visitGivesPeeksRecordsAndStopsBeforeARefusedOne(kind: Kind) throws {
        let s = try SpoolUnderTest(kind)
        try s.spool.append((1...30).map { payload($0, size: 20 + Int($0)) })
        var seen: [(UInt64, [UInt8])] = []
        // Take records until one would pass 10: that one is refused, not taken.
        try s.spool.visit(after: 0, maxRecords: 100) { seq, bytes in
            guard seq <= 10 else { return false }
            seen.append((seq, Array(bytes)))
            return true
        }
        #expect(seen.map(\.0) == Array(1...10))
        let peeked = try s.spool.peek(maxRecords: 10, maxBytes: .max)
        #expect(seen.map(\.1) == peeked.map(\.payload))
        // The next walk after the last taken starts with the refused record; maxRecords is kept.
        var next: [UInt64] = []
        try s.spool.visit(after: 10, maxRecords: 5) { seq, bytes in
            #expect(Array(bytes) == payload(seq, size: 20 + Int(seq)))
            next.append(seq)
            return true
        }
        #expect(next == Array(11...15))
        try s.spool.acknowledge(through: 12)
        var rest: [UInt64] = []
        try s.spool.visit(after: 0, maxRecords: 100) { seq, _ in rest.append(seq); return true }
        #expect(rest == Array(13...30))
        #expect(s.spool.stats.recordCount == 18)
    }

    /// Acknowledging what walks took moves the tail along their trail: no record is read again
    /// (the MQTT uplink walks a message's records, then acknowledges through its last one).
    @Test func acknowledgingWhatWalksTookReadsNothingAgain() throws {
        let s = try SpoolUnderTest(.file, capacity: 4 << 20)
        let file = try #require(s.spool as? FileSpool)
        // Appended in commits made durable one by one: each ends padded to a sector, so walks
        // cross padding between records, as they do on a gateway syncing every interval.
        for k in 0..<50 {
            try s.spool.append((1...100).map { payload(UInt64(k * 100) + $0, size: 40 + k % 7) })
            try s.spool.sync()
        }
        var last: UInt64 = 0
        var inFlight: [UInt64] = []
        func walk() throws {
            var took = false
            try s.spool.visit(after: last, maxRecords: 100) { seq, _ in last = seq; took = true; return true }
            if took { inFlight.append(last) }
        }
        // As the uplink does: ten messages ahead, then one acknowledged (sometimes two) for one walked.
        for _ in 0..<10 { try walk() }
        var bytes = 0
        var step = 0
        while let oldest = inFlight.first {
            let before = file.bytesRead
            let through = step % 3 == 1 && inFlight.count > 1 ? inFlight[1] : oldest
            try s.spool.acknowledge(through: through)
            inFlight.removeAll { $0 <= through }
            bytes += file.bytesRead - before
            try walk()
            step += 1
        }
        #expect(last == 5000)
        #expect(s.spool.stats.recordCount == 0)
        #expect(bytes == 0, "acknowledging read \(bytes) bytes again")
    }

    /// A walk that has caught up (everything in flight, nothing new) reads nothing, and a walk
    /// of a few new records reads about them, not the ring's empty part beyond the head: the
    /// uplink makes these walks at every step on a gateway that keeps up.
    @Test func aCaughtUpWalkReadsNothingAndNewRecordsReadLittle() throws {
        let s = try SpoolUnderTest(.file, capacity: 4 << 20)
        let file = try #require(s.spool as? FileSpool)
        try s.spool.append((1...20).map { payload($0, size: 40) })
        var last: UInt64 = 0
        try s.spool.visit(after: 0, maxRecords: 100) { seq, _ in last = seq; return true }
        #expect(last == 20)
        let before = file.bytesRead
        for _ in 0..<5 {
            try s.spool.visit(after: last, maxRecords: 100) { seq, _ in Issue.record("record \(seq) after the newest"); return false }
        }
        #expect(file.bytesRead == before, "a caught-up walk read \(file.bytesRead - before) bytes")
        try s.spool.append((21...23).map { payload($0, size: 40) })
        var fresh: [UInt64] = []
        try s.spool.visit(after: last, maxRecords: 100) { seq, bytes in
            #expect(Array(bytes) == payload(seq, size: 40))
            fresh.append(seq)
            return true
        }
        #expect(fresh == [21, 22, 23])
        #expect(file.bytesRead - before <= 4096, "walking 3 new records read \(file.bytesRead - before) bytes")
        // Acknowledged, then reopened: still exactly the records after the acknowledgement.
        try s.spool.acknowledge(through: 22)
        try s.reopen()
        var rest: [UInt64] = []
        try s.spool.visit(after: 0, maxRecords: 100) { seq, _ in rest.append(seq); return true }
        #expect(rest == [23])
    }

    /// The file spool acknowledges along the trail its walks leave. Random appends (wrapping a
    /// small ring many times, dropping the oldest when it is full), walks after a cursor or from
    /// the tail, acknowledgements and reopenings; after every step the spool must hold exactly a
    /// run of the newest appended records, none acknowledged, each with its own bytes, and no
    /// damage counted: nothing here damages the file.
    @Test func acknowledgingAlongTheTrailKeepsTheRing() throws {
        var g = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let s = try SpoolUnderTest(.file, capacity: 32 << 10)
            var sizes: [UInt64: Int] = [:]
            var next: UInt64 = 1
            var acked: UInt64 = 0
            var cursor: UInt64 = 0
            let damaged: UInt64 = 0
            for step in 0..<800 {
                let at = "round \(round) step \(step)"
                switch Int.random(in: 0..<10, using: &g) {
                case 0..<4:
                    let n = Int.random(in: 1...40, using: &g)
                    let batch = (0..<n).map { i in
                        let size = Int.random(in: 8...300, using: &g)
                        sizes[next + UInt64(i)] = size
                        return payload(next + UInt64(i), size: size)
                    }
                    next += UInt64(n)
                    try s.spool.append(batch)
                case 4..<7:
                    if Int.random(in: 0..<4, using: &g) == 0 { cursor = 0 }
                    let first = s.spool.stats.oldestSeq ?? next
                    let max = Int.random(in: 1...120, using: &g)
                    var walked: [UInt64] = []
                    try s.spool.visit(after: cursor, maxRecords: max) { seq, bytes in
                        #expect(Array(bytes) == payload(seq, size: sizes[seq] ?? -1), "\(at): record \(seq)")
                        walked.append(seq)
                        return true
                    }
                    let from = Swift.max(cursor + 1, first)
                    #expect(walked == Array((from..<next).prefix(max)), "\(at): walk after \(cursor)")
                    cursor = walked.last ?? cursor
                case 7..<9:
                    guard let oldest = s.spool.stats.oldestSeq else { continue }
                    let through = UInt64.random(in: oldest...Swift.max(oldest, cursor), using: &g)
                    try s.spool.acknowledge(through: through)
                    acked = Swift.max(acked, through)
                default:
                    try s.reopen()
                    cursor = 0
                }
                let all = try s.spool.peek(maxRecords: .max, maxBytes: .max)
                let stats = s.spool.stats
                #expect(stats.damaged == damaged, "\(at)")
                #expect(stats.recordCount == all.count, "\(at)")
                if let first = all.first {
                    #expect(first.seq > acked, "\(at): acknowledged record \(first.seq) is back")
                    #expect(all.map(\.seq) == Array(first.seq..<next), "\(at): not the newest run")
                    #expect(all.allSatisfy { $0.payload == payload($0.seq, size: sizes[$0.seq] ?? -1) }, "\(at)")
                } else {
                    #expect(stats.oldestSeq == nil)
                }
                if stats.recordCount != all.count { return }
            }
        }
    }
}
