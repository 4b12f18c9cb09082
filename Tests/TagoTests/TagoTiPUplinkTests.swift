#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Emulator
import Spool
import TagoKit
import TagoTiP
import Testing
import TestSupport
import Uplink

/// The TagoTiP uplink over the HTTP binding against the emulator's TagoTiP server, which parses
/// every body with the strict parser and stores what it accepts as TagoIO would.
@Suite struct TagoTiPHTTPTests {
    func uplink(_ tago: LocalTago, spool: Spool, token: String = LocalTago.tipToken, dir: String, http: HTTPClient? = nil, configure: (inout TagoTiPUplinkSettings) -> Void = { _ in }) -> TagoTiPUplink {
        var settings = TagoTiPUplinkSettings()
        settings.serial = LocalTago.serial
        settings.counterFile = dir + "/counter"
        settings.backoff.baseMilliseconds = 10
        settings.backoff.capMilliseconds = 20
        configure(&settings)
        let transport = TipHTTPTransport(baseURL: "http://127.0.0.1:\(tago.port)", authorizationToken: token, serial: LocalTago.serial, http: http ?? tago.http)
        return TagoTiPUplink(spool: spool, transport: transport, settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead.jsonl"))
    }

    /// Steps until the spool is empty (or the time is up).
    func drain(_ u: TagoTiPUplink, _ spool: Spool) -> [UplinkStep] {
        var steps: [UplinkStep] = []
        _ = waitUntil(seconds: 20) {
            let s = u.step()
            steps.append(s)
            if case .wait(let ms, _, _) = s, ms > 0 { usleep(UInt32(min(ms, 50)) * 1000) }
            return spool.stats.recordCount == 0
        }
        return steps
    }

    /// Readings with every character the grammar treats specially, huge and tiny numbers, units
    /// and metadata: each accepted by the server's strict parser and stored as it was put in.
    @Test func adversarialReadingsArriveAsTheyWerePutIn() throws {
        let tago = try LocalTago()
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 8 << 20)
        var random = SeededRandom("TagoTiPHTTPTests.adversarialReadingsArriveAsTheyWerePutIn")
        let specials = ["|", "[", "]", ";", ",", "{", "}", "#", "@", "^", "\\", "\n", "=", ":=", "?=", "@=", "!", ">x", " ", "°", "✓", "\"", "'"]
        var put: [Reading] = []
        for i in 0..<250 {
            let text = (0..<Int(random.next() % 6 + 1)).map { _ in specials[Int(random.next() % UInt64(specials.count))] }.joined()
            let value: ReadingValue = switch i % 4 {
            case 0: .string(text)
            case 1: .number([1e-300, -1.5e300, 0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308, Double(i)][i % 7])
            case 2: .bool(i % 8 == 2)
            default: .number(Double(bitPattern: random.next() & 0x7FEF_FFFF_FFFF_FFFF))
            }
            put.append(Reading(variable: "v_\(i % 7)", value: value, unit: ["°C", "%", "hPa", "m/s²", nil][i % 5],
                               time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64(i)), metadata: i % 3 == 0 ? ["note": text, "k_2": "x=y"] : [:]))
        }
        try spool.append(put.map(ReadingCodec.encode))
        let recorder = RecordingHTTPClient(tago.http)
        let u = uplink(tago, spool: spool, dir: dir, http: recorder)
        _ = drain(u, spool)
        recordTagoTiPCorpus(recorder.bodies)
        #expect(spool.stats.recordCount == 0)
        #expect(u.delivered == put.count)
        let stats = try tago.stats()
        #expect(stats["tagotip_refused_grammar"] == nil)
        var q = DataQuery(variables: (0..<7).map { "v_\($0)" }, qty: 10_000)
        q.ordination = "ascending"
        let stored = try tago.device.find(q).arrayValue ?? []
        #expect(stored.count == put.count)
        for r in put {
            let match = stored.first { $0["variable"]?.stringValue == r.variable && $0["time"]?.stringValue == r.time.iso8601 }
            #expect(match != nil, "\(r.variable) at \(r.time.iso8601) is missing")
            guard let match else { continue }
            switch r.value {
            case .number(let v): #expect(match["value"]?.numberValue == (v == 0 ? 0 : v))
            case .string(let s): #expect(match["value"]?.stringValue == s)
            case .bool(let b): #expect(match["value"] == .bool(b))
            }
            #expect(match["unit"]?.stringValue == r.unit)
            for (k, v) in r.metadata { #expect(match["metadata"]?[k]?.stringValue == v) }
        }
    }

    /// A reading the server refuses is dead-lettered alone, never counted as delivered; every
    /// other reading arrives.
    @Test func aRefusedReadingIsNeverCountedAsDelivered() throws {
        let tago = try LocalTago()
        try tago.faults("reject-variable=poison")
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        var all: [[UInt8]] = []
        for i in 0..<40 {
            let name = i == 17 ? "poison" : "temp"
            all.append(ReadingCodec.encode(Reading(variable: name, value: .number(Double(i)), time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64(i)))))
        }
        try spool.append(all)
        let u = uplink(tago, spool: spool, dir: dir)
        let steps = drain(u, spool)
        #expect(u.delivered == 39)
        #expect(try tago.values("temp").count == 39)
        #expect(try tago.values("poison").isEmpty)
        let delivered = steps.reduce(0) { if case .sent(let n, _, _) = $1 { return $0 + n } else { return $0 } }
        #expect(delivered == 39)
        let dead = try readTextFile(dir + "/dead.jsonl")
        #expect(dead.contains("poison") && dead.contains("invalid_payload"))
        #expect(u.errors.allSatisfy { $0 == .invalidPayload })
    }

    /// What TagoTiP cannot carry is dead-lettered with the reason before anything is sent.
    @Test func unrepresentableReadingsAreDeadLetteredWithTheReason() throws {
        let tago = try LocalTago()
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        let t = Timestamp(millisecondsSince1970: 1_780_000_000_000)
        try spool.append([
            Reading(variable: "Bad-Name", value: .number(1), time: t), Reading(variable: "n", value: .number(.nan), time: t),
            Reading(variable: "s", value: .string("a\tb"), time: t), Reading(variable: "e", value: .string(""), time: t),
            Reading(variable: "u", value: .number(1), unit: String(repeating: "x", count: 26), time: t),
            Reading(variable: "ok", value: .number(2), time: t),
        ].map(ReadingCodec.encode))
        let u = uplink(tago, spool: spool, dir: dir)
        _ = drain(u, spool)
        #expect(try tago.values("ok") == [2])
        let dead = try readTextFile(dir + "/dead.jsonl").split(separator: "\n")
        #expect(dead.count == 5)
        #expect(dead.allSatisfy { $0.contains("TagoTiP cannot carry") })
        #expect(try tago.stats()["tagotip_ok"]?.numberValue == 1)
    }

    /// A wrong token: everything kept, the wait says why and is long.
    @Test func aWrongTokenKeepsEverything() throws {
        let tago = try LocalTago()
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append([ReadingCodec.encode(Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1)))])
        let u = uplink(tago, spool: spool, token: "at00000000000000000000000000000000", dir: dir)
        let step = u.step()
        guard case .wait(let ms, let reason, .unauthorized) = step else { Issue.record("\(step)"); return }
        #expect(ms >= 300_000 && reason.contains("invalid_token") && !reason.contains("at0000"))
        #expect(spool.stats.recordCount == 1)
    }

    /// A command queued in TagoIO comes back with the next answer (`X-TagoTiP-CMD`).
    @Test func commandsReachTheAgent() throws {
        let tago = try LocalTago()
        tago.emulator.queueTipCommand(serial: LocalTago.serial, "interval=30s")
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append([ReadingCodec.encode(Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1)))])
        let u = uplink(tago, spool: spool, dir: dir)
        _ = drain(u, spool)
        let downlink = u.takeDownlink()
        #expect(downlink.count == 1 && String(decoding: downlink[0].payload, as: UTF8.self) == "interval=30s")
    }
}

/// A TagoTiP server in a closure: it sees each push (counter, body) and answers, or not.
final class ScriptedTipTransport: TipTransport {
    var pushes: [(counter: UInt32, body: String)] = []
    var answer: (UInt32, String) -> TipAck?
    private var queued: [TipAck] = []
    init(_ answer: @escaping (UInt32, String) -> TipAck?) { self.answer = answer }
    var address: String { "scripted" }
    var carriesCounter: Bool { true }
    var isOpen = false
    func open() throws(TipTransportError) { isOpen = true }
    func push(counter: UInt32, body: [UInt8]) throws(TipTransportError) {
        let text = String(decoding: body, as: UTF8.self)
        pushes.append((counter, text))
        if var a = answer(counter, text) {
            a.counter = counter
            queued.append(a)
        }
    }
    func receive(waitMilliseconds: Int32) throws(TipTransportError) -> [TipAck] {
        defer { queued.removeAll() }
        return queued
    }
    func close() { isOpen = false }
}

/// The delivery rules of the TagoTiP uplink, each on a manual clock against a scripted server
/// with the spec's counter rule (strictly increasing, last-seen updated on every accepted frame).
@Suite struct TagoTiPDeliveryTests {
    final class Server {
        var last: UInt32?
        var stored: [String] = []
        var loseNextAnswer = false
        func handle(_ counter: UInt32, _ body: String) -> TipAck? {
            if let last, counter <= last { return TipAck(status: .err, detail: "invalid_seq") }
            last = counter
            stored.append(body)
            if loseNextAnswer {
                loseNextAnswer = false
                return nil
            }
            return TipAck(status: .ok, detail: "1")
        }
    }

    func setUp(_ server: Server, counterFile: String, readings: Int = 1, clock: ManualClock = ManualClock()) throws -> (TagoTiPUplink, ScriptedTipTransport, MemorySpool) {
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append((0..<readings).map { ReadingCodec.encode(Reading(variable: "t", value: .number(Double($0)), time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64($0)))) })
        let transport = ScriptedTipTransport(server.handle)
        var settings = TagoTiPUplinkSettings()
        settings.counterFile = counterFile
        settings.maxReadings = 1
        let u = TagoTiPUplink(spool: spool, transport: transport, settings: settings, deadLetters: DeadLetterFile(path: counterFile + ".dead"), clock: clock, random: { 0 })
        return (u, transport, spool)
    }

    /// An answer lost on the way: the message goes again with the same counter after the ack
    /// timeout, the server calls it a replay (`invalid_seq`), and it counts as delivered once.
    @Test func aReplayOfADeliveredMessageCountsAsDelivered() throws {
        let dir = makeTemporaryDirectory()
        let server = Server()
        server.loseNextAnswer = true
        let clock = ManualClock()
        let (u, transport, spool) = try setUp(server, counterFile: dir + "/c", clock: clock)
        #expect(u.step() == .wait(milliseconds: 0, reason: "waiting for TagoTiP's answer to !\(transport.pushes[0].counter)", kind: .transient))
        clock.advance(milliseconds: 10_001)
        #expect(u.step() == .sent(count: 1, through: 1, deadLettered: 0))
        #expect(transport.pushes.count == 2 && transport.pushes[0].counter == transport.pushes[1].counter)
        #expect(server.stored.count == 1 && spool.stats.recordCount == 0)
        #expect(u.errors == [.invalidSeq])
    }

    /// A counter behind the server's (a lost counter file, an SD card restored from an image):
    /// the uplink jumps ahead, further each time, and delivers; a few round trips, not millions.
    @Test func aCounterBehindTheServersIsResynchronised() throws {
        let dir = makeTemporaryDirectory()
        let server = Server()
        let (u, transport, spool) = try setUp(server, counterFile: dir + "/c", readings: 3)
        server.last = u.lastCounter &+ 3_000_000
        var steps = 0
        while spool.stats.recordCount > 0 && steps < 100 {
            _ = u.step()
            steps += 1
        }
        #expect(spool.stats.recordCount == 0)
        #expect(server.stored.count == 3)
        #expect(transport.pushes.count < 20, "\(transport.pushes.count) pushes")
        #expect(zip(transport.pushes, transport.pushes.dropFirst()).allSatisfy { $0.counter < $1.counter })
    }

    /// The counter survives restarts without a write per message: the file holds a ceiling
    /// reserved ahead, and a new life starts above everything sent before.
    @Test func theCounterSurvivesRestartsWithOneWritePerBlock() throws {
        let dir = makeTemporaryDirectory()
        let server = Server()
        var (u, transport, spool) = try setUp(server, counterFile: dir + "/c", readings: 5)
        while spool.stats.recordCount > 0 { _ = u.step() }
        let sent = transport.pushes.map(\.counter)
        let ceiling = UInt32(try readTextFile(dir + "/c").split(separator: "\n")[0])!
        #expect(ceiling == sent[0] + 1_000)
        (u, transport, spool) = try setUp(server, counterFile: dir + "/c", readings: 2)
        while spool.stats.recordCount > 0 { _ = u.step() }
        #expect(transport.pushes.allSatisfy { $0.counter > sent.last! })
        #expect(u.errors.isEmpty)
        #expect(server.stored.count == 7)
    }

    /// A message refused as a whole is split until the refused reading is alone.
    @Test func invalidPayloadIsBisectedToTheRefusedReading() throws {
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append((0..<64).map { ReadingCodec.encode(Reading(variable: $0 == 41 ? "bad" : "t", value: .number(Double($0)), time: Timestamp(millisecondsSince1970: 1))) })
        var accepted = 0
        let transport = ScriptedTipTransport { _, body in
            if body.contains("bad:=") { return TipAck(status: .err, detail: "invalid_payload") }
            accepted += body.split(separator: ";").count
            return TipAck(status: .ok, detail: "1")
        }
        let u = TagoTiPUplink(spool: spool, transport: transport, settings: TagoTiPUplinkSettings(), deadLetters: DeadLetterFile(path: dir + "/dead"), clock: ManualClock())
        var steps = 0
        while spool.stats.recordCount > 0 && steps < 200 {
            _ = u.step()
            steps += 1
        }
        #expect(accepted == 63 && u.delivered == 63)
        #expect(try readTextFile(dir + "/dead").split(separator: "\n").count == 1)
        #expect(transport.pushes.count < 20)
    }
}

/// Passes requests on and keeps their bodies (for the reference codec's cross-check).
final class RecordingHTTPClient: HTTPClient, @unchecked Sendable {
    let inner: HTTPClient
    var bodies: [[UInt8]] = []
    init(_ inner: HTTPClient) { self.inner = inner }
    func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        bodies.append(request.body)
        return try inner.send(request)
    }
}

/// The raw binding (UDP, TCP) and TagoTiP/S (UDP, TCP, HTTP) against the emulator's servers:
/// every reading delivered once, on the server's answer.
@Suite struct TagoTiPRawAndSecureTests {
    enum Way: String, CaseIterable { case udp, tcp, secureUDP, secureTCP, secureHTTP }

    func transport(_ way: Way, _ tago: LocalTago, ports: (udp: UInt16, tcp: UInt16), key: [UInt8] = LocalTago.tipKey) -> TipTransport {
        switch way {
        case .udp: TipRawTransport(.udp, host: "127.0.0.1", port: Int(ports.udp), authorizationToken: LocalTago.tipToken, serial: LocalTago.serial)
        case .tcp: TipRawTransport(.tcp(tls: false), host: "127.0.0.1", port: Int(ports.tcp), authorizationToken: LocalTago.tipToken, serial: LocalTago.serial)
        case .secureUDP: TipRawTransport(.udp, host: "127.0.0.1", port: Int(ports.udp), authorizationToken: LocalTago.tipToken, serial: LocalTago.serial, key: key)
        case .secureTCP: TipRawTransport(.tcp(tls: false), host: "127.0.0.1", port: Int(ports.tcp), authorizationToken: LocalTago.tipToken, serial: LocalTago.serial, key: key)
        case .secureHTTP: TipHTTPTransport(baseURL: "http://127.0.0.1:\(tago.port)", authorizationToken: LocalTago.tipToken, serial: LocalTago.serial, http: tago.http, key: key)
        }
    }

    @Test(arguments: Way.allCases) func deliversEveryReadingOnce(_ way: Way) throws {
        let tago = try LocalTago()
        let ports = try tago.emulator.serveTagoTiPRaw()
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append((0..<150).map { ReadingCodec.encode(Reading(variable: "temperature", value: .number(Double($0) / 4), unit: "°C", time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64($0)), metadata: ["way": way.rawValue])) })
        var settings = TagoTiPUplinkSettings()
        settings.serial = LocalTago.serial
        settings.counterFile = dir + "/counter"
        settings.ackTimeoutMilliseconds = 2_000
        let u = TagoTiPUplink(spool: spool, transport: transport(way, tago, ports: ports), settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead"))
        #expect(waitUntil(seconds: 20) {
            if case .wait(let ms, _, _) = u.step(), ms > 0 { usleep(UInt32(min(ms, 50)) * 1000) }
            return spool.stats.recordCount == 0
        })
        u.close()
        #expect(u.delivered == 150 && u.errors.isEmpty, "\(u.errors)")
        #expect(try tago.values("temperature").count == 150)
    }

    /// A wrong key: the server cannot open the envelope and says `auth_failed` in plaintext;
    /// everything is kept.
    @Test(arguments: [Way.secureUDP, .secureTCP, .secureHTTP]) func aWrongKeyIsAuthFailed(_ way: Way) throws {
        let tago = try LocalTago()
        let ports = try tago.emulator.serveTagoTiPRaw()
        let dir = makeTemporaryDirectory()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append([ReadingCodec.encode(Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1)))])
        var settings = TagoTiPUplinkSettings()
        settings.serial = LocalTago.serial
        settings.counterFile = dir + "/counter"
        let u = TagoTiPUplink(spool: spool, transport: transport(way, tago, ports: ports, key: [UInt8](repeating: 7, count: 16)), settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead"))
        var last = UplinkStep.idle
        _ = waitUntil(seconds: 10) {
            last = u.step()
            if case .wait(_, _, .unauthorized) = last { return true }
            return false
        }
        guard case .wait(_, let reason, .unauthorized) = last else { Issue.record("\(last)"); return }
        #expect(reason.contains("auth_failed"))
        #expect(spool.stats.recordCount == 1)
    }
}

/// TCP with TLS (`tcps://`) against a real TLS server (openssl s_server): the certificate and
/// host name are verified, and a server the CA file does not vouch for is refused as TLS.
@Suite(.serialized) struct TipTLSStreamTests {
    @Test func tlsIsVerifiedAgainstTheCAFile() throws {
        let dir = makeTemporaryDirectory()
        _ = shellOutput("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout \(dir)/key.pem -out \(dir)/cert.pem 2>/dev/null")
        let port = 30_000 + Int(getpid() % 20_000)
        let pid = String(decoding: shellOutput("openssl s_server -accept 127.0.0.1:\(port) -cert \(dir)/cert.pem -key \(dir)/key.pem -quiet </dev/null >/dev/null 2>&1 & echo $!"), as: UTF8.self)
            .filter { $0.isNumber }
        defer { if let p = Int32(pid) { kill(p, SIGKILL) } }
        let plain = CurlStream()
        #expect(waitUntil(seconds: 10) {
            (try? plain.open(host: "127.0.0.1", port: port, tls: false, connectTimeoutMilliseconds: 500, caFile: nil, insecure: false)) != nil
        })
        plain.close()
        let verified = CurlStream()
        try verified.open(host: "localhost", port: port, tls: true, connectTimeoutMilliseconds: 5_000, caFile: dir + "/cert.pem", insecure: false)
        try verified.send(Array("PING|4deedd7bab8817ec|s\n".utf8), timeoutMilliseconds: 2_000)
        verified.close()
        let untrusted = CurlStream()
        do {
            try untrusted.open(host: "localhost", port: port, tls: true, connectTimeoutMilliseconds: 5_000, caFile: nil, insecure: false)
            Issue.record("a self-signed server was trusted")
        } catch {
            #expect(error.kind == .tls, "\(error)")
        }
    }
}
