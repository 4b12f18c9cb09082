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

/// A mosquitto of the benchmark's own on `port` (anonymous, unlimited queues), its output
/// discarded; waits half a second for it to listen. Stop it with `stopBroker`.
func startBroker(dir: String, port: Int, extra: String = "") -> pid_t {
    let conf = "user root\nlistener \(port) 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\n" + extra
    let fd = open(dir + "/mosquitto.conf", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = conf.withCString { write(fd, $0, strlen($0)) }
    close(fd)
    var pid: pid_t = 0
    let args: [String] = ["/usr/sbin/mosquitto", "-c", dir + "/mosquitto.conf"]
    let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    guard posix_spawn(&pid, "/usr/sbin/mosquitto", &actions, nil, argv, environ) == 0 else { fail("cannot start mosquitto") }
    usleep(500_000)
    return pid
}

func stopBroker(_ pid: pid_t) {
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
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

/// How many times the process's threads went to sleep and were woken (voluntary context switches).
func processWakeups(pid: pid_t) -> Int {
    var total = 0
    for task in (try? LinuxDirectory.list("/proc/\(pid)/task")) ?? [] {
        let text = (try? readTextFile("/proc/\(pid)/task/\(task)/status")) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") {
            total += Int(line.split(separator: ":")[1].filter { $0 != " " && $0 != "\t" }) ?? 0
        }
    }
    return total
}

/// QoS 1 publish throughput: the MQTT uplink draining the spool, against a minimal C
/// libmosquitto publisher and paho-mqtt, same broker, same payloads, same in-flight window.
func mqttBenchmark() throws {
    // 10,000 messages by default: over 2,000 the C program has not settled into its steady rate
    // (it runs 1.5–1.9× faster over 10,000), which flattered the uplink.
    let n = Int(argument("--readings", default: "1000000")) ?? 1_000_000
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
    let brokerPID = startBroker(dir: dir, port: port, extra: flag("--broker-nodelay") ? "set_tcp_nodelay true\n" : "")
    defer { stopBroker(brokerPID) }

    // The readings, and the uplink's first message as the baselines' payload.
    let encoded = payloads(n)
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
    struct Run { var seconds: Double; var cpu: Double?; var broker: Double; var brokerWakeups: Int }
    func measured(_ body: () throws -> (seconds: Double, cpu: Double?)?) rethrows -> Run? {
        let broker0 = processCPUSeconds(pid: brokerPID), wakeups0 = processWakeups(pid: brokerPID)
        guard let r = try body() else { return nil }
        return Run(seconds: r.seconds, cpu: r.cpu, broker: processCPUSeconds(pid: brokerPID) - broker0,
                   brokerWakeups: processWakeups(pid: brokerPID) - wakeups0)
    }

    // The MQTT uplink draining a spool file as the agent keeps it (sync batch), in commits of
    // 100 readings, or with `--spool memory` the in-memory spool; its CPU is the draining thread's.
    let inMemory = argument("--spool", default: "file") == "memory"
    let quickAck = !flag("--no-quickack")
    func uplinkRun() throws -> Run? {
        let spool: Spool
        let path = dir + "/uplink.spool"
        if inMemory {
            spool = MemorySpool(capacityBytes: Int64(n) * 128 + (8 << 20))
        } else {
            unlink(path)
            spool = try FileSpool(path: path, options: .init(capacityBytes: max(64 << 20, Int64(n) * 128), sync: .batch))
        }
        try appendInCommits(spool, encoded, of: 100)
        defer { try? (spool as? FileSpool)?.close() }
        // A backlog is drained long after it was written: let the kernel finish writing these
        // megabytes back first, or its writeback competes with the drain for the two cores.
        try (spool as? FileSpool)?.sync()
        Glibc.sync()
        var options = MQTTOptions()
        options.port = port
        options.clientID = "tagoedge-bench"
        options.quickAck = quickAck
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
        o.quickAck = quickAck
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
    func programRun(_ path: String, _ args: [String], then extra: [String] = []) -> Run? {
        measured {
            let out = runProgram(path, args + ["127.0.0.1", String(port), "tago/data/post", payloadPath, String(messages), String(window)] + extra)
            guard let s = secondsFrom(out.output) else { failures.append("\(path): \(out.output.prefix(200))"); return nil }
            return (s, figure("cpu", in: out.output))
        }
    }

    // Rounds alternate between the publishers so that a noisy moment on this machine hits all of
    // them alike; each row is the median of its rounds. The target compares the uplink with the
    // plain C program; the C program with TCP_QUICKACK (which MQTTConnection sets unless
    // `--no-quickack`) shows what that socket option alone is worth.
    let ack = quickAck ? "" : ", no quick ACK"
    let publishers = [(inMemory ? "tagoedge MQTT uplink (memory spool)" : "tagoedge MQTT uplink (spool file)") + ack, "Swift MQTTConnection, same payload" + ack,
                      "C, libmosquitto directly", "C + TCP_QUICKACK", "paho-mqtt \(python)"]
    let keys = ["uplink", "wrapper", "c", "c-quickack", "paho"]
    var runs: [[Run]] = Array(repeating: [], count: publishers.count)
    // `--only uplink,c` (any of the keys, comma-separated) runs just those, for profiling.
    let only = argument("--only", default: keys.joined(separator: ",")).split(separator: ",").map(String.init)
    // `MQTT_PUB=path` runs that program in the C program's place, with its arguments (a script
    // that runs the C program under `perf stat` or `strace`, to count its system calls).
    let cProgram = getenv("MQTT_PUB").map { String(cString: $0) } ?? dir + "/mqtt_pub"
    for _ in 0..<rounds {
        let round = [only.contains("uplink") ? try uplinkRun() : nil, only.contains("wrapper") ? wrapperRun() : nil,
                     only.contains("c") ? programRun(cProgram, []) : nil,
                     only.contains("c-quickack") ? programRun(cProgram, [], then: ["quickack"]) : nil,
                     only.contains("paho") ? programRun(python, [root + "/Benchmarks/python/paho_pub.py"]) : nil]
        for (i, r) in round.enumerated() { if let r { runs[i].append(r) } }
    }
    func median(_ v: [Double]) -> Double? { v.isEmpty ? nil : v.sorted()[v.count / 2] }
    let seconds = runs.map { median($0.map(\.seconds)) }

    print("mqtt benchmark: \(messages) QoS 1 messages of \(batch) readings (\(first.count) bytes), at most \(window) in flight, one local mosquitto" +
          (flag("--broker-nodelay") ? " with set_tcp_nodelay" : "") + ", median of \(rounds) alternating rounds")
    print("  " + pad("publisher", 46) + pad("messages/s", 12) + pad("readings/s", 12) + pad("client CPU", 12) + pad("broker CPU", 12) + "broker wake-ups (CPU in µs; all a message)")
    for (i, name) in publishers.enumerated() {
        guard let s = seconds[i] else { print("  " + pad(name, 46) + "did not run"); continue }
        let cpu = median(runs[i].compactMap(\.cpu)).map { format($0 / Double(messages) * 1e6, 1) } ?? "-"
        let broker = median(runs[i].map(\.broker)).map { format($0 / Double(messages) * 1e6, 1) } ?? "-"
        let wakeups = median(runs[i].map { Double($0.brokerWakeups) }).map { format($0 / Double(messages), 2) } ?? "-"
        print("  " + pad(name, 46) + pad(format(Double(messages) / s), 12) + pad(format(Double(messages * batch) / s), 12) + pad(cpu, 12) + pad(broker, 12) + wakeups)
    }
    func ratio(_ label: String, _ a: Int, over b: Int, target: String = "") {
        guard let sa = seconds[a], let sb = seconds[b] else { return }
        print("  ratio \(label): \(format(sb / sa, 2))x\(target)   per round: " +
              zip(runs[b], runs[a]).map { format($0.seconds / $1.seconds, 2) }.joined(separator: " "))
    }
    ratio("uplink / C", 0, over: 2, target: "  [>= 0.9]")
    ratio("uplink / C + TCP_QUICKACK", 0, over: 3)
    ratio("Swift wrapper / C" + (quickAck ? " + TCP_QUICKACK" : "") + " (the same work)", 1, over: quickAck ? 3 : 2)
    ratio("uplink / paho", 0, over: 4)
    for f in failures { print("  failed: \(f)") }
}
