#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import MQTT
import TagoKit

/// How the MQTT uplink publishes.
public struct MQTTUplinkSettings: Sendable, Equatable {
    /// `tago/data/post` by default. (TagoTiP has an uplink of its own: `TagoTiPUplink`.)
    public var topic = "tago/data/post"
    /// Readings per message at most.
    public var batchSize = 100
    /// A message's payload stays under this (a batch is split, never truncated).
    public var maxPayloadBytes = 65_536
    /// Messages published and not yet acknowledged (PUBACK), at most.
    public var inflightWindow = 10
    public var backoff = Backoff()
    public var authBackoffMilliseconds: Int64 = 300_000
    /// `online` on connect; the broker publishes `offline` (last will) if the gateway vanishes.
    public var statusTopic: String?
    public var statusRetain = false
    /// Messages arriving here are handed to the agent (configuration, output commands).
    public var downlinkTopic: String?
    public init() {}
}

/// Publishes the spool over MQTT with QoS 1. Readings leave the spool only when the broker
/// acknowledged their message (PUBACK), in publish order, with at most `inflightWindow` messages
/// outstanding. On a lost connection it reconnects with full-jitter backoff and republishes from
/// the oldest unacknowledged reading, so duplicates are bounded by the in-flight window
/// (`inflightWindow × batchSize` readings). One thread steps it.
public final class MQTTUplink {
    public let settings: MQTTUplinkSettings
    private let spool: Spool
    private var options: MQTTOptions
    private let deadLetters: DeadLetterFile
    private let clock: MonotonicClock & WallClock
    private let random: () -> Double
    private let clockGuard: ClockGuard?
    private var connection: MQTTConnection?
    private var inflight: [(mid: Int32, first: UInt64, last: UInt64, acked: Bool, count: Int)] = []
    /// The newest record in a message encoded (ready or published) on this connection.
    private var encodedThrough: UInt64 = 0
    /// Messages encoded and not yet published, oldest first.
    private var ready: [Message] = []
    /// Buffers of published messages, for the next ones.
    private var spare: [MessageBuffer] = []
    /// Buffers held now, ready or spare (for the tests).
    var messageBuffers: Int { ready.count + spare.count }
    private var attempt = 0
    private var nextConnect: UInt64 = 0
    private var lastError = ""
    private var lastErrorKind = UplinkStep.WaitKind.transient
    private var downlink: [(topic: String, payload: [UInt8])] = []
    private var transcoder = ReadingJSONTranscoder()
    private let topic: String
    public private(set) var published = 0
    /// Messages published (each a request in TagoIO's limits).
    public private(set) var messagesPublished = 0
    public private(set) var acknowledged = 0
    public private(set) var reconnects = 0

    public init(spool: Spool, options: MQTTOptions, settings: MQTTUplinkSettings, deadLetters: DeadLetterFile,
                clock: MonotonicClock & WallClock = SystemClock(), clockGuard: ClockGuard? = nil,
                random: @escaping () -> Double = { Double.random(in: 0..<1) }) {
        self.clockGuard = clockGuard
        self.spool = spool
        self.settings = settings
        self.deadLetters = deadLetters
        self.clock = clock
        self.random = random
        var o = options
        if let status = settings.statusTopic { o.will = MQTTOptions.Will(topic: status, payload: "offline", retain: settings.statusRetain) }
        self.options = o
        self.topic = settings.topic
    }

    /// Messages received on the downlink topic since the last call.
    public func takeDownlink() -> [(topic: String, payload: [UInt8])] {
        defer { downlink.removeAll() }
        return downlink
    }

    public var isConnected: Bool { connection?.isConnected ?? false }

    private func backoff() -> Int64 {
        defer { attempt += 1 }
        return fullJitterBackoff(attempt: attempt, baseMilliseconds: settings.backoff.baseMilliseconds, capMilliseconds: settings.backoff.capMilliseconds, random: random)
    }

    private func dropConnection(_ reason: String, kind: UplinkStep.WaitKind, wait: Int64) {
        connection = nil
        inflight.removeAll()
        spare += ready.map(\.buffer)
        ready.removeAll()
        encodedThrough = 0  // republish from the oldest unacknowledged reading
        lastError = reason
        lastErrorKind = kind
        nextConnect = clock.nanoseconds() + UInt64(max(wait, 0)) * 1_000_000
    }

    private func connect() -> Bool {
        do {
            let c = try MQTTConnection(options: options)
            c.onPublished = { [unowned self] mid in
                if let i = inflight.firstIndex(where: { $0.mid == mid }) { inflight[i].acked = true }
            }
            c.onMessage = { [unowned self] topic, payload in downlink.append((topic, payload)) }
            try c.connect()
            if let topic = settings.downlinkTopic { try c.subscribe(topic) }
            if let status = settings.statusTopic { _ = try c.publish(topic: status, payload: Array("online".utf8), retain: settings.statusRetain) }
            connection = c
            if attempt > 0 { reconnects += 1 }
            attempt = 0
            return true
        } catch {
            switch error.kind {
            case .refused:
                dropConnection("\(error). Readings are kept; check the MQTT username and password (the device token).", kind: .unauthorized, wait: settings.authBackoffMilliseconds)
            default:
                dropConnection(error.description, kind: .transient, wait: backoff())
            }
            return false
        }
    }

    /// Connects if needed, publishes up to the window, runs network I/O for up to
    /// `waitMilliseconds`, and acknowledges in order what the broker has acknowledged.
    public func step(waitMilliseconds: Int32 = 100) -> UplinkStep {
        if connection == nil {
            let now = clock.nanoseconds()
            if now < nextConnect {
                return .wait(milliseconds: Int64((nextConnect - now) / 1_000_000) + 1, reason: lastError, kind: lastErrorKind)
            }
            guard connect() else {
                return .wait(milliseconds: Int64((nextConnect &- clock.nanoseconds()) / 1_000_000) + 1, reason: lastError, kind: lastErrorKind)
            }
        }
        guard let c = connection else { return .idle }
        do {
            try fillWindow(c)
            try c.loop(timeoutMilliseconds: inflight.isEmpty ? 0 : waitMilliseconds)
        } catch {
            dropConnection(error.description, kind: .transient, wait: backoff())
            return .wait(milliseconds: Int64((nextConnect &- clock.nanoseconds()) / 1_000_000) + 1, reason: lastError, kind: .transient)
        }
        // Acknowledge in publish order only.
        var count = 0
        var through: UInt64 = 0
        while let first = inflight.first, first.acked {
            through = first.last
            count += first.count
            inflight.removeFirst()
        }
        if through > 0 {
            do {
                try spool.acknowledge(through: through)
            } catch {
                return .wait(milliseconds: 1_000, reason: "\(error)", kind: .spool)
            }
            acknowledged += count
            return .sent(count: count, through: through, deadLettered: 0)
        }
        if inflight.isEmpty {
            // Caught up: keep one message buffer, give back those a backlog needed.
            if spare.count > 1 { spare.removeSubrange(1...) }
            return .idle
        }
        return .wait(milliseconds: 0, reason: "waiting for PUBACK", kind: .transient)
    }

    /// A message encoded and not yet published: its payload (`length` bytes of `buffer`) and the
    /// spool records it carries. `count` 0: only undecodable records, already dead-lettered.
    private struct Message {
        var buffer: MessageBuffer
        var length: Int
        var first: UInt64
        var last: UInt64
        var count: Int
    }

    /// How many messages are encoded ahead of the window: up to a window's worth, in at most
    /// about 1 MiB of buffers.
    private var lookahead: Int { max(1, min(settings.inflightWindow, (1 << 20) / max(settings.maxPayloadBytes, 1))) }

    /// Fills the window with messages published back to back, then encodes the next ones while
    /// the broker works on them. A burst wakes the broker once, where messages spaced by their
    /// encoding woke it (and paid for the wake-up) once each; and the messages encoded ahead go
    /// out the moment PUBACKs free their places.
    private func fillWindow(_ c: MQTTConnection) throws(MQTTError) {
        encodeAhead(settings.inflightWindow - inflight.count)
        func publishReady() throws(MQTTError) {
            while inflight.count < settings.inflightWindow, let m = ready.first {
                ready.removeFirst()
                if m.count > 0 {
                    let mid = try c.publish(topic: topic, bytes: UnsafeRawBufferPointer(start: m.buffer.bytes, count: m.length))
                    inflight.append((mid, m.first, m.last, false, m.count))
                    published += m.count
                    messagesPublished += 1
                } else {
                    inflight.append((-1, m.first, m.last, true, 0))  // acknowledged in order with the rest
                }
                spare.append(m.buffer)
            }
        }
        if min(ready.count, settings.inflightWindow - inflight.count) > 1 {
            try c.corked(publishReady)
        } else {
            try publishReady()
        }
        encodeAhead(lookahead)
    }

    /// Encodes messages until `n` are ready or the spool has nothing more.
    private func encodeAhead(_ n: Int) {
        while ready.count < n {
            let buffer = spare.popLast() ?? MessageBuffer()
            guard let m = nextMessage(into: buffer) else {
                spare.append(buffer)
                return
            }
            encodedThrough = m.last
            ready.append(m)
        }
    }

    /// A message being built: its bytes so far and the records it carries. The walk over the
    /// spool reaches it through one pointer, so the per-reading work does no exclusivity checks.
    private struct Builder {
        let buffer: MessageBuffer
        var bytes: UnsafeMutablePointer<UInt8>
        var capacity: Int
        var transcoder: ReadingJSONTranscoder
        let limit: Int
        var length = 0
        var first: UInt64 = 0, last: UInt64 = 0, count = 0
        init(buffer: MessageBuffer, transcoder: ReadingJSONTranscoder, limit: Int) {
            self.buffer = buffer
            self.bytes = buffer.bytes
            self.capacity = buffer.capacity
            self.transcoder = transcoder
            self.limit = limit
            bytes[0] = UInt8(ascii: "[")
            length = 1
        }

        mutating func reserve(_ n: Int) {
            guard n > capacity else { return }
            bytes = buffer.reserve(n)
            capacity = buffer.capacity
        }

        @inline(__always)
        mutating func take(_ seq: UInt64, reading: Bool) {
            if first == 0 { first = seq }
            last = seq
            if reading { count += 1 }
        }

        /// The common case, straight from the spool bytes: true taken, false the message is
        /// full, nil when the record needs the general path.
        @inline(__always)
        mutating func addEncoded(_ seq: UInt64, _ record: UnsafeRawBufferPointer) -> Bool? {
            reserve(length + 2 + ReadingJSONTranscoder.maximumJSONSize(encodedCount: record.count))
            let start = count > 0 ? length + 1 : length
            let n = transcoder.write(encoded: record, into: bytes + start)
            guard n > 0 else { return nil }
            if count > 0 && start + n + 1 > limit { return false }
            if count > 0 { bytes[length] = UInt8(ascii: ",") }
            length = start + n
            take(seq, reading: true)
            return true
        }

        /// A decoded reading's data object; false when the message is full.
        mutating func addObject(_ seq: UInt64, _ object: [UInt8]) -> Bool {
            if count > 0 && length + object.count + 2 > limit { return false }
            reserve(length + object.count + 2)
            if count > 0 {
                bytes[length] = UInt8(ascii: ",")
                length += 1
            }
            object.withUnsafeBytes { bytes.advanced(by: length).update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: $0.count) }
            length += object.count
            take(seq, reading: true)
            return true
        }
    }

    /// Encodes the records after those already encoded into one message, reading them in place
    /// in the spool and writing their JSON straight into `buffer`.
    private func nextMessage(into buffer: MessageBuffer) -> Message? {
        var builder = Builder(buffer: buffer, transcoder: transcoder, limit: settings.maxPayloadBytes)
        let walked: Bool = withUnsafeMutablePointer(to: &builder) { b in
            do {
                try spool.visit(after: encodedThrough, maxRecords: settings.batchSize) { seq, record in
                    if let taken = b.pointee.addEncoded(seq, record) { return taken }
                    return add(seq, record, to: b)
                }
                return true
            } catch {
                return false
            }
        }
        transcoder = builder.transcoder
        guard walked, builder.last > 0 else { return nil }
        if builder.count == 0 { return Message(buffer: buffer, length: 0, first: builder.first, last: builder.last, count: 0) }
        builder.reserve(builder.length + 1)
        builder.bytes[builder.length] = UInt8(ascii: "]")
        builder.length += 1
        return Message(buffer: buffer, length: builder.length, first: builder.first, last: builder.last, count: builder.count)
    }

    /// A record the transcoder declined: decoded to a `Reading` (dead-lettered if it does not
    /// decode), placed by the clock guard, and added as a data object. Apart
    /// from the walk's callback, which stays small for the common case.
    @inline(never)
    private func add(_ seq: UInt64, _ record: UnsafeRawBufferPointer, to b: UnsafeMutablePointer<Builder>) -> Bool {
        guard var reading = ReadingCodec.decode(Array(record)) else {
            try? deadLetters.record(seq: seq, status: nil, reason: "the spool record is not a reading this version can decode",
                                    object: .string("\(record.count) bytes"), at: clock.now())
            b.pointee.take(seq, reading: false)
            return true
        }
        if let clockGuard, !clockGuard.resolve(&reading) { return false }  // held until the clock is trusted
        var object: [UInt8] = []
        reading.appendDataObjectJSON(to: &object)
        return b.pointee.addObject(seq, object)
    }

    /// Announces `offline` (if a status topic is set) and disconnects cleanly.
    public func close() {
        if let c = connection, let status = settings.statusTopic {
            _ = try? c.publish(topic: status, payload: Array("offline".utf8), retain: settings.statusRetain)
            try? c.loop(timeoutMilliseconds: 50)
        }
        connection?.disconnect()
        connection = nil
    }
}

/// The bytes of the message being built, kept from one message to the next.
final class MessageBuffer {
    private(set) var bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 16 << 10)
    private(set) var capacity = 16 << 10

    /// Makes room for `n` bytes, keeping what is there, and returns where they are now.
    func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        guard n > capacity else { return bytes }
        let grown = max(n, capacity * 2)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        new.update(from: bytes, count: capacity)
        bytes.deallocate()
        bytes = new
        capacity = grown
        return new
    }

    deinit { bytes.deallocate() }
}
