import Foundation
import Testing
import EdgeCore
import MQTT
import Spool
import Emulator
import TagoKit
import TagoTiP
import TestSupport
import Uplink

/// The TagoTiP uplink over the MQTT binding, through a real mosquitto that checks the login
/// against a password file holding the Authorization Hash split in two (as TagoIO's broker
/// resolves the profile), with the emulator as the TagoTiP server behind it.
final class TipBroker {
    static let token = "ate2bd319014b24e0a8aca9f00aea4c0d0"
    static let serial = "gw-0042"
    let broker: Broker
    let emulator: Emulator
    let apiPort: UInt16
    let dir = makeTemporaryDirectory("tagoedge-tip")

    init() throws {
        let hash = Tip.authorizationHash(token: Self.token)
        let passwd = dir + "/passwd"
        for (i, (user, password)) in [(String(hash.prefix(8)), String(hash.suffix(8))), ("emulator", "emulator-secret")].enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_passwd")
            p.arguments = (i == 0 ? ["-c"] : []) + ["-b", passwd, user, password]
            try p.run()
            p.waitUntilExit()
        }
        broker = try Broker(extraConfig: "allow_anonymous false\npassword_file \(passwd)\n")
        var options = Emulator.Options()
        options.deviceTokens = ["tip-device-token"]
        options.tipAuthorizationTokens = [Self.token]
        options.tipDevices = [Self.serial: "tip-device-token"]
        emulator = try Emulator(options: options)
        apiPort = try emulator.start()
        emulator.serveTagoTiPOverMQTT(host: "127.0.0.1", port: broker.port, username: "emulator", password: "emulator-secret")
    }

    deinit { emulator.stop() }

    func uplink(_ spool: Spool, token: String = TipBroker.token, counterFile: String? = nil) -> TagoTiPUplink {
        var settings = TagoTiPUplinkSettings()
        settings.serial = Self.serial
        settings.counterFile = counterFile ?? dir + "/counter"
        settings.backoff.baseMilliseconds = 10
        settings.backoff.capMilliseconds = 50
        settings.ackTimeoutMilliseconds = 2_000
        let transport = TipMQTTTransport(options: broker.options(), authorizationToken: token, serial: Self.serial)
        return TagoTiPUplink(spool: spool, transport: transport, settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead.jsonl"))
    }

    /// Steps until the spool is empty (true) or the time is up.
    func drain(_ u: TagoTiPUplink, _ spool: Spool) -> Bool {
        waitUntil(seconds: 20) {
            if case .wait(let ms, _, _) = u.step(), ms > 0 { usleep(UInt32(min(ms, 50)) * 1000) }
            return spool.stats.recordCount == 0
        }
    }

    func stored() -> Int { emulator.tipAnswers.filter { $0.contains("|OK|") || $0.hasPrefix("\(Self.serial) OK") }.count }
}

func tipReadings(_ range: Range<Int>) -> [[UInt8]] {
    range.map { ReadingCodec.encode(Reading(variable: "temperature", value: .number(20 + Double($0) / 8), unit: "°C",
                                            time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64($0)), metadata: ["sensor": "bme280"])) }
}

@Suite(.serialized) struct TagoTiPMQTTTests {
    /// Logs in with the hash (the broker's password file has only the hash), publishes
    /// `!N|[…]` bodies, and a reading leaves the spool on the server's `!N|OK|n`, not on PUBACK.
    /// The token appears nowhere the broker can see.
    @Test func deliversWithTheHashLoginAndTheServersAnswer() throws {
        let tip = try TipBroker()
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(tipReadings(0..<250))
        let u = tip.uplink(spool)
        #expect(tip.drain(u, spool))
        u.close()
        #expect(u.delivered == 250)
        let answers = tip.emulator.tipAnswers
        #expect(answers.count == 3 && answers.allSatisfy { $0 == "\(TipBroker.serial) OK|100" || $0 == "\(TipBroker.serial) OK|50" }, "\(answers)")
        let log = (try? String(contentsOfFile: tip.broker.dir + "/broker.log", encoding: .utf8)) ?? ""
        #expect(!log.contains(TipBroker.token) && !log.contains(String(TipBroker.token.dropFirst(2))))
    }

    /// A token whose hash the broker does not know: the login is refused, everything kept.
    @Test func aWrongTokenIsRefusedAtLogin() throws {
        let tip = try TipBroker()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(tipReadings(0..<3))
        let u = tip.uplink(spool, token: "at11111111111111111111111111111111")
        let step = u.step()
        guard case .wait(let ms, let reason, .unauthorized) = step else { Issue.record("\(step)"); return }
        #expect(ms >= 300_000 && reason.contains("refused the login"))
        #expect(spool.stats.recordCount == 3)
    }

    /// The counter across restarts, and after its file is lost: the server refuses the stale
    /// counter (`invalid_seq`), the uplink resynchronises, nothing is lost or stored twice.
    @Test func theCounterSurvivesRestartsAndALostFile() throws {
        let tip = try TipBroker()
        let spool = MemorySpool(capacityBytes: 4 << 20)
        let file = tip.dir + "/counter"
        try spool.append(tipReadings(0..<150))
        var u = tip.uplink(spool, counterFile: file)
        #expect(tip.drain(u, spool))
        let first = u.lastCounter
        u.close()
        try spool.append(tipReadings(150..<160))
        u = tip.uplink(spool, counterFile: file)
        #expect(tip.drain(u, spool))
        #expect(u.lastCounter > first && u.errors.isEmpty)
        u.close()
        unlink(file)
        try spool.append(tipReadings(160..<170))
        u = tip.uplink(spool, counterFile: file)
        #expect(tip.drain(u, spool))
        #expect(u.errors.contains(.invalidSeq))
        u.close()
        var q = DataQuery(variables: ["temperature"], qty: 1_000)
        q.ordination = "ascending"
        let device = TagoDevice(token: "tip-device-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(tip.apiPort)"), http: CurlHTTPClient())
        #expect(try device.find(q).arrayValue?.count == 170)
    }

    /// `CMD|…` published by the server reaches the agent's downlink.
    @Test func commandsReachTheAgent() throws {
        let tip = try TipBroker()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        let u = tip.uplink(spool)
        _ = u.step()
        tip.emulator.queueTipCommand(serial: TipBroker.serial, "relay=on")
        var got: [String] = []
        #expect(waitUntil(seconds: 10) {
            _ = u.step()
            got += u.takeDownlink().map { String(decoding: $0.payload, as: UTF8.self) }
            return !got.isEmpty
        })
        #expect(got == ["relay=on"])
        u.close()
    }
}
