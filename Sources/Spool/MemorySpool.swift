import EdgeCore

/// A spool in memory with the same contract as `FileSpool` (bounded by the same frame sizes,
/// the same full policies and counters), for tests and for a gateway that chooses to keep
/// nothing on disk. Nothing survives the process.
public final class MemorySpool: Spool {
    public let capacityBytes: Int64
    public let policy: SpoolFullPolicy
    private let lock = Lock()
    private var records: [SpoolRecord] = []
    private var start = 0
    private var used: Int64 = 0
    private var nextSeq: UInt64 = 1
    private var ackedThrough: UInt64 = 0
    private var dropped: UInt64 = 0

    public init(capacityBytes: Int64, policy: SpoolFullPolicy = .dropOldest) {
        self.capacityBytes = capacityBytes
        self.policy = policy
    }

    private var ringSize: Int64 { capacityBytes - SpoolFormat.dataStart }

    private func dropFirst() {
        used -= SpoolFormat.frameSize(records[start].payload.count)
        start += 1
        if start > 1024, start * 2 > records.count {
            records.removeFirst(start)
            start = 0
        }
    }

    @discardableResult
    public func append(_ payloads: [[UInt8]]) throws -> ClosedRange<UInt64>? {
        guard !payloads.isEmpty else { return nil }
        return try lock.withLock {
            for p in payloads where p.count > SpoolFormat.maxPayload || SpoolFormat.frameSize(p.count) > ringSize / 4 {
                throw SpoolError(.recordTooLarge, path: "memory", "a record of \(p.count) bytes is larger than the spool takes")
            }
            let needed = payloads.reduce(Int64(0)) { $0 + SpoolFormat.frameSize($1.count) }
            if policy == .rejectNewest, used + needed > ringSize {
                dropped += UInt64(payloads.count)
                throw SpoolError(.full, path: "memory", "is full (\(used) of \(ringSize) bytes unacknowledged); \(payloads.count) new record(s) rejected")
            }
            let first = nextSeq
            for payload in payloads {
                let size = SpoolFormat.frameSize(payload.count)
                while used + size > ringSize, start < records.count {
                    dropFirst()
                    dropped += 1
                }
                records.append(SpoolRecord(seq: nextSeq, payload: payload))
                used += size
                nextSeq += 1
            }
            return first...(nextSeq - 1)
        }
    }

    public func peek(maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord] {
        try peek(after: 0, maxRecords: maxRecords, maxBytes: maxBytes)
    }

    public func peek(after seq: UInt64, maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord] {
        lock.withLock {
            let lo = firstIndex(after: seq)
            var out: [SpoolRecord] = []
            var bytes = 0
            var i = lo
            while i < records.count, out.count < maxRecords {
                if !out.isEmpty && bytes + records[i].payload.count > maxBytes { break }
                bytes += records[i].payload.count
                out.append(records[i])
                i += 1
            }
            return out
        }
    }

    public func visit(after seq: UInt64, maxRecords: Int, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool) throws {
        try lock.withLock {
            var i = firstIndex(after: seq)
            var taken = 0
            while i < records.count, taken < maxRecords {
                guard try records[i].payload.withUnsafeBytes({ try body(records[i].seq, $0) }) else { return }
                taken += 1
                i += 1
            }
        }
    }

    /// The index of the first live record past `seq`: sequence numbers increase along the array.
    private func firstIndex(after seq: UInt64) -> Int {
        var lo = start, hi = records.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if records[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public func acknowledge(through seq: UInt64) throws {
        lock.withLock {
            while start < records.count, records[start].seq <= seq { dropFirst() }
            ackedThrough = max(ackedThrough, min(seq, nextSeq - 1))
        }
    }

    public func sync() throws {}
    public func flushIfDue() throws {}
    public func waitUntilDurable(_ seq: UInt64) throws {}

    public var stats: SpoolStats {
        lock.withLock {
            let live = records.count - start
            return SpoolStats(capacityBytes: capacityBytes, usedBytes: used, recordCount: live,
                              oldestSeq: live > 0 ? records[start].seq : nil, newestSeq: live > 0 ? records[records.count - 1].seq : nil,
                              acknowledgedThrough: ackedThrough, dropped: dropped, damaged: 0, durableThrough: nextSeq - 1)
        }
    }
}
