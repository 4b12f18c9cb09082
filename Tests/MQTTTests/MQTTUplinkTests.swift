import Foundation
import Testing
import EdgeCore
import MQTT
import Spool
import Emulator
import TagoKit
@testable import Uplink
import Agent

func readings(_ range: ClosedRange<Int>, variable: String = "counter") -> [[UInt8]] {
    range.map { ReadingCodec.encode(Reading(variable: variable, value: .number(Double($0)), time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64($0)))) }
}

func deadLetters() -> DeadLetterFile { DeadLetterFile(path: NSTemporaryDirectory() + "dead-\(UUID().uuidString).jsonl") }

/// Steps the uplink and pumps the subscriber until the spool is drained and `expected` values
/// arrived (or the time runs out).
func run(_ uplink: MQTTUplink, _ sub: Subscriber, expected: Int, seconds: Double = 20, during: ((Int) -> Void)? = nil) {
    let deadline = Date().addingTimeInterval(seconds)
    var i = 0
    while Date() < deadline {
        i += 1
        during?(i)
        switch uplink.step(waitMilliseconds: 20) {
        case .wait(let ms, _, _) where ms > 0: usleep(UInt32(min(ms, 200)) * 1000)
        default: break
        }
        sub.pump()
        if sub.values.count >= expected, uplink.step(waitMilliseconds: 0) == .idle { break }
    }
    for _ in 0..<20 { sub.pump() }
}

@Suite(.serialized) struct MQTTUplinkTests {
    @Test func deliversEverythingInOrderAndAcknowledgesOnPUBACK() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(readings(1...1000))
        var settings = MQTTUplinkSettings()
        settings.batchSize = 50
        settings.inflightWindow = 4
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: deadLetters())
        run(uplink, sub, expected: 1000)
        #expect(sub.values == (1...1000).map(Double.init))
        #expect(spool.stats.recordCount == 0)
        #expect(uplink.acknowledged == 1000)
        #expect(sub.messages.count == 20)
        // Messages were encoded ahead of the window while it drained; caught up, one buffer is kept.
        #expect(uplink.messageBuffers == 1)
        uplink.close()
    }

    @Test func brokerRestartMidStreamLosesNothing() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 8 << 20)
        try spool.append(readings(1...3000))
        var settings = MQTTUplinkSettings()
        settings.batchSize = 20
        settings.inflightWindow = 5
        settings.backoff.baseMilliseconds = 50
        settings.backoff.capMilliseconds = 300
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: deadLetters())
        var restarted = false
        run(uplink, sub, expected: 3000, seconds: 30) { _ in
            if !restarted, uplink.acknowledged >= 1000 {
                restarted = true
                broker.stop()
                usleep(300_000)
                try? broker.start()
            }
        }
        #expect(restarted)
        #expect(uplink.reconnects >= 1)
        let values = sub.values
        let missing = Set((1...3000).map(Double.init)).subtracting(values).sorted()
        #expect(missing.isEmpty, "\(missing.count) missing, from \(missing.prefix(5))")
        // The uplink republishes at most its in-flight window. The subscriber may see a few more:
        // its own persistent session has messages in flight from the broker too (mosquitto's
        // default window of 20), which the restarted broker delivers again.
        #expect(uplink.published - 3000 <= settings.inflightWindow * settings.batchSize, "the uplink published \(uplink.published - 3000) readings twice")
        #expect(values.count - 3000 <= (settings.inflightWindow + 20) * settings.batchSize)
        #expect(spool.stats.recordCount == 0)
    }

    @Test func refusedLoginIsReportedAndKeepsTheData() throws {
        let dir = NSTemporaryDirectory() + "pw-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pw = Process()
        pw.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_passwd")
        pw.arguments = ["-b", "-c", dir + "/passwd", "Token", "right-device-token"]
        pw.standardOutput = FileHandle.nullDevice
        pw.standardError = FileHandle.nullDevice
        try pw.run()
        pw.waitUntilExit()
        let broker = try Broker(extraConfig: "allow_anonymous false\npassword_file \(dir)/passwd\n")
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(readings(1...10))
        var options = broker.options()
        options.username = "Token"
        options.password = "wrong-device-token"
        let uplink = MQTTUplink(spool: spool, options: options, settings: MQTTUplinkSettings(), deadLetters: deadLetters())
        guard case .wait(let ms, let reason, .unauthorized) = uplink.step() else { Issue.record("a refused login was not reported as such"); return }
        #expect(ms > 60_000)
        #expect(reason.contains("not authori"))
        #expect(!reason.contains("wrong-device-token"))
        #expect(spool.stats.recordCount == 10)

        options.password = "right-device-token"
        let sub = try Subscriber(broker, topic: "#")
        _ = sub
        let good = MQTTUplink(spool: spool, options: options, settings: MQTTUplinkSettings(), deadLetters: deadLetters())
        var sent = false
        for _ in 0..<50 where !sent { if case .sent = good.step() { sent = true } }
        #expect(sent)
    }

    @Test func oversizeBatchIsSplitNeverTruncated() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(readings(1...500))
        var settings = MQTTUplinkSettings()
        settings.batchSize = 500
        settings.maxPayloadBytes = 2_000
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: deadLetters())
        run(uplink, sub, expected: 500)
        #expect(sub.values == (1...500).map(Double.init))
        #expect(sub.messages.count > 10)
        #expect(sub.messages.allSatisfy { $0.payload.count <= 2_000 })
    }

    @Test func undecodableRecordsAreDeadLetteredAndTheRestArrivesInOrder() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 4 << 20)
        // Good readings (fast path), a whole batch of garbage, readings the general path must
        // escape, more garbage, good readings again.
        try spool.append(readings(1...30))
        try spool.append((0..<10).map { _ in [0xFF, 0x00, 0x01] })
        try spool.append((31...40).map { i in
            ReadingCodec.encode(Reading(variable: "counter", value: .number(Double(i)), time: Timestamp(millisecondsSince1970: 1_780_000_000_000),
                                        metadata: ["note": "a \"quoted\" word"]))
        })
        try spool.append([[1, 0]])
        try spool.append(readings(41...60))
        var settings = MQTTUplinkSettings()
        settings.batchSize = 10
        settings.inflightWindow = 3
        let dead = deadLetters()
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: dead)
        run(uplink, sub, expected: 60)
        #expect(sub.values == (1...60).map(Double.init))
        #expect(spool.stats.recordCount == 0)
        #expect(sub.messages.allSatisfy { $0.payload.count > 2 }, "no empty message for a batch of garbage")
        let lines = try String(contentsOfFile: dead.path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 11)
        uplink.close()
    }

    /// A batch of nothing but undecodable records, behind messages the broker has not
    /// acknowledged, leaves the spool only in order with them: acknowledging it at once would
    /// acknowledge the readings in flight before it too.
    @Test func aGarbageBatchWaitsForTheMessagesBeforeIt() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 4 << 20)
        var settings = MQTTUplinkSettings()
        settings.batchSize = 10
        settings.inflightWindow = 4
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: deadLetters())
        #expect(uplink.step(waitMilliseconds: 0) == .idle)  // connected, nothing to send
        #expect(uplink.isConnected)
        broker.pause()
        try spool.append(readings(1...20))
        try spool.append((0..<10).map { _ in [0xFF, 0x00, 0x01] })
        try spool.append(readings(31...40))
        for _ in 0..<10 { _ = uplink.step(waitMilliseconds: 5) }
        // Everything is published or dead-lettered, and nothing is acknowledged.
        #expect(uplink.published == 30)
        #expect(spool.stats.recordCount == 40, "\(40 - spool.stats.recordCount) records left the spool before any PUBACK")
        broker.resume()
        run(uplink, sub, expected: 30)
        let expected: [Double] = (1...20).map(Double.init) + (31...40).map(Double.init)  // typed: Swift 6.0 gives up otherwise
        #expect(sub.values == expected)
        #expect(spool.stats.recordCount == 0)
        uplink.close()
    }

    @Test func statusLastWillAndDownlink() throws {
        let broker = try Broker()
        let status = try Subscriber(broker, topic: "gw/status")
        var settings = MQTTUplinkSettings()
        settings.statusTopic = "gw/status"
        settings.downlinkTopic = "gw/commands"
        var uplink: MQTTUplink? = MQTTUplink(spool: MemorySpool(capacityBytes: 1 << 20), options: broker.options(), settings: settings, deadLetters: deadLetters())
        _ = uplink?.step()
        for _ in 0..<20 { status.pump() }
        #expect(status.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["online"])

        let commander = try MQTTConnection(options: broker.options())
        try commander.connect()
        _ = try commander.publish(topic: "gw/commands", payload: Array("relay=on".utf8))
        for _ in 0..<20 { try commander.loop(timeoutMilliseconds: 10); _ = uplink?.step(waitMilliseconds: 10) }
        let got = uplink?.takeDownlink() ?? []
        #expect(got.map(\.topic) == ["gw/commands"])
        #expect(got.first.map { String(decoding: $0.payload, as: UTF8.self) } == "relay=on")

        uplink = nil  // vanishes without DISCONNECT: the broker publishes the last will
        for _ in 0..<100 where status.messages.count < 2 { status.pump(20) }
        #expect(status.messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["online", "offline"])
    }
}

@Suite(.serialized) struct MQTTTLSTests {
    func openssl(_ args: [String], in dir: String) throws {
        let pid = try spawn("/usr/bin/openssl", args.map { $0.hasSuffix(".pem") || $0.hasSuffix(".key") || $0.hasSuffix(".csr") || $0.hasSuffix(".ext") ? dir + "/" + $0 : $0 }, output: dir + "/openssl.log")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status == 0, "openssl \(args.first ?? "")")
    }

    @Test func verifiesTheBrokerCertificate() throws {
        let dir = NSTemporaryDirectory() + "mqtt-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=TagoEdge Test CA"], in: dir)
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], in: dir)
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"], in: dir)
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=Other CA"], in: dir)
        let broker = try Broker(extraConfig: "allow_anonymous true\ncafile \(dir)/ca.pem\ncertfile \(dir)/server.pem\nkeyfile \(dir)/server.key\n")

        var good = broker.options()
        good.tls = MQTTOptions.TLSOptions()
        good.tls?.caFile = dir + "/ca.pem"
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(readings(1...30))
        let uplink = MQTTUplink(spool: spool, options: good, settings: MQTTUplinkSettings(), deadLetters: deadLetters())
        var acked = 0
        for _ in 0..<50 where acked < 30 { if case .sent(let n, _, _) = uplink.step(waitMilliseconds: 20) { acked += n } }
        #expect(acked == 30)

        var wrong = broker.options()
        wrong.tls = MQTTOptions.TLSOptions()
        wrong.tls?.caFile = dir + "/other.pem"
        try spool.append(readings(31...40))
        let refused = MQTTUplink(spool: spool, options: wrong, settings: MQTTUplinkSettings(), deadLetters: deadLetters())
        guard case .wait(_, let reason, .transient) = refused.step() else { Issue.record("a broker with an untrusted certificate was accepted"); return }
        #expect(reason.contains("TLS"), "\(reason)")
        #expect(spool.stats.recordCount == 10)

        let plain = MQTTUplink(spool: spool, options: broker.options(), settings: MQTTUplinkSettings(), deadLetters: deadLetters())
        guard case .wait = plain.step() else { Issue.record("a plain client got through a TLS listener"); return }

        // `tagoedge doctor` says the same, with the fix.
        func doctor(ca: String, port: Int) throws -> DoctorCheck? {
            let path = dir + "/doctor.toml"
            try "[uplink]\ntransport = \"mqtt\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = \(port)\ntls = true\nca_file = \"\(ca)\"\n[spool]\npath = \"\(dir)/spool\"\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            var options = DoctorOptions(configPath: path)
            options.readSensors = false
            return Doctor(options: options).run().first { $0.check == "mqtt" }
        }
        let ok = try doctor(ca: dir + "/ca.pem", port: broker.port)
        #expect(ok?.status == .ok)
        #expect(ok?.detail.contains("TLS verified") == true)
        let bad = try doctor(ca: dir + "/other.pem", port: broker.port)
        #expect(bad?.status == .failed)
        #expect(bad?.fix?.contains("certificate did not verify") == true, "\(String(describing: bad))")
        broker.stop()
        let down = try doctor(ca: dir + "/ca.pem", port: broker.port)
        #expect(down?.status == .failed)
        #expect(down?.fix?.contains("host and port") == true)
    }
}

@Suite(.serialized) struct EmulatorMQTTIngestTests {
    @Test func aBenchRunOverMQTTCanBeReadBackOverHTTP() throws {
        let broker = try Broker()
        var options = Emulator.Options()
        options.deviceTokens = ["mqtt-bench-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        emulator.ingestMQTT(host: "127.0.0.1", port: broker.port, defaultToken: "mqtt-bench-token")
        usleep(300_000)
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(readings(1...100))
        var settings = MQTTUplinkSettings()
        settings.batchSize = 25
        let uplink = MQTTUplink(spool: spool, options: broker.options(), settings: settings, deadLetters: deadLetters())
        for _ in 0..<100 where spool.stats.recordCount > 0 { _ = uplink.step(waitMilliseconds: 20) }
        let device = TagoDevice(token: "mqtt-bench-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        var count = 0.0
        for _ in 0..<50 where count < 100 {
            usleep(50_000)
            count = try device.find(DataQuery(variables: ["counter"], query: "count")).numberValue ?? 0
        }
        #expect(count == 100)
        uplink.close()
    }
}

/// `tagoedge run` over MQTT: simulated sensors → spool → a real broker → the emulator's ingest.
@Suite(.serialized) struct AgentOverMQTTTests {
    @Test func theAgentPublishesAndTheEmulatorStores() throws {
        let broker = try Broker()
        var options = Emulator.Options()
        options.deviceTokens = ["mqtt-agent-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        emulator.ingestMQTT(host: "127.0.0.1", port: broker.port, defaultToken: "mqtt-agent-token")
        let dir = NSTemporaryDirectory() + "tagoedge-mqtt-agent-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        [device]
        token = "env:E2E_TOKEN"
        api = "http://127.0.0.1:\(port)"
        [uplink]
        transport = "mqtt"
        [mqtt]
        host = "127.0.0.1"
        port = \(broker.port)
        batch_size = 10
        [spool]
        path = "\(dir)/spool"
        capacity = "1MiB"
        [agent]
        params_interval = "off"
        [[sensor]]
        name = "count"
        driver = "board"
        interval = "100ms"
        [sensor.simulate]
        signal = "counter"
        """.write(toFile: dir + "/agent.toml", atomically: true, encoding: .utf8)
        let binary = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            .deletingLastPathComponent().appendingPathComponent("tagoedge").path
        let argv: [String] = ["run", "--config", dir + "/agent.toml", "--status-every", "0"]
        let pid = try spawn(binary, argv, output: dir + "/agent.log", environment: ["E2E_TOKEN=mqtt-agent-token"])
        usleep(2_500_000)
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status == 0)
        let device = TagoDevice(token: "mqtt-agent-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        var q = DataQuery(variables: ["count_temperature"], qty: 1000)
        q.ordination = "ascending"
        let values = try #require(try device.find(q).arrayValue).compactMap { $0["value"]?.numberValue }
        #expect(values.count >= 15)
        #expect(Array(Set(values)).sorted() == (0..<Set(values).count).map { 20 + Double($0) }, "every counter value, in order, none missing")
    }
}

/// A network that drops packets without a word (a cellular link out of coverage, a firewall):
/// `iptables -j DROP` on the broker's port. Needs root and iptables, which CI has.
let canDropPackets = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables")

/// Drops every TCP packet to and from `port` on loopback while it lives.
final class PacketDrop {
    let port: Int
    private(set) var active = false

    init(port: Int) { self.port = port }

    private func rules(_ op: String) throws {
        for rule in [["INPUT", "--dport"], ["INPUT", "--sport"]] {
            let status = try runQuiet("/usr/sbin/iptables", [op, rule[0], "-p", "tcp", rule[1], String(port), "-j", "DROP"])
            if status != 0 { throw MQTTError(kind: .connection, code: status, operation: "iptables \(op)", message: "failed") }
        }
    }

    func start() throws {
        try rules("-I")
        active = true
    }

    func stop() {
        guard active else { return }
        try? rules("-D")
        active = false
    }

    deinit { stop() }
}

/// Runs a program, its output discarded, and returns its exit status.
func runQuiet(_ path: String, _ arguments: [String]) throws -> Int32 {
    let pid = try spawn(path, arguments, output: "/dev/null")
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status >> 8) & 0xFF
}

@Suite(.serialized, .enabled(if: canDropPackets, "needs root and iptables")) struct SilentNetworkTests {
    /// With its SYNs dropped, connect(2) would block for the kernel's retries (about two minutes);
    /// the connection gives up at its timeout and says why.
    @Test func aConnectIntoDroppedPacketsTimesOut() throws {
        let broker = try Broker()
        let drop = PacketDrop(port: broker.port)
        try drop.start()
        defer { drop.stop() }
        var o = broker.options()
        o.connectTimeoutMilliseconds = 1_500
        let c = try MQTTConnection(options: o)
        let t0 = Date()
        #expect { try c.connect() } throws: { error in
            guard let e = error as? MQTTError else { return false }
            return e.kind == .connection && e.message.contains("no answer within 1500 ms")
        }
        let seconds = Date().timeIntervalSince(t0)
        #expect(seconds >= 1.4 && seconds < 4, "connect took \(seconds) s")
        drop.stop()
        // The same options work once the network is back.
        let again = try MQTTConnection(options: o)
        try again.connect()
        #expect(again.isConnected)
        again.disconnect()
    }

    /// A connect given up at its timeout must not connect later behind the caller's back: the
    /// kernel kept retrying the SYN of a blocked `mosquitto_connect`, which then sent CONNECT with
    /// the same client id once the network was back, and the broker handed it the session,
    /// dropping the connection made meanwhile (the uplink then republished its window again).
    @Test func aConnectGivenUpNeverTakesTheSessionOverLater() throws {
        let broker = try Broker()
        let drop = PacketDrop(port: broker.port)
        try drop.start()
        defer { drop.stop() }
        var o = broker.options()
        o.clientID = "given-up-then-replaced"
        o.connectTimeoutMilliseconds = 1_000
        let first = try MQTTConnection(options: o)
        #expect(throws: MQTTError.self) { try first.connect() }
        // The network is back before the kernel's next SYN (3 s after the first one).
        drop.stop()
        let second = try MQTTConnection(options: o)
        try second.connect()
        let until = Date().addingTimeInterval(4)
        while Date() < until, second.isConnected { try? second.loop(timeoutMilliseconds: 100) }
        #expect(second.isConnected, "the connection made after the given-up one was dropped by the broker")
        second.disconnect()
    }

    /// The network goes silent in the middle of a stream: the uplink notices (keepalive), keeps
    /// trying without ever blocking its thread for long (the agent's watchdog watches it), and
    /// when the network is back everything arrives: nothing lost, duplicates within the window.
    @Test func aSilentPartitionMidStreamLosesNothingAndNeverBlocks() throws {
        let broker = try Broker()
        let sub = try Subscriber(broker, topic: "tago/data/post")
        let spool = MemorySpool(capacityBytes: 8 << 20)
        try spool.append(readings(1...2000))
        var options = broker.options()
        options.keepaliveSeconds = 5
        options.connectTimeoutMilliseconds = 1_000
        var settings = MQTTUplinkSettings()
        settings.batchSize = 20
        settings.inflightWindow = 5
        settings.backoff.baseMilliseconds = 100
        settings.backoff.capMilliseconds = 500
        let uplink = MQTTUplink(spool: spool, options: options, settings: settings, deadLetters: deadLetters())
        let drop = PacketDrop(port: broker.port)
        defer { drop.stop() }
        var longest = 0.0
        var partitionedAt: Date?
        var healedAt: Date?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if partitionedAt == nil, uplink.acknowledged >= 400 {
                try drop.start()
                partitionedAt = Date()
            }
            if let p = partitionedAt, healedAt == nil, Date().timeIntervalSince(p) > 14 {
                drop.stop()
                healedAt = Date()
            }
            let t = Date()
            switch uplink.step(waitMilliseconds: 20) {
            case .wait(let ms, _, _) where ms > 0: usleep(UInt32(min(ms, 200)) * 1000)
            default: break
            }
            longest = max(longest, Date().timeIntervalSince(t))
            if partitionedAt == nil || healedAt != nil { sub.pump() }
            if healedAt != nil, spool.stats.recordCount == 0 { break }
        }
        // The subscriber's own connection went through the partition too; TCP retransmits what
        // the broker sent it there, after a backoff of its own.
        let wait = Date().addingTimeInterval(30)
        while Date() < wait, Set(sub.values).count < 2000 { sub.pump(50) }
        #expect(partitionedAt != nil && healedAt != nil)
        #expect(uplink.reconnects >= 1, "the dead connection was never noticed")
        #expect(longest < 2.5, "a step blocked for \(longest) s")
        #expect(spool.stats.recordCount == 0)
        let missing = Set((1...2000).map(Double.init)).subtracting(sub.values).count
        #expect(missing == 0, "readings missing at the subscriber")
        #expect(uplink.published - 2000 <= settings.inflightWindow * settings.batchSize, "reconnects \(uplink.reconnects)")
        uplink.close()
    }

    /// The HTTP uplink through the same silence: curl's timeouts bound every step, and the
    /// readings held during the partition arrive afterwards, none lost.
    @Test func theHTTPUplinkThroughASilentPartition() throws {
        var options = Emulator.Options()
        options.deviceTokens = ["silent-http-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        var http = CurlHTTPClient.Options()
        http.connectTimeoutMilliseconds = 1_000
        http.timeoutMilliseconds = 2_000
        let device = TagoDevice(token: "silent-http-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient(options: http))
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(readings(1...600))
        var policy = UplinkPolicy()
        policy.maxRecords = 50
        policy.backoff.baseMilliseconds = 100
        policy.backoff.capMilliseconds = 500
        let uplink = HTTPUplink(spool: spool, device: device, deadLetters: deadLetters(), policy: policy)
        let drop = PacketDrop(port: Int(port))
        defer { drop.stop() }
        var longest = 0.0
        var partitionedAt: Date?
        var healed = false
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline {
            if partitionedAt == nil, uplink.delivered >= 200 {
                try drop.start()
                partitionedAt = Date()
            }
            if let p = partitionedAt, !healed, Date().timeIntervalSince(p) > 6 {
                drop.stop()
                healed = true
            }
            let t = Date()
            if case .wait(let ms, _, _) = uplink.step(), ms > 0 { usleep(UInt32(min(ms, 200)) * 1000) }
            longest = max(longest, Date().timeIntervalSince(t))
            if healed, spool.stats.recordCount == 0 { break }
        }
        #expect(healed)
        #expect(longest < 3.5, "a step blocked for \(longest) s")
        #expect(spool.stats.recordCount == 0)
        var q = DataQuery(variables: ["counter"], qty: 10_000)
        q.ordination = "ascending"
        let values = try #require(try TagoDevice(token: "silent-http-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
            .find(q).arrayValue).compactMap { $0["value"]?.numberValue }
        #expect(Set(values) == Set((1...600).map(Double.init)), "\(Set((1...600).map(Double.init)).subtracting(values).count) readings missing")
    }
}

/// `MQTTOptions` is a library type anyone can fill (the emulator's `--mqtt HOST:PORT`): values out
/// of range are an error, not a trap (a port past Int32 trapped in `connect`).
@Suite struct MQTTOptionsRangeTests {
    @Test(arguments: [(-1, 60, 1000), (70_000, 60, 1000), (Int.max, 60, 1000), (1883, Int.max, 1000), (1883, 60, -5), (1883, 60, Int.max)])
    func outOfRangeOptionsAreRefused(port: Int, keepalive: Int, timeout: Int) throws {
        var o = MQTTOptions()
        o.host = "127.0.0.1"
        o.port = port
        o.keepaliveSeconds = keepalive
        o.connectTimeoutMilliseconds = timeout
        let c = try MQTTConnection(options: o)
        #expect { try c.connect() } throws: { ($0 as? MQTTError)?.kind == .invalid }
    }
}
