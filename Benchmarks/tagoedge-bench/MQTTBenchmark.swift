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

/// The value of the output line `NAME <number>`.
func figure(_ name: String, in output: String) -> Double? {
    for line in output.split(separator: "\n") where line.hasPrefix(name + " ") { return Double(line.dropFirst(name.count + 1)) }
    return nil
}

func secondsFrom(_ output: String) -> Double? { figure("seconds", in: output) }

/// CPU seconds a process has run, all its threads, from the scheduler's own accounting
/// (nanoseconds), not /proc/PID/stat's 10 ms ticks.
func processCPUSeconds(pid: pid_t) -> Double {
    var total = 0.0
    for task in (try? LinuxDirectory.list("/proc/\(pid)/task")) ?? [] {
        let text = (try? readTextFile("/proc/\(pid)/task/\(task)/schedstat")) ?? ""
        total += Double(text.split(separator: " ").first.map(String.init) ?? "0") ?? 0
    }
    return total / 1e9
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

    /// One publisher's run: wall seconds, its own CPU seconds, and the broker's CPU seconds.
    struct Run { var seconds: Double; var cpu: Double?; var broker: Double }
    func measured(_ body: () throws -> (seconds: Double, cpu: Double?)?) rethrows -> Run? {
        let broker0 = processCPUSeconds(pid: brokerPID)
        guard let r = try body() else { return nil }
        return Run(seconds: r.seconds, cpu: r.cpu, broker: processCPUSeconds(pid: brokerPID) - broker0)
    }

    // The MQTT uplink draining a spool file as the agent keeps it (sync batch), in commits of
    // 100 readings, or with `--spool memory` the in-memory spool; its CPU is the draining thread's.
    let inMemory = argument("--spool", default: "file") == "memory"
    func uplinkRun() throws -> Run? {
        let spool: Spool
        let path = dir + "/uplink.spool"
        if inMemory {
            spool = MemorySpool(capacityBytes: Int64(n) * 128 + (8 << 20))
        } else {
            unlink(path)
            spool = try FileSpool(path: path, options: .init(capacityBytes: max(64 << 20, Int64(n) * 128), sync: .batch))
        }
        var i = 0
        while i < n {
            try spool.append(Array(encoded[i..<min(i + 100, n)]))
            i += 100
        }
        defer { try? (spool as? FileSpool)?.close() }
        var options = MQTTOptions()
        options.port = port
        options.clientID = "tagoedge-bench"
        var settings = MQTTUplinkSettings()
        settings.batchSize = batch
        settings.inflightWindow = window
        let uplink = MQTTUplink(spool: spool, options: options, settings: settings, deadLetters: DeadLetterFile(path: dir + "/dead"))
        _ = uplink.step(waitMilliseconds: 0)  // connect outside the timing
        defer { uplink.close() }
        return measured {
            let cpu0 = threadCPUSeconds(), t0 = now()
            while spool.stats.recordCount > 0 {
                if case .wait(let ms, let reason, _) = uplink.step(waitMilliseconds: 100), ms > 0 { fail("the uplink had to wait: \(reason)") }
            }
            return (now() - t0, threadCPUSeconds() - cpu0)
        }
    }

    // The Swift wrapper alone, publishing the same prepared payload as the baselines.
    func wrapperRun() -> Run? {
        var o = MQTTOptions()
        o.port = port
        o.clientID = "tagoedge-wrapper-bench"
        guard let c = try? MQTTConnection(options: o), (try? c.connect()) != nil else { return nil }
        defer { c.disconnect() }
        var acked = 0, sent = 0
        c.onPublished = { _ in acked += 1 }
        return measured {
            let cpu0 = threadCPUSeconds(), t = now()
            while acked < messages {
                while sent < messages, sent - acked < window {
                    guard (try? c.publish(topic: "tago/data/post", payload: first)) != nil else { return nil }
                    sent += 1
                }
                guard (try? c.loop(timeoutMilliseconds: 100)) != nil else { return nil }
            }
            return (now() - t, threadCPUSeconds() - cpu0)
        }
    }

    // A baseline program; it prints `seconds` (and `cpu`, its process's CPU while publishing).
    var failures: [String] = []
    func programRun(_ path: String, _ args: [String]) -> Run? {
        measured {
            let out = runProgram(path, args + ["127.0.0.1", String(port), "tago/data/post", payloadPath, String(messages), String(window)])
            guard let s = secondsFrom(out.output) else { failures.append("\(path): \(out.output.prefix(200))"); return nil }
            return (s, figure("cpu", in: out.output))
        }
    }

    // Rounds alternate between the publishers so that a noisy moment on this machine hits all of
    // them alike; each row is the median of its rounds.
    let publishers = [inMemory ? "tagoedge MQTT uplink (memory spool)" : "tagoedge MQTT uplink (spool file)", "Swift MQTTConnection, same payload", "C, libmosquitto directly", "paho-mqtt \(python)"]
    var runs: [[Run]] = Array(repeating: [], count: publishers.count)
    // `--only uplink` (or wrapper, c, paho; comma-separated) runs just those, for profiling.
    let only = argument("--only", default: "uplink,wrapper,c,paho").split(separator: ",").map(String.init)
    for _ in 0..<rounds {
        let round = [only.contains("uplink") ? try uplinkRun() : nil, only.contains("wrapper") ? wrapperRun() : nil,
                     only.contains("c") ? programRun(dir + "/mqtt_pub", []) : nil,
                     only.contains("paho") ? programRun(python, [root + "/Benchmarks/python/paho_pub.py"]) : nil]
        for (i, r) in round.enumerated() { if let r { runs[i].append(r) } }
    }
    func median(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.sorted()[v.count / 2] }
    let seconds = runs.map { median($0.map(\.seconds)) }

    print("mqtt benchmark: \(messages) QoS 1 messages of \(batch) readings (\(first.count) bytes), at most \(window) in flight, one local mosquitto, median of \(rounds) alternating rounds")
    print("  " + pad("publisher", 36) + pad("messages/s", 12) + pad("readings/s", 12) + pad("client CPU", 12) + "broker CPU (µs a message)")
    for (i, name) in publishers.enumerated() {
        guard let s = seconds[i] else { print("  " + pad(name, 36) + "did not run"); continue }
        let cpu = median(runs[i].compactMap(\.cpu)).map { format($0 / Double(messages) * 1e6, 1) } ?? "-"
        let broker = median(runs[i].map(\.broker)).map { format($0 / Double(messages) * 1e6, 1) } ?? "-"
        print("  " + pad(name, 36) + pad(format(Double(messages) / s), 12) + pad(format(Double(messages * batch) / s), 12) + pad(cpu, 12) + broker)
    }
    if let cs = seconds[2], let uplinkSeconds = seconds[0] {
        print("  ratio uplink / C: \(format(cs / uplinkSeconds, 2))x  [>= 0.9]   per round: " +
              zip(runs[2], runs[0]).map { format($0.seconds / $1.seconds, 2) }.joined(separator: " "))
        if let w = seconds[1] { print("  ratio Swift wrapper / C (the same work): \(format(cs / w, 2))x") }
    }
    if let ps = seconds[3], let uplinkSeconds = seconds[0] { print("  ratio uplink / paho: \(format(ps / uplinkSeconds, 2))x") }
    for f in failures { print("  failed: \(f)") }
}
