#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Emulator
import MQTT
import Spool
import TagoTiP
import Uplink

/// TagoTiP against the JSON payloads, side by side: bytes a reading on the wire, the cost of
/// encoding, and readings/s delivered through one local mosquitto: the TagoTiP uplink (a reading
/// leaves the spool on the server's `OK`, one message in flight, the emulator as the server parsing
/// and storing every body), the JSON MQTT uplink (PUBACK, 10 in flight), and the C program
/// publishing the same TagoTiP payload with 1 and with 10 in flight (PUBACK only, no server).
func tagoTiPBenchmark() throws {
    let n = Int(argument("--readings", default: "20000")) ?? 20_000
    let rounds = max(1, Int(argument("--rounds", default: "3")) ?? 3)
    let root = argument("--root", default: ".")
    let dir = "/tmp/tagoedge-bench-tip-\(getpid())"
    mkdir(dir, 0o700)
    defer { _ = runProgram("/bin/rm", ["-rf", dir]) }
    let encoded = payloads(n)
    let readings = encoded.compactMap { ReadingCodec.decode($0) }

    // Bytes a reading: a message of 100 readings each way.
    var json: [UInt8] = [UInt8(ascii: "[")]
    var writer = TipBodyWriter()
    for (i, r) in readings.prefix(100).enumerated() {
        if i > 0 { json.append(UInt8(ascii: ",")) }
        r.appendDataObjectJSON(to: &json)
        _ = writer.append(try r.tipVariable().encoded())
    }
    json.append(UInt8(ascii: "]"))
    let tipPayload = Array("!123456|".utf8) + (writer.body ?? [])
    // Encoding cost, a reading: the JSON transcoder's general path and the TagoTiP builder.
    var t0 = now()
    var sink = 0
    for r in readings {
        var out: [UInt8] = []
        r.appendDataObjectJSON(to: &out)
        sink &+= out.count
    }
    let jsonEncode = (now() - t0) / Double(readings.count) * 1e6
    t0 = now()
    for r in readings { sink &+= ((try? r.tipVariable().encoded()) ?? []).count }
    let tipEncode = (now() - t0) / Double(readings.count) * 1e6

    // One broker, anonymous; the emulator answers TagoTiP on it.
    let port = 20_000 + Int((getpid() + 7) % 20_000)
    let brokerPID = startBroker(dir: dir, port: port)
    defer { stopBroker(brokerPID) }
    let token = "ate2bd319014b24e0a8aca9f00aea4c0d0"
    var options = Emulator.Options()
    options.deviceTokens = ["bench-tip-device"]
    options.tipAuthorizationTokens = [token]
    options.tipDevices = ["bench-gw": "bench-tip-device"]
    options.mutableRecordLimit = n * (rounds + 1)
    let emulator = try Emulator(options: options)
    _ = try emulator.start()
    defer { emulator.stop() }
    emulator.serveTagoTiPOverMQTT(host: "127.0.0.1", port: port)
    usleep(300_000)

    func broker() -> MQTTOptions {
        var o = MQTTOptions()
        o.port = port
        o.clientID = "tagoedge-bench-\(UInt32.random(in: 0...UInt32.max))"
        return o
    }
    func drain(_ spool: Spool, _ step: () -> UplinkStep) -> Double {
        let start = now()
        while spool.stats.recordCount > 0 {
            if case .wait(let ms, let reason, _) = step(), ms > 0 { fail("the uplink had to wait: \(reason)") }
        }
        return now() - start
    }
    func tipRun() throws -> Double {
        let spool = MemorySpool(capacityBytes: Int64(n) * 128 + (8 << 20))
        try spool.append(encoded)
        var settings = TagoTiPUplinkSettings()
        settings.serial = "bench-gw"
        settings.counterFile = dir + "/counter"
        let uplink = TagoTiPUplink(spool: spool, transport: TipMQTTTransport(options: broker(), authorizationToken: token, serial: "bench-gw"),
                                   settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead"))
        defer { uplink.close() }
        return drain(spool) { uplink.step() }
    }
    func jsonRun() throws -> Double {
        let spool = MemorySpool(capacityBytes: Int64(n) * 128 + (8 << 20))
        try spool.append(encoded)
        let uplink = MQTTUplink(spool: spool, options: broker(), settings: MQTTUplinkSettings(), deadLetters: DeadLetterFile(path: dir + "/dead"))
        _ = uplink.step(waitMilliseconds: 0)
        defer { uplink.close() }
        return drain(spool) { uplink.step(waitMilliseconds: 100) }
    }
    let payloadPath = dir + "/tip.txt"
    let pf = open(payloadPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = tipPayload.withUnsafeBytes { write(pf, $0.baseAddress, $0.count) }
    close(pf)
    let cc = runProgram("cc", ["-O2", "-o", dir + "/mqtt_pub", root + "/Benchmarks/c/mqtt_pub.c", "-lmosquitto"])
    guard cc.status == 0 else { fail("cannot build the C baseline: \(cc.output)") }
    let messages = (n + 99) / 100
    func cRun(window: Int) -> Double? {
        secondsFrom(runProgram(dir + "/mqtt_pub", ["127.0.0.1", String(port), "bench/tip", payloadPath, String(messages), String(window)]).output)
    }
    var runs: [[Double]] = [[], [], [], []]
    for _ in 0..<rounds {
        runs[0].append(try tipRun())
        runs[1].append(try jsonRun())
        if let s = cRun(window: 1) { runs[2].append(s) }
        if let s = cRun(window: 10) { runs[3].append(s) }
    }
    func median(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.sorted()[v.count / 2] }
    print("tagotip benchmark: \(n) readings in messages of 100, one local mosquitto, median of \(rounds) alternating rounds")
    print("  bytes a reading (message of 100 / 100): TagoTiP \(format(Double(tipPayload.count) / 100, 1)), JSON \(format(Double(json.count) / 100, 1))" +
          "  ratio JSON / TagoTiP: \(format(Double(json.count) / Double(tipPayload.count), 2))x")
    print("  encoding a reading: TagoTiP \(format(tipEncode, 2)) µs, JSON data object \(format(jsonEncode, 2)) µs  (\(sink % 2))")
    let names = ["TagoTiP uplink, delivered on the server's OK (1 in flight)", "JSON MQTT uplink, on PUBACK (10 in flight)",
                 "C, the TagoTiP payload, PUBACK, 1 in flight", "C, the TagoTiP payload, PUBACK, 10 in flight"]
    for (i, name) in names.enumerated() {
        guard let s = median(runs[i]) else { print("  " + pad(name, 62) + "did not run"); continue }
        print("  " + pad(name, 62) + format(Double(n) / s) + " readings/s")
    }
    if let a = median(runs[0]), let c = median(runs[2]) { print("  ratio TagoTiP uplink / C with 1 in flight: \(format(c / a, 2))x") }
    if let a = median(runs[0]), let j = median(runs[1]) { print("  ratio TagoTiP uplink / JSON uplink: \(format(j / a, 2))x") }
}
