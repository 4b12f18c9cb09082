#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Emulator

/// The agent's footprint: `tagoedge run` with 10 simulated sensors at 1 s and an upload every
/// 5 s, against the emulator, for a minute. Peak RSS, CPU per reading, wake-ups per second, and
/// the binary's stripped size.
func footprintBenchmark() throws {
    let binary = argument("--binary", default: ".build/release/tagoedge")
    let seconds = Int(argument("--seconds", default: "60")) ?? 60
    let sync = argument("--sync", default: "batch")
    let dir = "/tmp/tagoedge-footprint-\(getpid())"
    mkdir(dir, 0o700)
    defer { _ = runProgram("/bin/rm", ["-rf", dir]) }
    var options = Emulator.Options()
    options.deviceTokens = ["footprint-token"]
    options.rateLimits = [:]
    let emulator = try Emulator(options: options)
    let port = try emulator.start()
    defer { emulator.stop() }
    let sensors: [(String, String)] = [
        ("env1", "driver = \"bme280\"\nbus = 1\naddress = 0x76"), ("env2", "driver = \"bme280\"\nbus = 1\naddress = 0x77"),
        ("env3", "driver = \"bme280\"\nbus = 2\naddress = 0x76"), ("climate1", "driver = \"sht3x\"\nbus = 1"),
        ("climate2", "driver = \"sht3x\"\nbus = 2"), ("light", "driver = \"bh1750\"\nbus = 1"),
        ("adc", "driver = \"ads1115\"\nbus = 1\nchannels = [\"ain0\", \"ain1\"]"), ("probe", "driver = \"ds18b20\""),
        ("board", "driver = \"board\""), ("rain", "driver = \"gpio\"\nline = 17\nmode = \"counter\""),
    ]
    var text = """
    [device]
    token = "footprint-token"
    api = "http://127.0.0.1:\(port)"
    [spool]
    path = "\(dir)/spool"
    capacity = "8MiB"
    sync = "\(sync)"
    [agent]
    upload_interval = "5s"
    telemetry = "off"
    params_interval = "off"

    """
    for (name, body) in sensors { text += "[[sensor]]\nname = \"\(name)\"\n\(body)\ninterval = \"1s\"\n[sensor.simulate]\nsignal = \"sine\"\n\n" }
    let fd = open(dir + "/agent.toml", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)

    var pid: pid_t = 0
    let args: [String] = [binary, "run", "--config", dir + "/agent.toml", "--status-every", "0"]
    let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    guard posix_spawn(&pid, binary, &actions, nil, argv, environ) == 0 else { fail("cannot start \(binary)") }
    // Steady state: CPU and readings counted from 10 s in, so start-up is not spread over the run.
    let warmup = min(10, seconds / 3)
    sleep(UInt32(warmup))
    // CPU time from the scheduler's accounting: /proc/PID/stat's 10 ms ticks over a minute at
    // 0.2 % CPU would be off by a fifth.
    func cpu() -> Double { processCPUSeconds(pid: pid) }
    let cpuAtWarmup = cpu()
    let readingsAtWarmup = ((try? emulatorStats(port)) ?? .null)["records"]?.numberValue ?? 0
    sleep(UInt32(seconds - warmup))
    // Measure before stopping it.
    let status = (try? readTextFile("/proc/\(pid)/status")) ?? ""
    func field(_ name: String) -> Double {
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init)?.trimmingCharacters() ?? "") ?? 0
        }
        return 0
    }
    let peakKB = field("VmHWM"), rssKB = field("VmRSS")
    var switches = 0.0
    for task in (try? LinuxDirectory.list("/proc/\(pid)/task")) ?? [] {
        let t = (try? readTextFile("/proc/\(pid)/task/\(task)/status")) ?? ""
        for line in t.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
            switches += Double(line.split(separator: "\t").last.map(String.init) ?? "0") ?? 0
        }
    }
    let cpuSeconds = cpu() - cpuAtWarmup
    let totalCPU = cpu()
    kill(pid, SIGTERM)
    var exitStatus: Int32 = 0
    waitpid(pid, &exitStatus, 0)
    let stats = (try? emulatorStats(port)) ?? .null
    let readings = stats["records"]?.numberValue ?? 0
    let steadyReadings = readings - readingsAtWarmup
    // The binary's size, stripped.
    _ = runProgram("/bin/cp", [binary, dir + "/stripped"])
    _ = runProgram("strip", [dir + "/stripped"])
    var st = stat_t()
    let size = stat(dir + "/stripped", &st) == 0 ? Double(st.st_size) : 0

    print("footprint: tagoedge run, 10 simulated sensors at 1 s (20 readings a second), upload every 5 s, spool sync \(sync), \(seconds) s, binary \(binary)")
    print("  peak RSS:              \(format(peakKB / 1024, 1)) MB (now \(format(rssKB / 1024, 1)) MB)  [<= 20 MB]")
    print("  readings acknowledged: \(format(readings)) (\(format(readings / Double(seconds), 1))/s)")
    print("  CPU per reading:       \(format(cpuSeconds / max(steadyReadings, 1) * 1e6, 1)) µs in steady state (after \(warmup) s), sampling to acknowledgement, simulated chips included  [<= 50 µs]")
    print("  CPU, whole run:        \(format(totalCPU, 2)) s (\(format(totalCPU / max(readings, 1) * 1e6, 1)) µs per reading with start-up)")
    print("  wake-ups:              \(format(switches / Double(seconds), 1)) per second (context switches of all threads)")
    print("  binary, stripped:      \(format(size / 1_048_576, 1)) MB  [<= 25 MB]")
}

typealias stat_t = stat

func emulatorStats(_ port: UInt16) throws -> JSONValue {
    let out = runProgram("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/_emulator/stats"])
    return try JSONValue.parse(out.output)["result"] ?? .null
}

enum LinuxDirectory {
    static func list(_ path: String) throws -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

extension String {
    func trimmingCharacters() -> String { String(filter { $0 != " " && $0 != "\t" }) }
}
