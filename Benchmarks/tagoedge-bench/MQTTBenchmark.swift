#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import MQTT
import Spool
import Uplink

/// Runs a program with an empty signal mask, waits, returns its standard output.
func runProgram(_ path: String, _ args: [String]) -> (status: Int32, output: String) {
    let out = "/tmp/tagoedge-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, out, O_WRONLY | O_APPEND, 0o600)
    let all: [String] = [path] + args
    let argv: [UnsafeMutablePointer<CChar>?] = all.map { strdup($0) } + [nil]
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, path, &actions, nil, argv, environ)
    argv.forEach { free($0) }
    posix_spawn_file_actions_destroy(&actions)
    guard rc == 0 else { return (rc, "cannot start \(path)") }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let text = (try? readTextFile(out)) ?? ""
    unlink(out)
    return (status, text)
}

func secondsFrom(_ output: String) -> Double? {
    for line in output.split(separator: "\n") where line.hasPrefix("seconds ") { return Double(line.dropFirst(8)) }
    return nil
}

/// QoS 1 publish throughput: the MQTT uplink draining the spool, against a minimal C
/// libmosquitto publisher and paho-mqtt, same broker, same payloads, same in-flight window.
func mqttBenchmark() throws {
    let n = Int(argument("--readings", default: "200000")) ?? 200_000
    let batch = Int(argument("--batch", default: "100")) ?? 100
    let window = Int(argument("--inflight", default: "10")) ?? 10
    let rounds = max(1, Int(argument("--rounds", default: "5")) ?? 5)
    let python = argument("--python", default: "python3")
    let root = argument("--root", default: ".")
    let dir = "/tmp/tagoedge-bench-mqtt-\(getpid())"
    mkdir(dir, 0o700)
    defer { _ = runProgram("/bin/rm", ["-rf", dir]) }
    // A broker of our own on a free port.
    let port = 20_000 + Int(getpid() % 20_000)
    let conf = "user root\nlistener \(port) 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\n"
    let fd = open(dir + "/mosquitto.conf", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = conf.withCString { write(fd, $0, strlen($0)) }
    close(fd)
    var brokerPID: pid_t = 0
    let brokerArgs: [String] = ["/usr/sbin/mosquitto", "-c", dir + "/mosquitto.conf"]
    let argv: [UnsafeMutablePointer<CChar>?] = brokerArgs.map { strdup($0) } + [nil]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    guard posix_spawn(&brokerPID, "/usr/sbin/mosquitto", &actions, nil, argv, environ) == 0 else { fail("cannot start mosquitto") }
    defer {
        kill(brokerPID, SIGKILL)
        var status: Int32 = 0
        waitpid(brokerPID, &status, 0)
    }
    usleep(500_000)

    // The readings, and the uplink's first message as the baselines' payload.
    let names = ["env_temperature", "env_pressure", "env_humidity", "light_illuminance", "adc_ain0"]
    let encoded = (0..<n).map { i in
        ReadingCodec.encode(Reading(variable: names[i % names.count], value: .number(21.5 + Double(i % 1000) / 100), unit: "°C",
                                    time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64(i) * 1000)))
    }
    let messages = (n + batch - 1) / batch
    var first: [UInt8] = [UInt8(ascii: "[")]
    for (i, p) in encoded.prefix(batch).enumerated() {
        if i > 0 { first.append(UInt8(ascii: ",")) }
        ReadingCodec.decode(p)?.appendDataObjectJSON(to: &first)
    }
    first.append(UInt8(ascii: "]"))
    let payloadPath = dir + "/payload.json"
    let pf = open(payloadPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = first.withUnsafeBytes { write(pf, $0.baseAddress, $0.count) }
    close(pf)
    let cc = runProgram("cc", ["-O2", "-o", dir + "/mqtt_pub", root + "/Benchmarks/c/mqtt_pub.c", "-lmosquitto"])
    guard cc.status == 0 else { fail("cannot build the C baseline: \(cc.output)") }

    // The MQTT uplink draining a spool: wall seconds and CPU seconds of the draining thread.
    func uplinkRun() throws -> (Double, Double) {
        let spool = MemorySpool(capacityBytes: Int64(n) * 128 + (8 << 20))
        try spool.append(encoded)
        var options = MQTTOptions()
        options.port = port
        options.clientID = "tagoedge-bench"
        var settings = MQTTUplinkSettings()
        settings.batchSize = batch
        settings.inflightWindow = window
        let uplink = MQTTUplink(spool: spool, options: options, settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead"))
        _ = uplink.step(waitMilliseconds: 0)  // connect outside the timing
        let cpu0 = threadCPUSeconds(), t0 = now()
        while spool.stats.recordCount > 0 {
            if case .wait(let ms, let reason, _) = uplink.step(waitMilliseconds: 100), ms > 0 { fail("the uplink had to wait: \(reason)") }
        }
        let result = (now() - t0, threadCPUSeconds() - cpu0)
        uplink.close()
        return result
    }

    // The Swift wrapper alone, publishing the same prepared payload as the baselines.
    func wrapperRun() -> Double? {
        var o = MQTTOptions()
        o.port = port
        o.clientID = "tagoedge-wrapper-bench"
        guard let c = try? MQTTConnection(options: o), (try? c.connect()) != nil else { return nil }
        var acked = 0, sent = 0
        c.onPublished = { _ in acked += 1 }
        let t = now()
        while acked < messages {
            while sent < messages, sent - acked < window {
                guard (try? c.publish(topic: "tago/data/post", payload: first)) != nil else { return nil }
                sent += 1
            }
            guard (try? c.loop(timeoutMilliseconds: 100)) != nil else { return nil }
        }
        let elapsed = now() - t
        c.disconnect()
        return elapsed
    }

    // Rounds alternate between the publishers so that a noisy moment on this machine hits all of
    // them alike; each row is the median of its rounds.
    var uplinkSeconds: [Double] = [], uplinkCPU: [Double] = [], wrapperSeconds: [Double] = [], cSeconds: [Double] = [], pahoSeconds: [Double] = []
    var pahoOutput = ""
    for _ in 0..<rounds {
        let (wall, cpu) = try uplinkRun()
        uplinkSeconds.append(wall)
        uplinkCPU.append(cpu)
        if let w = wrapperRun() { wrapperSeconds.append(w) }
        let c = runProgram(dir + "/mqtt_pub", ["127.0.0.1", String(port), "tago/data/post", payloadPath, String(messages), String(window)])
        if let s = secondsFrom(c.output) { cSeconds.append(s) }
        let paho = runProgram(python, [root + "/Benchmarks/python/paho_pub.py", "127.0.0.1", String(port), "tago/data/post", payloadPath, String(messages), String(window)])
        if let s = secondsFrom(paho.output) { pahoSeconds.append(s) } else { pahoOutput = paho.output }
    }
    func median(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.sorted()[v.count / 2] }
    let swiftSeconds = median(uplinkSeconds)!, swiftCPU = median(uplinkCPU)!

    print("mqtt benchmark: \(messages) QoS 1 messages of \(batch) readings (\(first.count) bytes), at most \(window) in flight, one local mosquitto, median of \(rounds) alternating rounds")
    print("  " + pad("publisher", 34) + pad("messages/s", 14) + "readings/s")
    func row(_ name: String, _ seconds: Double?) {
        guard let seconds else { print("  " + pad(name, 34) + "did not run"); return }
        print("  " + pad(name, 34) + pad(format(Double(messages) / seconds), 14) + format(Double(messages * batch) / seconds))
    }
    row("tagoedge MQTT uplink (from spool)", swiftSeconds)
    row("Swift MQTTConnection, same payload", median(wrapperSeconds))
    row("C, libmosquitto directly", median(cSeconds))
    row("paho-mqtt \(python)", median(pahoSeconds))
    if let cs = median(cSeconds) {
        print("  ratio uplink / C: \(format(cs / swiftSeconds, 2))x  [>= 0.9]   per round: " +
              zip(cSeconds, uplinkSeconds).map { format($0 / $1, 2) }.joined(separator: " "))
        if let w = median(wrapperSeconds) { print("  ratio Swift wrapper / C (the same work): \(format(cs / w, 2))x") }
    }
    if let ps = median(pahoSeconds) { print("  ratio uplink / paho: \(format(ps / swiftSeconds, 2))x") } else { print("  paho: \(pahoOutput.prefix(200))") }
    print("  uplink CPU per reading: \(format(swiftCPU / Double(n) * 1e6, 2)) µs (spool, JSON encoding, libmosquitto)")
}
