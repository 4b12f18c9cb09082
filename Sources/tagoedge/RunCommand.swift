#if canImport(Glibc)
import Glibc
#endif
import Agent
import ArgumentParser
import EdgeCore
import Emulator

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the agent: sample every sensor on its interval into the spool, and upload it.",
        discussion: """
        SIGINT or SIGTERM stops sampling, ends uploads, makes the spool durable and exits 0. \
        With --bench, a local TagoIO emulator is started at the config's [device] api (a loopback \
        address), so the bench config runs with no account and no hardware.
        """
    )

    @Option(name: .shortAndLong, help: "The configuration file.") var config: String
    @Flag(help: "Also run a local TagoIO emulator at [device] api and show readings flowing.") var bench = false
    @Option(help: "Seconds between status lines (0: none).") var statusEvery: Int = 10

    func run() throws {
        let agentConfig = try AgentConfig.load(path: config)
        for w in agentConfig.warnings { printError("warning: \(w)") }
        var token: String
        if let source = agentConfig.device.token, let resolved = try? source.resolve() {
            token = resolved.token
            if let warning = resolved.warning { printError("warning: \(warning)") }
        } else if bench {
            token = "bench-device-token"
            printError("note: no device token set (\(agentConfig.device.token?.description ?? "[device] token is missing")); the bench emulator uses its own")
        } else {
            guard let source = agentConfig.device.token else { throw ValidationError("\(config): [device] token is required to upload") }
            do {
                _ = try source.resolve()
            } catch {
                throw ValidationError("\(config): \(error)")
            }
            token = ""
        }
        blockTerminationSignals()  // before any thread starts
        var emulator: Emulator?
        if bench {
            emulator = try startBenchEmulator(api: agentConfig.device.api, token: token)
        }
        let clock = SystemClock()
        let runtime = try AgentRuntime(config: agentConfig, token: token, environment: HardwareEnvironment(clock: clock)) { line in
            printError(line)
        }
        let sensors = agentConfig.sensors.filter(\.enabled).count
        let target = agentConfig.uplink.transport == .http ? agentConfig.device.api : "mqtt://\(agentConfig.mqtt.host):\(agentConfig.mqtt.port)"
        print("tagoedge \(TagoEdge.version): \(sensors) sensor(s), spool \(agentConfig.spool.path), uploading to \(target)")
        runtime.start()
        // systemd: READY once running; WATCHDOG only while sampling and uploading go round;
        // STATUS and the status file every few seconds.
        let systemd = SystemdNotifier()
        systemd.notify("READY=1\nSTATUS=sampling \(sensors) sensor(s)")
        let watchdog = systemd.watchdogIntervalMilliseconds
        startThread {
            var tick: Int64 = 0
            let step: Int64 = min(watchdog ?? 1000, 1000)
            while runtime.stopSignal.sleep(milliseconds: step, clock: clock) {
                tick += step
                if let watchdog, runtime.isAlive(withinMilliseconds: max(watchdog * 2, 5_000)) { systemd.notify("WATCHDOG=1") }
                if tick % 5000 < step {
                    runtime.writeStatus()
                    let c = runtime.snapshot
                    systemd.notify("STATUS=sampled \(c.sampled), acknowledged \(c.delivered), waiting \(runtime.spool.stats.recordCount)")
                }
            }
        }
        let every = bench ? min(statusEvery, 2) : statusEvery
        if every > 0 {
            startThread {
                var last = -1
                while runtime.stopSignal.sleep(milliseconds: Int64(every) * 1000, clock: clock) {
                    let c = runtime.snapshot
                    let waiting = runtime.spool.stats.recordCount
                    if c.sampled == last && waiting == 0 { continue }
                    last = c.sampled
                    var line = "sampled \(c.sampled) · acknowledged by TagoIO \(c.delivered) · waiting in spool \(waiting)"
                    if c.sensorFailures > 0 { line += " · sensor failures \(c.sensorFailures)" }
                    if let p = c.lastUplinkProblem, c.delivered == 0 || waiting > 1000 { line += " · uplink: \(p)" }
                    print(line)
                }
            }
        }
        waitForTermination()
        systemd.notify("STOPPING=1")
        print("stopping: finishing uploads and making the spool durable")
        runtime.stop()
        runtime.writeStatus()
        emulator?.stop()
        let c = runtime.snapshot
        print("stopped: sampled \(c.sampled), acknowledged \(c.delivered), \(runtime.spool.stats.recordCount) kept in the spool for next time")
    }

    /// An emulator at the config's loopback API address, with the device token pre-created.
    func startBenchEmulator(api: String, token: String) throws -> Emulator? {
        guard api.hasPrefix("http://") else { throw ValidationError("--bench needs [device] api = \"http://127.0.0.1:PORT\"; it is \(api)") }
        let hostPort = api.dropFirst(7).split(separator: "/").first.map(String.init) ?? ""
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]), parts[0] == "127.0.0.1" || parts[0] == "localhost" else {
            throw ValidationError("--bench needs [device] api on loopback with a port, such as http://127.0.0.1:8480; it is \(api)")
        }
        var options = Emulator.Options()
        options.deviceTokens = [token]
        options.profileTokens = ["bench-profile-token"]
        let emulator = try Emulator(options: options)
        do {
            _ = try emulator.start(host: "127.0.0.1", port: port)
        } catch {
            printError("note: port \(port) is taken (an emulator already running?); using it as TagoIO")
            return nil
        }
        print("bench: TagoIO emulator on http://127.0.0.1:\(port) (stats: /_emulator/stats; profile token bench-profile-token)")
        return emulator
    }
}
