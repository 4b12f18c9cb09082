/// One record in a spool: a payload and the sequence number the spool gave it.
public struct SpoolRecord: Sendable, Equatable {
    public var seq: UInt64
    public var payload: [UInt8]

    public init(seq: UInt64, payload: [UInt8]) {
        self.seq = seq
        self.payload = payload
    }
}

/// When a spool is full.
public enum SpoolFullPolicy: String, Sendable, CaseIterable {
    /// Drop the oldest unacknowledged records to make room (the default: fresh data matters most).
    case dropOldest = "drop-oldest"
    /// Refuse the new records (`SpoolError.full`).
    case rejectNewest = "reject-newest"
}

/// How appends reach the disk.
public enum SpoolSyncMode: String, Sendable, CaseIterable {
    /// `append` returns after the records are on disk (fdatasync per append call).
    case always
    /// Group commit: at most one fdatasync per interval; `waitUntilDurable` waits for one.
    case batch
    /// Never fdatasync: the kernel writes back when it will (about 30 s on Linux).
    case none
}

/// A spool's counters, as `tagoedge spool inspect` shows them.
public struct SpoolStats: Sendable, Equatable {
    public var capacityBytes: Int64
    public var usedBytes: Int64
    /// Unacknowledged records.
    public var recordCount: Int
    public var oldestSeq: UInt64?
    public var newestSeq: UInt64?
    /// Every record up to this sequence number has been acknowledged.
    public var acknowledgedThrough: UInt64
    /// Records dropped by the full policy, over the spool's life.
    public var dropped: UInt64
    /// Damaged records found and cut away, over the spool's life.
    public var damaged: UInt64
    /// Every record up to this sequence number is on disk.
    public var durableThrough: UInt64

    public init(capacityBytes: Int64, usedBytes: Int64, recordCount: Int, oldestSeq: UInt64?, newestSeq: UInt64?,
                acknowledgedThrough: UInt64, dropped: UInt64, damaged: UInt64, durableThrough: UInt64) {
        self.capacityBytes = capacityBytes
        self.usedBytes = usedBytes
        self.recordCount = recordCount
        self.oldestSeq = oldestSeq
        self.newestSeq = newestSeq
        self.acknowledgedThrough = acknowledgedThrough
        self.dropped = dropped
        self.damaged = damaged
        self.durableThrough = durableThrough
    }
}

/// Why a spool operation failed. Carries the path so logs say which spool.
public struct SpoolError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Another process holds the spool.
        case locked
        /// The spool is full and the policy is reject-newest.
        case full
        /// A record larger than the spool can hold.
        case recordTooLarge
        /// A system call failed (errno in the message).
        case io
        /// Opened read-only.
        case readOnly
        /// Used after `close()`: nothing reaches the file any more.
        case closed
    }

    public var kind: Kind
    public var path: String
    public var message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String { "spool \(path): \(message)" }
}

/// A bounded, ordered buffer of records waiting for the cloud: readings are appended, the uplink
/// peeks the oldest, and acknowledges them once the cloud has them. Implementations are
/// thread safe (one appender and one uplink may call concurrently).
public protocol Spool: AnyObject {
    /// Appends records in order and returns the sequence numbers given to the first and last.
    /// Under `.always`, returns once they are on disk. Throws `SpoolError.full` under reject-newest.
    @discardableResult
    func append(_ payloads: [[UInt8]]) throws -> ClosedRange<UInt64>?
    /// The oldest unacknowledged records, at most `maxRecords` of them and at most `maxBytes` of payload
    /// (at least one record is returned if any is waiting, whatever its size).
    func peek(maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord]
    /// Like `peek`, but only records with a sequence number above `seq` (the uplink's cursor
    /// past what it has in flight).
    func peek(after seq: UInt64, maxRecords: Int, maxBytes: Int) throws -> [SpoolRecord]
    /// Calls `body` with each record after `seq`, oldest first, at most `maxRecords` of them,
    /// without copying them: the bytes are valid only during the call. `body` returns false to
    /// stop before taking that record (a later call after the last taken one starts with it). It
    /// runs under the spool's lock: it must not call the spool.
    func visit(after seq: UInt64, maxRecords: Int, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool) throws
    /// Acknowledges every record up to and including `seq`; their space is reused.
    func acknowledge(through seq: UInt64) throws
    /// Makes everything appended so far durable now.
    func sync() throws
    /// Under `.batch`, runs the group commit if the interval has passed (call from a timer).
    func flushIfDue() throws
    /// Waits until records through `seq` are durable (under `.batch`, at most one interval).
    func waitUntilDurable(_ seq: UInt64) throws
    var stats: SpoolStats { get }
}
