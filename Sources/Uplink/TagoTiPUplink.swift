#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoTiP

/// How the TagoTiP uplink batches, waits and retries.
public struct TagoTiPUplinkSettings: Sendable {
    /// The device serial (`$tip/{serial}/…`, `/v1/tip/{serial}`): 1 to 100 of `[A-Za-z0-9_-]`.
    public var serial = "tagoedge"
    /// Readings per message at most (TagoTiP takes 100 variables per body).
    public var maxReadings = Tip.maxVariables
    /// How long an answer may take before the message is sent again with the same counter.
    public var ackTimeoutMilliseconds: Int64 = 10_000
    /// Sends of one message before the connection is dropped and made again.
    public var maxAttempts = 3
    public var backoff = Backoff()
    /// After `invalid_token`, `auth_failed`, `device_not_found` or a refused login.
    public var authBackoffMilliseconds: Int64 = 300_000
    /// Where the `!N` counter's reserved ceiling is kept across restarts.
    public var counterFile: String?
    /// Counters reserved per write of `counterFile`: the file is written once per this many
    /// messages, not once per message (an SD card's wear), and a restart skips at most this many.
    public var counterBlock: UInt32 = 1_000

    public init() {}
}

/// What carries TagoTiP bodies to the server and its answers back: the MQTT binding, the HTTP
/// binding (TagoTipServers.md). One thread uses it.
public protocol TipTransport: AnyObject {
    /// For logs: binding and address, never a credential.
    var address: String { get }
    /// Whether `!N` travels with each body and comes back on the answer (MQTT); over HTTP each
    /// answer belongs to its request.
    var carriesCounter: Bool { get }
    var isOpen: Bool { get }
    func open() throws(TipTransportError)
    func push(counter: UInt32, body: [UInt8]) throws(TipTransportError)
    /// Answers and commands that arrived, waiting up to `waitMilliseconds` for the first.
    func receive(waitMilliseconds: Int32) throws(TipTransportError) -> [TipAck]
    func close()
}

public struct TipTransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case refused, misdirected, failed }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { message }
}

/// Drains the spool as TagoTiP PUSH bodies, one message at a time. A reading leaves the spool
/// when the server answered `OK` for its message, never on a broker's PUBACK. Answers are read as
/// TagoTiP.md §9.4 advises:
/// - `invalid_payload`, `payload_too_large`: the message is split in halves until the refused
///   reading is alone; that one goes to the dead-letter file with the server's reason.
/// - `invalid_seq`: on a message sent again with the same counter (a replay of one the server
///   has), delivered; otherwise the counter is behind the server's (a lost counter file, a
///   restored SD image): it jumps ahead, further each time, and the message goes again.
/// - `rate_limited`, `server_error`: back off, keep everything.
/// - `invalid_token`, `auth_failed`, `device_not_found`: keep everything, say so, wait long.
/// Readings TagoTiP cannot carry (a name outside `[a-z0-9_]`, NaN, a control character, an empty
/// string, a unit over 25 bytes) are dead-lettered with the reason before anything is sent.
/// `CMD|…` answers reach the agent through `takeDownlink`.
public final class TagoTiPUplink: Uplink {
    public let settings: TagoTiPUplinkSettings
    private let spool: Spool
    private let transport: TipTransport
    private let deadLetters: DeadLetterFile
    private let clock: MonotonicClock & WallClock
    private let clockGuard: ClockGuard?
    private let random: () -> Double

    private struct Message {
        var counter: UInt32
        var body: [UInt8]
        var first: UInt64
        var last: UInt64
        var readings: [(seq: UInt64, reading: Reading)]
        var deadLettered: Int
        var attempts = 0
        var sentAt: UInt64 = 0
        /// To be sent at the next step (new, or the connection it went out on is gone).
        var due = true
    }
    private var pending: Message?
    private var limit: Int
    private var counter: UInt32
    private var counterCeiling: UInt32
    private var seqJump: UInt32 = 1_000
    private var attempt = 0
    private var nextTry: UInt64 = 0
    private var waitReason = ""
    private var waitKind = UplinkStep.WaitKind.transient
    private var downlink: [(topic: String, payload: [UInt8])] = []
    public private(set) var delivered = 0
    /// Messages pushed, retries included (each a request in TagoIO's limits).
    public private(set) var requestsSent = 0
    /// Every `ERR` answer, in order (for status and tests).
    public private(set) var errors: [TipErrorCode] = []
    /// The counter of the last message sent.
    public var lastCounter: UInt32 { counter }

    public init(spool: Spool, transport: TipTransport, settings: TagoTiPUplinkSettings, deadLetters: DeadLetterFile,
                clock: MonotonicClock & WallClock = SystemClock(), clockGuard: ClockGuard? = nil,
                random: @escaping () -> Double = { Double.random(in: 0..<1) }) {
        self.spool = spool
        self.transport = transport
        self.settings = settings
        self.deadLetters = deadLetters
        self.clock = clock
        self.clockGuard = clockGuard
        self.random = random
        self.limit = max(1, min(settings.maxReadings, Tip.maxVariables))
        // The counter starts above what was reserved before; without a file (first start, or a
        // lost one), from the seconds since 2020, which a previous life of this gateway sending
        // one message a second or less has not reached. invalid_seq corrects the rest.
        let saved = settings.counterFile.flatMap { try? readTextFile($0) }.flatMap { UInt32($0.split(separator: "\n").first ?? "") }
        let seconds = clock.now().millisecondsSince1970 / 1_000 - 1_577_836_800
        counter = saved ?? UInt32(clamping: max(seconds, 0))
        counterCeiling = counter
    }

    public func takeDownlink() -> [(topic: String, payload: [UInt8])] {
        defer { downlink.removeAll() }
        return downlink
    }

    public func close() {
        transport.close()
    }

    public func step() -> UplinkStep {
        let now = clock.nanoseconds()
        if now < nextTry { return waiting(now) }
        if !transport.isOpen {
            do {
                try transport.open()
            } catch {
                return fail(error)
            }
        }
        if pending == nil {
            switch build() {
            case .none:
                // Nothing to send: still read what arrived (commands come at any time).
                do {
                    takeCommands(try transport.receive(waitMilliseconds: 0))
                } catch {
                    return fail(error)
                }
                return .idle
            case .some(.done(let step)): return step
            case .some(.built): break
            }
        }
        guard var message = pending else { return .idle }
        if message.due || clock.nanoseconds() &- message.sentAt > UInt64(settings.ackTimeoutMilliseconds) * 1_000_000 {
            if !message.due, message.attempts % settings.maxAttempts == 0 {
                transport.close()
                message.due = true
                pending = message
                return backOff("no answer to message !\(message.counter) after \(settings.maxAttempts) sends; reconnecting. Readings are kept", kind: .transient)
            }
            do {
                try transport.push(counter: message.counter, body: message.body)
                requestsSent += 1
            } catch {
                return fail(error)
            }
            message.attempts += 1
            message.due = false
            message.sentAt = clock.nanoseconds()
            pending = message
        }
        let answers: [TipAck]
        do {
            answers = try transport.receive(waitMilliseconds: 100)
        } catch {
            return fail(error)
        }
        takeCommands(answers)
        for ack in answers where ack.status != .cmd && ack.status != .pong {
            guard let m = pending, !transport.carriesCounter || ack.counter == m.counter else { continue }  // a late answer to an earlier send
            return answered(ack, m)
        }
        return .wait(milliseconds: 0, reason: "waiting for TagoTiP's answer to !\(message.counter)", kind: .transient)
    }

    /// `CMD|…` answers go to the agent, as downlink messages.
    private func takeCommands(_ answers: [TipAck]) {
        for ack in answers where ack.status == .cmd {
            if let detail = ack.detail { downlink.append(("tagotip CMD", Array(detail.utf8))) }
        }
    }

    // MARK: building a message

    private enum Built { case built, done(UplinkStep) }

    /// The next message from the oldest readings: readings TagoTiP cannot carry are dead-lettered
    /// on the way. Nil when the spool is empty.
    private func build() -> Built? {
        let records: [SpoolRecord]
        do {
            records = try spool.peek(maxRecords: limit, maxBytes: 1 << 20)
        } catch {
            return .done(.wait(milliseconds: 1_000, reason: "spool: \(error)", kind: .spool))
        }
        guard let firstSeq = records.first?.seq else { return nil }
        // "!4294967295|" and an LF at most around the body.
        var writer = TipBodyWriter(maxBytes: Tip.maxFrameBytes - 12)
        var readings: [(UInt64, Reading)] = []
        var last: UInt64 = 0
        var deadLettered = 0
        for record in records {
            guard var reading = ReadingCodec.decode(record.payload) else {
                try? deadLetters.record(seq: record.seq, status: nil, reason: "the spool record is not a reading this version can decode",
                                        object: .string("\(record.payload.count) bytes"), at: clock.now())
                deadLettered += 1
                last = record.seq
                continue
            }
            if let clockGuard, !clockGuard.resolve(&reading) { break }  // held until the clock is trusted
            let encoded: [UInt8]
            do {
                encoded = try reading.tipVariable().encoded()
            } catch {
                try? deadLetters.record(seq: record.seq, status: nil, reason: "TagoTiP cannot carry this reading: \(error.what)",
                                        object: reading.dataObject, at: clock.now())
                deadLettered += 1
                last = record.seq
                continue
            }
            if !writer.append(encoded) {
                if writer.count > 0 { break }
                try? deadLetters.record(seq: record.seq, status: nil, reason: "TagoTiP cannot carry this reading: \(encoded.count) bytes alone exceed a frame",
                                        object: reading.dataObject, at: clock.now())
                deadLettered += 1
                last = record.seq
                continue
            }
            readings.append((record.seq, reading))
            last = record.seq
        }
        guard last > 0 else {
            return .done(.wait(milliseconds: 1_000, reason: "readings held until the system clock is trusted", kind: .transient))
        }
        guard let body = writer.body else {
            do {
                try spool.acknowledge(through: last)
            } catch {
                return .done(.wait(milliseconds: 1_000, reason: "spool: \(error)", kind: .spool))
            }
            return .done(.sent(count: 0, through: last, deadLettered: deadLettered))
        }
        pending = Message(counter: nextCounter(), body: body, first: firstSeq, last: last, readings: readings, deadLettered: deadLettered)
        return .built
    }

    /// The next `!N`, strictly above every one sent before, also across restarts: the file holds
    /// a ceiling reserved ahead, written once per `counterBlock` messages.
    private func nextCounter() -> UInt32 {
        if counter == UInt32.max {
            // §10.1: at 0xFFFFFFFF the device must reset with the server; start again low.
            counter = 0
            counterCeiling = 0
        }
        counter += 1
        if counter > counterCeiling || counterCeiling == 0 {
            counterCeiling = counter.addingReportingOverflow(settings.counterBlock).overflow ? UInt32.max : counter + settings.counterBlock
            if let file = settings.counterFile { writeFileAtomically(file, Array("\(counterCeiling)\n".utf8)) }
        }
        return counter
    }

    // MARK: answers

    private func answered(_ ack: TipAck, _ m: Message) -> UplinkStep {
        if ack.status == .ok { return accept(m) }
        let code = ack.error ?? .other("")
        errors.append(code)
        pending = nil
        switch code {
        case .invalidPayload, .payloadTooLarge:
            if m.readings.count > 1 {
                limit = max(1, m.readings.count / 2)
                return .wait(milliseconds: 0, reason: "TagoTiP refused a message of \(m.readings.count) readings (\(code)); sending it in halves", kind: .transient)
            }
            let (seq, reading) = m.readings[0]
            try? deadLetters.record(seq: seq, status: nil, reason: "TagoTiP refused it: \(code)", object: reading.dataObject, at: clock.now())
            do {
                try spool.acknowledge(through: m.last)
            } catch {
                return .wait(milliseconds: 1_000, reason: "spool: \(error)", kind: .spool)
            }
            return .sent(count: 0, through: m.last, deadLettered: m.deadLettered + 1)
        case .invalidSeq:
            if m.attempts > 1 { return accept(m) }  // a replay of a message the server has
            counter = counter.addingReportingOverflow(seqJump).overflow ? UInt32.max - 1 : counter + seqJump
            counterCeiling = counter
            seqJump = seqJump > UInt32.max / 4 ? seqJump : seqJump * 2
            return .wait(milliseconds: 0, reason: "TagoTiP's counter is ahead of this gateway's; resynchronising at !\(counter + 1)", kind: .transient)
        case .rateLimited:
            return backOff("TagoTiP: rate_limited; readings are kept", kind: .rateLimited)
        case .invalidToken, .authFailed, .deviceNotFound:
            let wait = settings.authBackoffMilliseconds
            nextTry = clock.nanoseconds() + UInt64(wait) * 1_000_000
            waitReason = "TagoTiP refused the device (\(code)): check the authorization token and that serial '\(settings.serial)' belongs to it. Readings are kept"
            waitKind = .unauthorized
            return .wait(milliseconds: wait, reason: waitReason, kind: .unauthorized)
        default:
            return backOff("TagoTiP answered ERR \(code); readings are kept", kind: .transient)
        }
    }

    private func accept(_ m: Message) -> UplinkStep {
        do {
            try spool.acknowledge(through: m.last)
        } catch {
            return .wait(milliseconds: 1_000, reason: "spool: \(error)", kind: .spool)
        }
        pending = nil
        attempt = 0
        seqJump = 1_000
        limit = min(max(1, min(settings.maxReadings, Tip.maxVariables)), limit * 2)
        delivered += m.readings.count
        return .sent(count: m.readings.count, through: m.last, deadLettered: m.deadLettered)
    }

    private func fail(_ error: TipTransportError) -> UplinkStep {
        transport.close()
        if var m = pending {
            m.due = true  // sent again on the next connection, with the same counter
            pending = m
        }
        switch error.kind {
        case .refused:
            nextTry = clock.nanoseconds() + UInt64(settings.authBackoffMilliseconds) * 1_000_000
            waitReason = "\(error). Readings are kept; check the authorization token"
            waitKind = .unauthorized
            return .wait(milliseconds: settings.authBackoffMilliseconds, reason: waitReason, kind: .unauthorized)
        case .misdirected:
            return backOff("\(error). Readings are kept; check the TagoTiP address", kind: .misdirected)
        case .failed:
            return backOff("\(error). Readings are kept", kind: .transient)
        }
    }

    private func backOff(_ reason: String, kind: UplinkStep.WaitKind) -> UplinkStep {
        let wait = fullJitterBackoff(attempt: attempt, baseMilliseconds: settings.backoff.baseMilliseconds, capMilliseconds: settings.backoff.capMilliseconds, random: random)
        attempt += 1
        nextTry = clock.nanoseconds() + UInt64(max(wait, 0)) * 1_000_000
        waitReason = reason
        waitKind = kind
        return .wait(milliseconds: wait, reason: reason, kind: kind)
    }

    private func waiting(_ now: UInt64) -> UplinkStep {
        .wait(milliseconds: Int64((nextTry - now) / 1_000_000) + 1, reason: waitReason, kind: waitKind)
    }
}

extension Reading {
    /// This reading as a TagoTiP variable, or why it cannot be one (before anything is sent).
    public func tipVariable() throws(TipError) -> TipVariable {
        guard Tip.isValidName(variable) else {
            throw TipError(.unrepresentable, "the variable name '\(variable)' is not 1 to 100 of [a-z0-9_]")
        }
        let tipValue: TipValue
        switch value {
        case .number(let v):
            guard let text = Tip.formatNumber(v) else { throw TipError(.unrepresentable, "\(variable) is \(v), which TagoTiP cannot carry") }
            tipValue = .number(text)
        case .bool(let b): tipValue = .bool(b)
        case .string(let s): tipValue = .string(s)
        }
        guard time.millisecondsSince1970 >= 0 else { throw TipError(.unrepresentable, "the time of \(variable) is before 1970") }
        return TipVariable(name: variable, value: tipValue, unit: unit, timestamp: UInt64(time.millisecondsSince1970),
                           metadata: metadata.sorted { $0.key < $1.key }.map { TipPair($0.key, $0.value) })
    }
}
