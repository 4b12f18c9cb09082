import EdgeCore
import TagoKit

/// How the HTTP uplink batches and retries.
public struct UplinkPolicy: Sendable, Equatable {
    /// Readings per `POST /data` at most (the body also stays under TagoIO's 200 kB).
    public var maxRecords = 500
    public var maxBytes = tagoMaxRequestBytes
    /// On transport errors and 5xx.
    public var backoff = Backoff()
    /// After 401/403: keep every reading, wait this long, and say so loudly.
    public var authBackoffMilliseconds: Int64 = 300_000

    public init() {}
}

/// What one step of the uplink did, for logs, status and tests.
public enum UplinkStep: Sendable, Equatable {
    /// Nothing waiting.
    case idle
    /// `count` readings accepted by TagoIO (through `seq`), `deadLettered` set aside.
    case sent(count: Int, through: UInt64, deadLettered: Int)
    /// Try again after `milliseconds`: the reason is the error's description (no token in it).
    case wait(milliseconds: Int64, reason: String, kind: WaitKind)

    public enum WaitKind: Sendable, Equatable {
        case transient, rateLimited, unauthorized, spool
        /// The server answered like no TagoIO would (404, a redirect, HTML): a wrong address.
        case misdirected
    }
}

/// Drains the spool into TagoIO's `POST /data` in batches. Readings leave the spool only when
/// TagoIO answered 2xx with its envelope for them; a batch refused with a 400 carrying TagoIO's
/// validation message (or a 413) is split in halves until the refused readings are alone, and
/// those go to the dead-letter file so the rest keeps flowing. Any other answer (404, a redirect,
/// a body that is not TagoIO's JSON, 5xx, no answer) keeps every reading and backs off.
///
/// Delivery is at-least-once: a request whose response is lost (a timeout, a reset after the
/// server stored it) is sent again, so duplicates are bounded by one batch per lost response.
/// Not thread safe: one caller steps it.
public final class HTTPUplink {
    public let policy: UplinkPolicy
    private let spool: Spool
    private let device: TagoDevice
    private let deadLetters: DeadLetterFile
    private let clock: WallClock
    private let clockGuard: ClockGuard?
    private var random: () -> Double
    private var attempt = 0
    /// Halved on 400 or 413 to isolate what the server refuses; grows back on success.
    private var batchLimit: Int
    public private(set) var requests = 0
    public private(set) var delivered = 0

    /// - Parameter clockGuard: resolves readings stamped before the clock was trusted; while it is
    ///   not, such readings wait.
    public init(spool: Spool, device: TagoDevice, deadLetters: DeadLetterFile, policy: UplinkPolicy = UplinkPolicy(),
                clock: WallClock = SystemClock(), clockGuard: ClockGuard? = nil, random: @escaping () -> Double = { Double.random(in: 0..<1) }) {
        self.clockGuard = clockGuard
        self.spool = spool
        self.device = device
        self.deadLetters = deadLetters
        self.policy = policy
        self.clock = clock
        self.random = random
        batchLimit = policy.maxRecords
    }

    /// Full-jitter backoff for the current attempt, then counts the attempt.
    func backoff() -> Int64 {
        defer { attempt += 1 }
        return fullJitterBackoff(attempt: attempt, baseMilliseconds: policy.backoff.baseMilliseconds, capMilliseconds: policy.backoff.capMilliseconds, random: random)
    }

    /// Peeks one batch, sends it, and acknowledges what TagoIO accepted.
    public func step() -> UplinkStep {
        let records: [SpoolRecord]
        do {
            records = try spool.peek(maxRecords: batchLimit, maxBytes: policy.maxBytes)
        } catch {
            return .wait(milliseconds: 1_000, reason: "\(error)", kind: .spool)
        }
        guard !records.isEmpty else { return .idle }

        // Build the body: valid data objects up to the byte limit; the rest waits for the next batch.
        // Each reading is serialized once, straight into the request body.
        var body: [UInt8] = [UInt8(ascii: "[")]
        body.reserveCapacity(min(policy.maxBytes, records.count * 128))
        var objects: [(seq: UInt64, start: Int, end: Int)] = []
        var rejected: [(seq: UInt64, object: JSONValue, reason: String)] = []
        var through: UInt64 = 0
        var scratch: [UInt8] = []
        for r in records {
            guard var reading = ReadingCodec.decode(r.payload) else {
                rejected.append((r.seq, .string("undecodable payload of \(r.payload.count) bytes"), "the spool record is not a reading this version can decode"))
                through = r.seq
                continue
            }
            if let clockGuard, !clockGuard.resolve(&reading) {
                if objects.isEmpty && rejected.isEmpty {
                    return .wait(milliseconds: 5_000, reason: "waiting for the system clock to be synchronised before sending readings", kind: .transient)
                }
                break
            }
            if let problem = tagoReadingProblem(reading) {
                rejected.append((r.seq, reading.dataObject, problem))
                through = r.seq
                continue
            }
            scratch.removeAll(keepingCapacity: true)
            reading.appendDataObjectJSON(to: &scratch)
            if !objects.isEmpty && body.count + scratch.count + 2 > policy.maxBytes { break }
            if !objects.isEmpty { body.append(UInt8(ascii: ",")) }
            objects.append((r.seq, body.count, body.count + scratch.count))
            body.append(contentsOf: scratch)
            through = r.seq
        }
        body.append(UInt8(ascii: "]"))
        do {
            for item in rejected {
                try deadLetters.record(seq: item.seq, status: nil, reason: item.reason, object: item.object, at: clock.now())
            }
        } catch {
            return .wait(milliseconds: 5_000, reason: "cannot write the dead-letter file: \(error)", kind: .spool)
        }
        if objects.isEmpty {
            return acknowledge(through: through, sent: 0, deadLettered: rejected.count)
        }
        requests += 1
        do {
            try device.insert(serialized: body)
        } catch {
            let batch = objects.map { o in
                (seq: o.seq, object: (try? JSONValue.parse(String(decoding: body[o.start..<o.end], as: UTF8.self))) ?? .null)
            }
            return handle(error, batch: batch, rejectedBefore: rejected.count)
        }
        attempt = 0
        batchLimit = min(policy.maxRecords, batchLimit * 2)
        delivered += objects.count
        return acknowledge(through: through, sent: objects.count, deadLettered: rejected.count)
    }

    private func acknowledge(through seq: UInt64, sent: Int, deadLettered: Int) -> UplinkStep {
        do {
            try spool.acknowledge(through: seq)
        } catch {
            return .wait(milliseconds: 1_000, reason: "\(error)", kind: .spool)
        }
        return .sent(count: sent, through: seq, deadLettered: deadLettered)
    }

    private func handle(_ error: TagoError, batch: [(seq: UInt64, object: JSONValue)], rejectedBefore: Int) -> UplinkStep {
        switch error.kind {
        case .rateLimited:
            // Seconds bounded where they are parsed (at most an hour); whole milliseconds here.
            let wait = error.retryAfterSeconds.flatMap { $0.isFinite && $0 >= 0 ? Int64(min($0, 3_600) * 1000) : nil } ?? millisecondsToNextMinute()
            return .wait(milliseconds: max(wait, 1), reason: error.description, kind: .rateLimited)
        case .unauthorized, .forbidden:
            return .wait(milliseconds: policy.authBackoffMilliseconds, reason: "\(error.description). Readings are kept; check the device token.", kind: .unauthorized)
        case .payloadTooLarge where batch.count > 1:
            batchLimit = max(1, batch.count / 2)
            return .wait(milliseconds: 0, reason: error.description, kind: .transient)
        case .validation, .payloadTooLarge:
            // Only TagoIO refusing the data itself (a 400 with its validation message, a 413 for
            // one reading) sets readings aside.
            if batch.count > 1 {
                // Split to find the readings TagoIO refuses; the halves go out one by one.
                batchLimit = max(1, batch.count / 2)
                return .wait(milliseconds: 0, reason: error.description, kind: .transient)
            }
            let item = batch[0]
            do {
                try deadLetters.record(seq: item.seq, status: error.status, reason: error.message, object: item.object, at: clock.now())
            } catch {
                return .wait(milliseconds: 5_000, reason: "cannot write the dead-letter file: \(error)", kind: .spool)
            }
            return acknowledge(through: item.seq, sent: 0, deadLettered: rejectedBefore + 1)
        case .notFound, .invalidResponse:
            // A wrong `api`, a proxy, a captive portal: nothing is wrong with the readings. Keep
            // them all, back off, and say so loudly.
            return .wait(milliseconds: backoff(), reason: "\(error.description). Readings are kept; check [device] api and the network.", kind: .misdirected)
        case .server, .transport:
            return .wait(milliseconds: backoff(), reason: error.description, kind: .transient)
        }
    }

    /// TagoIO's limits reset at the next clock minute.
    private func millisecondsToNextMinute() -> Int64 {
        let now = clock.now().millisecondsSince1970
        return 60_000 - now % 60_000 + 100
    }
}

/// How long an uplink waits after a failure that may pass: exponential backoff with full jitter,
/// a random wait in [0, min(cap, base × 2^attempt)]. One for every uplink, set by `[uplink]`
/// `backoff_base` and `backoff_cap`.
public struct Backoff: Sendable, Equatable {
    public var baseMilliseconds: Int64 = 1_000
    public var capMilliseconds: Int64 = 120_000

    public init() {}

    public init(baseMilliseconds: Int64, capMilliseconds: Int64) {
        self.baseMilliseconds = baseMilliseconds
        self.capMilliseconds = capMilliseconds
    }
}

/// Exponential backoff with full jitter: a random wait in [0, min(cap, base × 2^attempt)], so a
/// fleet that lost its uplink together does not come back together.
func fullJitterBackoff(attempt: Int, baseMilliseconds: Int64, capMilliseconds: Int64, random: () -> Double) -> Int64 {
    let ceiling = min(capMilliseconds, baseMilliseconds << Int64(min(attempt, 30)))
    return Int64(random() * Double(max(ceiling, 1)))
}
