#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore

// One file of about 950 lines, on purpose: the ring's state (head, tail, the trail of walks, the
// cursor, what is pending and what is durable) is private to `FileSpool`, and every method here
// keeps its invariants; split across files it would have to be visible to the whole module.

/// A persistent, bounded, crash-safe ring buffer of records in one preallocated file
/// (format: `SpoolFormat`).
///
/// Durability (`SpoolSyncMode`), exactly:
/// - `always`: `append` returns after fdatasync. A crash (power included) loses nothing appended.
/// - `batch`: appends go to the kernel at once; an fdatasync runs at most once per `syncInterval`
///   (on the append or `flushIfDue` that finds it due). A process crash loses nothing; a power
///   cut loses at most the appends of the last interval. `waitUntilDurable` waits for the next one.
/// - `none`: no fdatasync; a power cut loses what the kernel had not written back (about 30 s).
/// Acknowledgements and counters are written to the header at sync points and on close, so after
/// a crash up to one interval of acknowledged records may be sent again (at-least-once).
///
/// Writes are sequential; the ring is never rewritten except where the next record goes. At each
/// sync point the tail of the write is padded to a 512-byte sector so no later write touches a
/// sector holding committed records. One writer at a time: the file is locked (flock) while open.
public final class FileSpool: Spool {
    public struct Options: Sendable, Equatable {
        public var capacityBytes: Int64
        public var sync: SpoolSyncMode
        public var syncIntervalMilliseconds: Int64
        public var policy: SpoolFullPolicy
        /// Inspect without locking or writing (the agent may be running).
        public var readOnly: Bool

        public init(capacityBytes: Int64 = 64 << 20, sync: SpoolSyncMode = .batch, syncIntervalMilliseconds: Int64 = 1000,
                    policy: SpoolFullPolicy = .dropOldest, readOnly: Bool = false) {
            self.capacityBytes = capacityBytes
            self.sync = sync
            self.syncIntervalMilliseconds = syncIntervalMilliseconds
            self.policy = policy
            self.readOnly = readOnly
        }
    }

    /// What opening found, for the log.
    public struct OpenReport: Sendable, Equatable {
        /// Unacknowledged records recovered.
        public var recovered = 0
        /// Damaged records cut away in this open.
        public var damaged = 0
        /// A new file was created.
        public var created = false
        /// Where an unreadable file was moved, and why.
        public var setAside: String?
        public var reason: String?
        /// The file's capacity differs from the one asked for; the file's is kept.
        public var capacityNote: String?
    }

    public let path: String
    public let options: Options
    public private(set) var openReport = OpenReport()

    private let file: SpoolFile
    private let clock: MonotonicClock
    private let lock = Lock()
    private var header: SpoolFormat.Header
    private var activeSlot = 0
    private let dataEnd: Int64
    private var head: Int64 = SpoolFormat.dataStart
    private var tail: Int64 = SpoolFormat.dataStart
    private var tailSeq: UInt64 = 1
    private var newestSeq: UInt64 = 0
    private var count = 0
    private var used: Int64 = 0
    private var durableThrough: UInt64 = 0
    private var lastSync: UInt64
    private var headerDirty = false
    private var lastHeaderWrite: UInt64 = 0
    /// The drop count in the header as last written (or read at open).
    private var writtenDropped: UInt64 = 0
    private var pending: [UInt8] = []
    private var pendingAt: Int64 = 0
    private var closed = false
    /// Set once `init` has finished: a spool whose opening failed writes nothing on its way out.
    private var openFinished = false

    /// Opens (or creates) the spool at `path`. Never refuses to start because of a damaged file:
    /// intact records are recovered, damage is cut away, and an unreadable file is renamed aside
    /// (`<path>.damaged-<UTC time>`) and a fresh spool started; `openReport` says what happened.
    /// Throws `SpoolError` when the file cannot be opened or created, or is locked by another process.
    public init(path: String, options: Options = Options(), clock: MonotonicClock = SystemClock()) throws {
        self.path = path
        self.options = options
        self.clock = clock
        lastSync = clock.nanoseconds()
        var report = OpenReport()
        var opened = try FileSpool.openFile(path, options)
        let capacity = max(SpoolFormat.dataStart + 16 * SpoolFormat.sector, options.capacityBytes / SpoolFormat.sector * SpoolFormat.sector)
        var decoded = try FileSpool.readHeader(opened, capacity: capacity)
        if case .setAside(let reason) = decoded {
            guard !options.readOnly else {
                Glibc.close(opened.fd)
                throw SpoolError(.io, path: path, "cannot be read: \(reason)")
            }
            Glibc.close(opened.fd)
            let aside = "\(path).damaged-\(compactUTCStamp())"
            guard rename(path, aside) == 0 else { throw SpoolFile(fd: -1, path: path).fail("rename to \(aside)") }
            report.setAside = aside
            report.reason = reason
            opened = try FileSpool.openFile(path, options)
            decoded = .empty
        }
        file = opened
        switch decoded {
        case .empty:
            header = SpoolFormat.Header(capacity: capacity)
            dataEnd = capacity
            // An empty file seen read-only is an empty spool: nothing is written, reserved or removed.
            if options.readOnly { break }
            report.created = true
            do {
                try file.reserve(capacity)
            } catch {
                // A new spool that does not fit leaves nothing behind: no file, no blocks; and
                // nothing is written on the way out (deinit sees it closed).
                closed = true
                Glibc.close(file.fd)
                unlink(path)
                throw error
            }
            header.generation = 1
            try file.write(header.encoded(), at: 0)
            header.generation = 2
            try file.write(header.encoded(), at: Int64(SpoolFormat.slotSize))
            activeSlot = 1
            try file.datasync()
        case .header(let h, let slot, let damagedHeader):
            header = h
            activeSlot = slot
            dataEnd = h.capacity
            if damagedHeader { report.reason = "header damaged; records recovered by scanning" }
            if h.capacity != capacity { report.capacityNote = "the file holds \(h.capacity) bytes; \(capacity) was asked for; the file's size is kept" }
            if !options.readOnly, try file.size() < h.capacity { try file.reserve(h.capacity) }
            let found = try recover()
            report.recovered = found.recovered
            report.damaged = found.damaged
            writtenDropped = header.dropped
        case .setAside:
            throw SpoolError(.io, path: path, "internal: header state")
        }
        openReport = report
        if report.setAside != nil || report.damaged > 0 {
            headerDirty = true
        }
        openFinished = true
    }

    deinit {
        if !closed && openFinished { try? close() }
        if !closed && !openFinished { Glibc.close(file.fd) }  // the lock goes with the descriptor
        readCache.deallocate()
        trail.storage.deallocate()
    }

    /// Writes what is pending, syncs, records the header and releases the lock.
    public func close() throws {
        try lock.withLock {
            guard !closed else { return }
            defer {
                Glibc.close(file.fd)
                closed = true
            }
            if !options.readOnly {
                try commit(sync: options.sync != .none, force: true)
            }
        }
    }

    // MARK: opening

    private enum HeaderState {
        case empty
        case header(SpoolFormat.Header, slot: Int, damaged: Bool)
        case setAside(String)
    }

    private static func openFile(_ path: String, _ options: Options) throws -> SpoolFile {
        let fd = options.readOnly ? open(path, O_RDONLY | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        let file = SpoolFile(fd: fd, path: path)
        guard fd >= 0 else { throw file.fail("open") }
        if !options.readOnly, flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            Glibc.close(fd)
            if code == EWOULDBLOCK {
                throw SpoolError(.locked, path: path, "is locked by another process (a running agent, or `tagoedge spool append`); stop it first")
            }
            throw file.fail("flock", code)
        }
        // The spool reads in windows of its own (64 KiB, in ring order); the kernel's read-ahead
        // would also fill the page cache with the ring's empty part, zeroing pages nobody reads.
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        return file
    }

    /// The header copy to trust. A header claiming more room than both the file holds and the
    /// configuration asks for (`capacity`) is not trusted: a crafted or corrupted file must not
    /// make the spool reserve the disk; the records are recovered by scanning what is there.
    private static func readHeader(_ file: SpoolFile, capacity: Int64) throws -> HeaderState {
        let size = try file.size()
        if size == 0 { return .empty }
        guard size >= SpoolFormat.dataStart else { return .setAside("short header: the file has \(size) bytes, a spool at least \(SpoolFormat.dataStart)") }
        var raw = [UInt8](repeating: 0, count: 2 * SpoolFormat.slotSize)
        _ = try raw.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        let slots = [SpoolFormat.Header.decode(Array(raw[0..<SpoolFormat.slotSize])), SpoolFormat.Header.decode(Array(raw[SpoolFormat.slotSize...]))]
        var best: (SpoolFormat.Header, Int)?
        var ours = false
        for (i, slot) in slots.enumerated() {
            switch slot {
            case .valid(let h):
                ours = true
                // A copy claiming more than the file and the configuration is not a candidate:
                // the other copy may be sound (found by the fuzzer).
                guard h.capacity <= max(size, capacity) else { continue }
                if best == nil || h.generation > best!.0.generation { best = (h, i) }
            case .futureVersion(let v):
                return .setAside("written by a newer TagoEdge (spool format version \(v); this build reads version \(SpoolFormat.version))")
            case .damaged:
                ours = true
            case .foreign:
                break
            }
        }
        if let best { return .header(best.0, slot: best.1, damaged: false) }
        guard ours else { return .setAside("not a TagoEdge spool (no header)") }
        // Both header copies are damaged (or claim too much) but the file is ours: recover by
        // scanning with safe defaults.
        // The file's last bytes count, up to a whole sector: records there are inside the ring
        // (rounded down, they were outside it, and their sequence numbers were given again).
        let whole = size / SpoolFormat.sector * SpoolFormat.sector
        let roundedUp = whole < size ? whole + SpoolFormat.sector : whole
        return .header(SpoolFormat.Header(capacity: max(SpoolFormat.dataStart + 16 * SpoolFormat.sector, roundedUp)), slot: 1, damaged: true)
    }

    /// Scans the whole data region for intact records and rebuilds the ring. Every intact record
    /// with a sequence number past the acknowledged and dropped ones is live.
    private func recover() throws -> (recovered: Int, damaged: Int) {
        let firstLive = max(header.ackedThrough + 1, header.tailSeq)
        var maxSeq: UInt64 = 0, maxEnd: Int64 = SpoolFormat.dataStart
        var minLive: (seq: UInt64, offset: Int64)?
        var live = 0
        var liveEnd: Int64 = 0  // where the live record furthest into the file ends
        var suspects: [Int64] = []
        var previousInFile: UInt64?, firstInFile: UInt64?, falls = 0
        let windowSize = Int(min(1 << 20, dataEnd))  // (a small spool needs no 1 MiB window)
        var window = [UInt8](repeating: 0, count: windowSize)
        var windowStart: Int64 = 0
        var windowLength = 0
        var scanEnd = dataEnd  // lowered if the file turns out shorter
        let maxFrame = Int64(SpoolFormat.frameHeader + SpoolFormat.maxPayload)
        var p = SpoolFormat.dataStart
        /// Makes the window cover [p, p + min(maxFrame, rest)).
        func cover(_ p: Int64) throws -> Bool {
            let need = min(maxFrame, scanEnd - p)
            if p >= windowStart, p + need <= windowStart + Int64(windowLength) { return true }
            windowStart = p
            let want = Int(min(Int64(windowSize), scanEnd - p))
            windowLength = try window.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: p) }
            if windowLength < want { scanEnd = p + Int64(windowLength) }
            return windowLength >= SpoolFormat.frameHeader
        }
        while p + Int64(SpoolFormat.frameHeader) <= scanEnd {
            guard try cover(p) else { break }
            // Fast path over zeros, padding and foreign bytes: find the next record marker.
            let at = window.withUnsafeBytes { b -> Int in
                var q = Int(p - windowStart)
                let last = windowLength - SpoolFormat.frameHeader
                while q <= last, b[q + 3] != UInt8(SpoolFormat.recordMarker) { q += 8 }
                return q
            }
            p = windowStart + Int64(at)
            if at > windowLength - SpoolFormat.frameHeader { continue }  // slide the window
            guard try cover(p) else { break }
            let local = Int(p - windowStart)
            let frame = window.withUnsafeBytes { SpoolFormat.validFrame(UnsafeRawBufferPointer(rebasing: $0[0..<windowLength]), at: local) }
            if let frame {
                let size = SpoolFormat.frameSize(frame.length)
                if frame.seq > maxSeq { maxSeq = frame.seq; maxEnd = p + size }
                // In file order a ring's records rise, but for one fall where it wrapped.
                if let previous = previousInFile, frame.seq <= previous { falls += 1 }
                firstInFile = firstInFile ?? frame.seq
                previousInFile = frame.seq
                if frame.seq >= firstLive {
                    live += 1
                    liveEnd = max(liveEnd, p + size)
                    if minLive == nil || frame.seq < minLive!.seq { minLive = (frame.seq, p) }
                }
                p += size
            } else {
                // A marker without a valid frame: a torn write, bit rot, or bytes of an overwritten
                // record. It counts as damage only where live records are (decided below).
                suspects.append(p)
                p += 8
            }
        }
        let hintedNext = header.nextSeq
        head = maxSeq > 0 ? maxEnd : SpoolFormat.dataStart
        newestSeq = maxSeq >= firstLive ? maxSeq : 0
        count = live
        if let minLive {
            tail = minLive.offset
            tailSeq = minLive.seq
        } else {
            tail = head
            tailSeq = max(maxSeq + 1, firstLive)
        }
        used = ringDistance(from: tail, to: head, full: count > 0)
        header.nextSeq = max(header.nextSeq, maxSeq + 1, header.ackedThrough + 1)
        durableThrough = maxSeq
        // In a wrapped ring, what lies after the last live record before the file's end is the
        // space the wrap left unused: stale bytes of old records there are not damage.
        let wrapped = count > 0 && tail >= head
        // At the head, a broken frame is an append cut short only if it carries the next
        // sequence number; otherwise it is what is left of an older record that the newest one
        // overwrote in part (the newest ended on a sector boundary, so no padding covers it).
        func tornAppend(at p: Int64) throws -> Bool {
            var bytes = (UInt64(0), UInt64(0))
            let n = try withUnsafeMutableBytes(of: &bytes) { try file.read(into: $0, at: p) }
            guard n == SpoolFormat.frameHeader else { return false }
            let seq = UInt64(littleEndian: bytes.1)
            return seq == maxSeq + 1 || seq == hintedNext
        }
        var damaged = 0
        for p in suspects where !(wrapped && p >= liveEnd) {
            if inLiveRange(p) {
                damaged += 1
            } else if p == head, try tornAppend(at: p) {
                damaged += 1
            }
        }
        // Walked in ring order from the tail, the sequence numbers must rise from the first live
        // one. A record that does not (a misplaced copy of other sectors, or an old record inside
        // the live part; found by the fuzzer) would be handed out twice or out of order: it is
        // cut away, so that no later walk meets it. Live records the walk cannot reach are
        // damage. (Only when the file's order is not a ring's: no second read in the common case.)
        // Cutting a record away can make a frame that overlapped it whole again (found by the
        // fuzzer: a crafted checksum), so the walk is repeated until one cuts nothing: each cut
        // turns a record marker into 0xFF bytes, so there are at most as many walks as markers.
        let ringOrder = falls == 0 || (falls == 1 && (previousInFile ?? 0) < (firstInFile ?? 0))
        if !ringOrder && count > 0 {
            let found = live
            var walk = try walkInRingOrder(firstLive: firstLive, maxSeq: maxSeq)
            var cuts = walk.misplaced
            while walk.misplaced > 0 && !options.readOnly {
                walk = try walkInRingOrder(firstLive: firstLive, maxSeq: maxSeq)
                cuts += walk.misplaced
            }
            damaged += cuts + max(0, found - walk.reachable)
            count = walk.reachable
            live = walk.reachable
            // The ring ends after the last record the walk reached (another copy of the newest
            // elsewhere must not put the head, where appends go, inside the live records; found
            // by the fuzzer: an append overwrote the oldest live record).
            if walk.reachable > 0 {
                head = walk.end
                newestSeq = walk.last
                used = ringDistance(from: tail, to: head, full: true)
            }
        }
        header.damaged += UInt64(damaged)
        damageCountedThrough = maxSeq
        return (live, damaged)
    }

    /// One walk of recovery's check (above): from the tail, the records whose sequence numbers
    /// rise from `firstLive` to `maxSeq` are reachable; the others are misplaced and, unless the
    /// spool is read-only, overwritten with bytes every walk steps over as damage. Returns where
    /// the last reachable record ends (as an append leaves it: not wrapped to the start).
    private func walkInRingOrder(firstLive: UInt64, maxSeq: UInt64) throws -> (reachable: Int, misplaced: Int, last: UInt64, end: Int64) {
        var last = firstLive - 1, reachable = 0, misplaced = 0
        var at = tail, lastEnd = tail
        var skipped = 0
        let most = Int((dataEnd - SpoolFormat.dataStart) / Int64(SpoolFormat.frameHeader))
        while reachable + misplaced <= most, let r = try nextRecord(from: at, damage: &skipped) {
            at = end(of: r)
            if r.seq > last && r.seq <= maxSeq {
                last = r.seq
                lastEnd = r.offset + r.size
                reachable += 1
                if r.seq == maxSeq { break }
                continue
            }
            misplaced += 1
            if !options.readOnly {
                let size = Int(r.size)
                try file.write([UInt8](repeating: 0xFF, count: size), at: r.offset)
                invalidateReadCache(r.offset, size)
            }
        }
        return (reachable, misplaced, last, lastEnd)
    }

    // MARK: ring geometry

    private func ringDistance(from a: Int64, to b: Int64, full: Bool) -> Int64 {
        if a == b { return full ? dataEnd - SpoolFormat.dataStart : 0 }
        return b > a ? b - a : (dataEnd - a) + (b - SpoolFormat.dataStart)
    }

    private func inLiveRange(_ p: Int64) -> Bool {
        guard count > 0 else { return false }
        if tail < head { return p >= tail && p < head }
        return p >= tail || p < head
    }

    /// Makes the `n` bytes at `p` available in the read-ahead window and returns where they are,
    /// so walking records (peek, acknowledge, drop) costs one pread per 64 KiB rather than two per
    /// record, and no copy. Valid until the next call; writes that overlap the window invalidate
    /// it. Nil if the file is shorter.
    @inline(__always)
    private func window(_ p: Int64, _ n: Int) throws -> UnsafeRawPointer? {
        if p >= readCacheStart && p + Int64(n) <= readCacheStart + Int64(readCacheLength) {
            return UnsafeRawPointer(readCache.baseAddress!) + Int(p - readCacheStart)
        }
        return try refill(p, n)
    }

    /// Reads the window at `p` (at least `n` bytes, up to `readAhead`) from the file.
    private func refill(_ p: Int64, _ n: Int) throws -> UnsafeRawPointer? {
        var want = Int(min(Int64(max(Self.readAhead, n)), dataEnd - p))
        // Not past the head: beyond it lie the ring's empty part or acknowledged records.
        if p < head { want = max(n, min(want, Int(head - p))) }
        if readCache.count < want {
            readCache.deallocate()
            readCache = .allocate(byteCount: want, alignment: 8)
        }
        readCacheStart = p
        readCacheLength = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: readCache[0..<want]), at: p)
        bytesRead += readCacheLength
        guard readCacheLength >= n else {
            readCacheLength = 0
            return nil
        }
        return UnsafeRawPointer(readCache.baseAddress!) + Int(p - readCacheStart)
    }

    private static let readAhead = 64 << 10
    /// Allocated on the first read (an init that throws must leave nothing allocated: stored
    /// properties' initial values are all a failed init gives back, and a pointer is not freed).
    private var readCache = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var readCacheStart: Int64 = 0
    private var readCacheLength = 0
    /// Bytes read from the file since it was opened (what the SD card is asked for).
    private(set) var bytesRead = 0

    private func invalidateReadCache(_ offset: Int64, _ length: Int) {
        if offset < readCacheStart + Int64(readCacheLength), offset + Int64(length) > readCacheStart { readCacheLength = 0 }
    }

    /// A record found in the ring: where its frame starts, its size on disk, and its payload
    /// (in the read window: valid until the next read).
    private struct Found {
        var offset: Int64
        var seq: UInt64
        var size: Int64
        var payload: UnsafeRawBufferPointer
    }

    /// Where the record after `r` may start: right after it, or at the ring's start.
    private func end(of r: Found) -> Int64 {
        r.offset + r.size >= dataEnd ? SpoolFormat.dataStart : r.offset + r.size
    }

    /// The first record at or after `p` (skipping padding, wrap markers and damage) before `head`.
    /// `damage` counts resyncs over garbage.
    @inline(__always)
    private func nextRecord(from start: Int64, damage: inout Int) throws -> Found? {
        // The common case inline: a whole, valid record right at `start`, inside the read window.
        if start != head, start >= readCacheStart, start + Int64(SpoolFormat.frameHeader) <= readCacheStart + Int64(readCacheLength) {
            let at = Int(start - readCacheStart)
            let window = UnsafeRawBufferPointer(start: readCache.baseAddress!, count: readCacheLength)
            if let valid = SpoolFormat.validFrame(window, at: at), start + SpoolFormat.frameSize(valid.length) <= dataEnd {
                return Found(offset: start, seq: valid.seq, size: SpoolFormat.frameSize(valid.length),
                             payload: UnsafeRawBufferPointer(start: window.baseAddress! + at + SpoolFormat.frameHeader, count: valid.length))
            }
        }
        return try scanRecord(from: start, damage: &damage)
    }

    /// `nextRecord` the long way: reading the window as needed, over padding, wrap markers and damage.
    private func scanRecord(from start: Int64, damage: inout Int) throws -> Found? {
        var p = start
        var steps: Int64 = 0
        let limit = (dataEnd - SpoolFormat.dataStart) / 8 + 2
        var inGarbage = false
        var wrapped = false
        while steps < limit {
            steps += 1
            // Reaching the head ends the records, except at the start of a full ring (head == tail).
            if p == head && (steps > 1 || count == 0 || head != tail) { return nil }
            if p + Int64(SpoolFormat.frameHeader) > dataEnd {
                p = SpoolFormat.dataStart
                continue
            }
            guard let h = try window(p, SpoolFormat.frameHeader) else { return nil }
            let word0 = h.loadUnaligned(as: UInt32.self).littleEndian
            let length = Int(word0 & 0xFF_FFFF)
            if word0 >> 24 == SpoolFormat.recordMarker, length <= SpoolFormat.maxPayload, p + SpoolFormat.frameSize(length) <= dataEnd {
                // The whole frame is checked, so a damaged record is never taken for a live one.
                if let frame = try window(p, SpoolFormat.frameHeader + length) {
                    let bytes = UnsafeRawBufferPointer(start: frame, count: SpoolFormat.frameHeader + length)
                    if let valid = SpoolFormat.validFrame(bytes, at: 0) {
                        return Found(offset: p, seq: valid.seq, size: SpoolFormat.frameSize(length),
                                     payload: UnsafeRawBufferPointer(rebasing: bytes[SpoolFormat.frameHeader...]))
                    }
                }
            }
            if word0 >> 24 == SpoolFormat.recordMarker {
                if !inGarbage { damage += 1 }
                inGarbage = true
                p += 8
            } else if word0 == SpoolFormat.wrapMarker && p > head && !wrapped {
                // The ring's end: only ever past the head, and met once a walk. One before the
                // head is damage, not an end (found by the fuzzer: the walk went round to it
                // until its step limit and never reached the records after it).
                wrapped = true
                p = SpoolFormat.dataStart
            } else if word0 == 0 {
                // Padding runs to the sector's end. Zeros with anything after them in the same
                // sector are not padding (damage zeroed part of it): a record after them is
                // still found (found by the fuzzer: one was skipped, and the head's records too).
                let before = p
                let boundary = min((p / SpoolFormat.sector + 1) * SpoolFormat.sector, dataEnd)
                let rest = Int(boundary - p)
                let padding = try window(p, rest).map { r in (0..<rest).allSatisfy { r.load(fromByteOffset: $0, as: UInt8.self) == 0 } } ?? true
                p = padding ? boundary : p + 8
                if before < head && p > head { p = head }
            } else {
                if !inGarbage { damage += 1 }
                inGarbage = true
                p += 8
            }
            if p >= dataEnd { p = SpoolFormat.dataStart }
        }
        return nil
    }

    /// The records one walk took, in ring order, each found from the one before (the first from
    /// `tail` or from the walk's cursor): acknowledging them moves the tail along this trail
    /// instead of reading and checking every frame again. One entry a walk, not a record: a
    /// consumer acknowledges what it took in one walk (the MQTT uplink, a message), so the tail
    /// passes whole entries; one that stops inside an entry has the tail walked record by record.
    /// Entries behind the tail are dropped as it passes; the trail is cleared whenever a walk does
    /// not continue it.
    fileprivate struct TrailEntry {
        /// Where the walk looked for the first record: where the entry before ended, or the
        /// tail (padding or damage may lie between it and the first record).
        var from: Int64
        /// The first record's frame and sequence number.
        var offset: Int64
        var seq: UInt64
        /// Where the last record ends (`end(of:)`), and its sequence number.
        var end: Int64
        var lastSeq: UInt64
        /// Records in the entry.
        var count: Int
        /// Resyncs over damage between the previous entry and this one, and between this one's records.
        var damageBefore: Int
        var damageWithin: Int
    }
    /// The trail's entries, oldest first, in a ring that grows to `limit` entries. A value that
    /// `visit` walks with as a local (no exclusivity check per record); the storage it points to
    /// belongs to the spool, which frees it.
    fileprivate struct Trail {
        static let limit = 8192
        /// Allocated on the first append (see `readCache`).
        private(set) var storage = UnsafeMutableBufferPointer<TrailEntry>(start: nil, count: 0)
        private(set) var capacity = 0
        private var first = 0
        private(set) var count = 0

        var oldest: TrailEntry? { count > 0 ? storage[first] : nil }
        var newest: TrailEntry? { count > 0 ? storage[(first + count - 1) & (capacity - 1)] : nil }

        mutating func removeAll() {
            first = 0
            count = 0
        }

        mutating func removeOldest() {
            first = (first + 1) & (capacity - 1)
            count -= 1
        }

        /// Adds `e` as the newest entry; false when the trail is at its limit.
        mutating func append(_ e: TrailEntry) -> Bool {
            if count == capacity {
                guard capacity < Self.limit else { return false }
                let grown = UnsafeMutableBufferPointer<TrailEntry>.allocate(capacity: max(capacity * 2, 64))
                for i in 0..<count { (grown.baseAddress! + i).initialize(to: storage[(first + i) & (capacity - 1)]) }
                storage.deallocate()
                storage = grown
                capacity = grown.count
                first = 0
            }
            storage[(first + count) & (capacity - 1)] = e
            count += 1
            return true
        }

        /// Extends the trail with `entry` if its walk started where the trail ends (or, for an
        /// empty trail, at the tail); otherwise the trail starts over.
        mutating func extend(_ entry: TrailEntry, tail: Int64) {
            guard count < Self.limit else { return }  // full: the walks go on without it
            if let last = newest, last.end != entry.from { removeAll() }
            if count == 0, entry.from != tail { return }
            _ = append(entry)
        }
    }
    private var trail = Trail()
    /// Damage before records up to this one was counted when the file was opened (recovery
    /// scans the live records): moving the tail past it does not count it again.
    private var damageCountedThrough: UInt64 = 0

    private func countDamage(_ n: Int, before seq: UInt64) {
        if n > 0, seq > damageCountedThrough { header.damaged += UInt64(n) }
    }

    /// Puts the tail on the record after the one that ended at `next`: the trail's next entry, or
    /// the first record found from `next`; with none left, the ring is empty.
    private func placeTail(after next: Int64) throws {
        var damage = 0
        if count == 0 {
            tail = head
            tailSeq = header.nextSeq
            trail.removeAll()
        } else if let after = trail.oldest {
            tail = after.offset
            tailSeq = after.seq
            countDamage(after.damageBefore, before: after.seq)
        } else if let after = try nextRecord(from: next, damage: &damage) {
            countDamage(damage, before: after.seq)
            tail = after.offset
            tailSeq = after.seq
        } else {
            count = 0
            tail = head
            tailSeq = header.nextSeq
        }
    }

    /// `advanceTail` over whole trail entries through `seq`, an entry at a time: the records
    /// are not read again; the ring distance and the header's hint are updated once. What is left
    /// (an entry `seq` falls inside, records off the trail) is `advanceTail`'s.
    private func advanceAlongTrail(through seq: UInt64) throws {
        var moved = false
        while let t = trail.oldest, t.offset == tail, t.seq == tailSeq, t.lastSeq <= seq, t.count <= count {
            trail.removeOldest()
            count -= t.count
            countDamage(t.damageWithin, before: t.lastSeq)
            moved = true
            try placeTail(after: t.end)
        }
        guard moved else { return }
        used = ringDistance(from: tail, to: head, full: count > 0)
        header.tailSeq = tailSeq
        headerDirty = true
    }

    /// Moves the tail past the oldest record. Returns false when the spool is empty.
    private func advanceTail() throws -> Bool {
        guard count > 0 else { tail = head; return false }
        var damage = 0
        let next: Int64
        var removed = tailSeq
        if let t = trail.oldest, t.offset == tail, t.seq == tailSeq, t.count == 1 {
            next = t.end
            trail.removeOldest()
        } else {
            trail.removeAll()
            guard let first = try nextRecord(from: tail, damage: &damage) else {
                count = 0
                tail = head
                used = 0
                return false
            }
            next = end(of: first)
            removed = first.seq
        }
        countDamage(damage, before: removed)
        count -= 1
        try placeTail(after: next)
        used = ringDistance(from: tail, to: head, full: count > 0)
        header.tailSeq = tailSeq
        headerDirty = true
        return true
    }

    // MARK: writing

    private func flushPending() throws {
        guard !pending.isEmpty else { return }
        invalidateReadCache(pendingAt, pending.count)
        try file.write(pending, at: pendingAt)
        pendingAt += Int64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    /// Places `bytes` (a frame, or padding) at the head, wrapping or dropping the oldest records
    /// as needed. Returns false if there is no room and the policy rejects.
    private func place(_ size: Int64, dropAllowed: Bool) throws -> Bool {
        while true {
            if count == 0 {
                tail = head
                used = 0
                if dataEnd - head >= size { return true }
                try wrap()
                tail = head
                continue
            }
            if head > tail {
                // Live records in [tail, head): free space at the end, then before the tail.
                if dataEnd - head >= size { return true }
                if tail - SpoolFormat.dataStart >= size {
                    used += dataEnd - head
                    try wrap()
                    continue
                }
            } else if head < tail, tail - head >= size {
                return true
            }
            guard dropAllowed else { return false }
            try flushPending()
            if try advanceTail() { header.dropped += 1 }
        }
    }

    /// Marks the end of the ring at the head and continues at the start of the data region.
    private func wrap() throws {
        if dataEnd - head >= 8 {
            if pending.isEmpty { pendingAt = head }
            pending.appendLE(SpoolFormat.wrapMarker)
            pending.appendLE(UInt32(0))
        }
        try flushPending()
        head = SpoolFormat.dataStart
        pendingAt = head
    }

    @discardableResult
    public func append(_ payloads: [[UInt8]]) throws -> ClosedRange<UInt64>? {
        guard !payloads.isEmpty else { return nil }
        return try lock.withLock {
            try checkOpen()
            guard !options.readOnly else { throw SpoolError(.readOnly, path: path, "is open read-only") }
            let ringSize = dataEnd - SpoolFormat.dataStart
            for p in payloads where p.count > SpoolFormat.maxPayload || SpoolFormat.frameSize(p.count) > ringSize / 4 {
                throw SpoolError(.recordTooLarge, path: path, "a record of \(p.count) bytes is larger than the spool takes (\(min(SpoolFormat.maxPayload, Int(ringSize / 4) - SpoolFormat.frameHeader)) bytes)")
            }
            if options.policy == .rejectNewest {
                let needed = payloads.reduce(Int64(0)) { $0 + SpoolFormat.frameSize($1.count) } + SpoolFormat.sector
                if ringSize - used < needed + (dataEnd - head) {
                    // Exact check: simulate placement without dropping.
                    if !fits(payloads) {
                        header.dropped += UInt64(payloads.count)
                        headerDirty = true
                        throw SpoolError(.full, path: path, "is full (\(used) of \(ringSize) bytes unacknowledged); \(payloads.count) new record(s) rejected")
                    }
                }
            }
            let first = header.nextSeq
            // Bytes a failed write left pending stay where they belong; new frames follow them.
            if pending.isEmpty { pendingAt = head }
            for payload in payloads {
                let size = SpoolFormat.frameSize(payload.count)
                _ = try place(size, dropAllowed: true)
                if pending.isEmpty { pendingAt = head }
                SpoolFormat.appendFrame(seq: header.nextSeq, payload: payload, to: &pending)
                if count == 0 { tail = head; tailSeq = header.nextSeq }
                head += size
                used += size
                count += 1
                newestSeq = header.nextSeq
                header.nextSeq += 1
            }
            try commit(sync: options.sync == .always, force: false)
            return first...(header.nextSeq - 1)
        }
    }

    /// Whether `payloads` fit without dropping anything (for reject-newest).
    private func fits(_ payloads: [[UInt8]]) -> Bool {
        var h = head, c = count
        for payload in payloads {
            let size = SpoolFormat.frameSize(payload.count)
            let wrapped = c > 0 && h <= tail
            if !wrapped {
                if dataEnd - h >= size { h += size; c += 1; continue }
                if c == 0 || tail - SpoolFormat.dataStart >= size { h = SpoolFormat.dataStart + size; c += 1; continue }
                return false
            }
            if tail - h >= size { h += size; c += 1; continue }
            return false
        }
        return true
    }

    /// Writes pending bytes; at a sync point pads to the sector, fdatasyncs and records the header.
    private func commit(sync: Bool, force: Bool) throws {
        let now = clock.nanoseconds()
        let due = force || sync || (options.sync == .batch && now &- lastSync >= UInt64(options.syncIntervalMilliseconds) * 1_000_000)
        if due && newestSeq > durableThrough && options.sync != .none || (force && head % SpoolFormat.sector != 0) {
            let pad = head % SpoolFormat.sector == 0 ? 0 : SpoolFormat.sector - head % SpoolFormat.sector
            if pad > 0, try place(pad, dropAllowed: true) {
                if pending.isEmpty { pendingAt = head }
                pending.append(contentsOf: repeatElement(0, count: Int(pad)))
                head += pad
                used += pad
                if count == 0 {
                    tail = head
                    used = 0
                }
            }
        }
        try flushPending()
        if due {
            // The header only holds hints (recovery rescans the records), so it is rewritten at
            // most once per interval, and only when acknowledgements or counters changed; and at
            // once for the first drop the file records, so that after a crash a ring that has
            // dropped readings never says it has not.
            let interval = UInt64(options.syncIntervalMilliseconds) * 1_000_000
            let firstDrop = header.dropped > 0 && writtenDropped == 0
            if force || firstDrop || (headerDirty && now &- lastHeaderWrite >= interval) {
                header.tailSeq = count > 0 ? tailSeq : header.nextSeq
                header.generation += 1
                activeSlot = 1 - activeSlot
                try file.write(header.encoded(), at: Int64(activeSlot * SpoolFormat.slotSize))
                headerDirty = false
                lastHeaderWrite = now
                writtenDropped = header.dropped
            }
            if options.sync != .none { try file.datasync() }
            durableThrough = newestSeq
            lastSync = now
        }
    }

    /// After `close()` the descriptor may already belong to another file (a reload opens the
    /// spool again): every call that would touch it throws instead. Called with the lock held.
    private func checkOpen() throws {
        if closed { throw SpoolError(.closed, path: path, "is closed; nothing more is written to it") }
    }

    // MARK: reading and acknowledging

    public func peek(maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord] {
        try peek(after: 0, maxRecords: maxRecords, maxBytes: maxBytes)
    }

    /// Where the record after `cursor.seq` starts, remembered from the last peek so that a
    /// caller walking forward (the MQTT uplink) does not re-read what it has in flight.
    private var cursor: (seq: UInt64, offset: Int64)?

    public func peek(after seq: UInt64, maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord] {
        var out: [SpoolRecord] = []
        var bytes = 0
        try visit(after: seq, maxRecords: maxRecords) { rseq, payload in
            if !out.isEmpty && bytes + payload.count > maxBytes { return false }
            bytes += payload.count
            out.append(SpoolRecord(seq: rseq, payload: Array(payload)))
            return true
        }
        return out
    }

    /// Records after `seq` in place (no copies), checked once: acknowledging them later follows
    /// the trail this walk leaves.
    public func visit(after seq: UInt64, maxRecords: Int, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool) throws {
        try lock.withLock {
            // Nothing after the newest record: return without reading (the uplink asks this
            // whenever everything is in flight, and a walk from the head would cross the ring).
            try checkOpen()
            guard count > 0, maxRecords > 0, seq < newestSeq else { return }
            try flushPending()
            var p = tail
            if seq >= tailSeq, let c = cursor, c.seq == seq, inLiveRange(c.offset) || c.offset == head { p = c.offset }
            var taken = 0
            var seen = 0
            var trail = self.trail
            var walked = cursor
            defer {
                self.trail = trail
                cursor = walked
            }
            // The records this walk hands to `body`, one trail entry when it ends.
            var span = TrailEntry(from: 0, offset: 0, seq: 0, end: 0, lastSeq: 0, count: 0, damageBefore: 0, damageWithin: 0)
            defer { if span.count > 0 { trail.extend(span, tail: tail) } }
            while taken < maxRecords, seen < count {
                var damage = 0
                let from = p
                guard let r = try nextRecord(from: p, damage: &damage) else { break }
                let after = end(of: r)
                // Out of order: a record recovery cut away only in a writable open (a read-only
                // one leaves the file as it is); never handed out, not one of `count`.
                if r.seq <= walked?.seq ?? 0 && taken > 0 {
                    p = after
                    continue
                }
                seen += 1
                if r.seq <= seq {
                    p = after
                    continue
                }
                guard try body(r.seq, r.payload) else { break }
                if span.count == 0 {
                    span = TrailEntry(from: from, offset: r.offset, seq: r.seq, end: after, lastSeq: r.seq, count: 1, damageBefore: damage, damageWithin: 0)
                } else {
                    span.end = after
                    span.lastSeq = r.seq
                    span.count += 1
                    span.damageWithin += damage
                }
                taken += 1
                p = after
                walked = (r.seq, p)
                if r.seq == newestSeq { break }
            }
        }
    }

    /// Visits every unacknowledged record, oldest first, without holding them all in memory;
    /// `body` returns false to stop.
    public func forEachRecord(_ body: (SpoolRecord) throws -> Bool) throws {
        try visit(after: 0, maxRecords: .max) { seq, payload in try body(SpoolRecord(seq: seq, payload: Array(payload))) }
    }

    public func acknowledge(through seq: UInt64) throws {
        try lock.withLock {
            try checkOpen()
            guard !options.readOnly else { throw SpoolError(.readOnly, path: path, "is open read-only") }
            try flushPending()
            try advanceAlongTrail(through: seq)
            while count > 0, tailSeq <= seq {
                guard try advanceTail() else { break }
            }
            if seq > header.ackedThrough {
                header.ackedThrough = min(seq, header.nextSeq - 1)
                headerDirty = true
            }
            try commit(sync: false, force: false)
        }
    }

    public func sync() throws {
        try lock.withLock {
            try checkOpen()
            guard !options.readOnly else { return }
            try commit(sync: true, force: true)
        }
    }

    public func flushIfDue() throws {
        try lock.withLock {
            try checkOpen()
            guard !options.readOnly else { return }
            try commit(sync: false, force: false)
        }
    }

    public func waitUntilDurable(_ seq: UInt64) throws {
        let wait: UInt64 = lock.withLock {
            guard seq > durableThrough, options.sync == .batch else { return 0 }
            let interval = UInt64(options.syncIntervalMilliseconds) * 1_000_000
            let elapsed = clock.nanoseconds() &- lastSync
            return elapsed >= interval ? 0 : interval - elapsed
        }
        if wait > 0 { clock.sleep(microseconds: wait / 1000) }
        try lock.withLock {
            try checkOpen()
            if seq > durableThrough && !options.readOnly { try commit(sync: true, force: false) }
        }
    }

    public var stats: SpoolStats {
        lock.withLock {
            SpoolStats(capacityBytes: dataEnd, usedBytes: used, recordCount: count,
                       oldestSeq: count > 0 ? tailSeq : nil, newestSeq: count > 0 ? newestSeq : nil,
                       acknowledgedThrough: header.ackedThrough, dropped: header.dropped, damaged: header.damaged,
                       durableThrough: durableThrough)
        }
    }
}
