#if canImport(Glibc)
import Glibc
#endif
import Agent
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

    @Option(name: .shortAndLong, help: "The configuration file (default: /etc/tagoedge/tagoedge.toml, the package's).") var config: String?
    @Flag(help: "Also run a local TagoIO emulator at [device] api and show readings flowing.") var bench = false
    @Option(help: "Seconds between status lines (0: none).") var statusEvery: Int = 10

    static let packageConfig = "/etc/tagoedge/tagoedge.toml"

    func run() throws {
        let config: String
        if let given = self.config {
            config = given
        } else if access(Self.packageConfig, F_OK) == 0 {
            config = Self.packageConfig
        } else {
            throw ValidationError("""
            which configuration? give --config FILE. To try it with no hardware and no account: \
            tagoedge run --config config/bench.toml --bench. For a gateway: start from config/raspberry-pi.toml \
            (installed as \(Self.packageConfig) by the package) and `tagoedge check-config FILE`; README.md, "In the field"
            """)
        }
        let agentConfig = try AgentConfig.load(path: config)
        for w in agentConfig.warnings { printError("warning: \(w)") }
        var token: String
        if let source = agentConfig.device.token, let resolved = try? source.resolve() {
            token = resolved.token
            if let warning = resolved.warning { printError("warning: \(warning)") }
        } else if bench {
            token = "bench-device-token"
            printError("note: no device token set (\(agentConfig.device.token?.description ?? "[device] token is missing")); the bench emulator uses its own")
        } else if agentConfig.uplink.transport == .tagotip && agentConfig.device.token == nil {
            token = ""  // TagoTiP logs in with [tagotip] token; without a device token, no configuration_params
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
            emulator = try startBenchEmulator(agentConfig, token: token)
        }
        let clock = SystemClock()
        // systemd: READY once running; STATUS, and WATCHDOG only while every service shows life
        // (the runtime's status service).
        let systemd = SystemdNotifier()
        let current = CurrentRuntime(try makeRuntime(agentConfig, token: token, clock: clock, systemd: systemd))
        let sensors = agentConfig.sensors.filter(\.enabled).count
        let target = switch agentConfig.uplink.transport {
        case .http: agentConfig.device.api
        case .mqtt: "mqtt://\(agentConfig.mqtt.connection.host):\(agentConfig.mqtt.connection.port)"
        case .tagotip: "TagoTiP \(agentConfig.tagotip.url) as \(agentConfig.tagotip.serial ?? "")"
        }
        print("tagoedge \(TagoEdge.version): \(sensors) sensor(s), spool \(agentConfig.spool.path), uploading to \(target)")
        // READY first: the spool is open and the config valid, and the status service's first
        // WATCHDOG/STATUS must not reach systemd before it (they raced under load).
        systemd.notify("READY=1\nSTATUS=sampling \(sensors) sensor(s)")
        current.runtime.start()
        let housekeeping = StopSignal(clock: clock)
        let every = bench ? min(statusEvery, 2) : statusEvery
        if every > 0 {
            startThread {
                var last = -1
                while housekeeping.sleep(milliseconds: Int64(every) * 1000) {
                    let runtime = current.runtime
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
        // SIGHUP reloads the file: a valid one replaces the running configuration, an invalid one
        // is reported and the old one keeps running.
        while waitForSignal() == SIGHUP {
            systemd.notify("RELOADING=1")
            let fresh: AgentConfig
            do {
                fresh = try AgentConfig.load(path: config)
            } catch {
                printError("reload of \(config) refused, the running configuration stays:\n\(error)")
                systemd.notify("READY=1")
                continue
            }
            for w in fresh.warnings { printError("warning: \(w)") }
            let previous = current.runtime.config
            current.runtime.stop()
            do {
                current.runtime = try makeRuntime(fresh, token: token, clock: clock, systemd: systemd)
                print("reloaded \(config): \(fresh.sensors.filter(\.enabled).count) sensor(s)")
            } catch {
                printError("reload of \(config) failed (\(error)); going on with the previous configuration")
                current.runtime = try makeRuntime(previous, token: token, clock: clock, systemd: systemd)
            }
            current.runtime.start()
            systemd.notify("READY=1")
        }
        systemd.notify("STOPPING=1")
        print("stopping: finishing uploads and making the spool durable")
        housekeeping.stop()
        let runtime = current.runtime
        runtime.stop()
        runtime.writeStatus()
        emulator?.stop()
        let c = runtime.snapshot
        print("stopped: sampled \(c.sampled), acknowledged \(c.delivered), \(runtime.spool.stats.recordCount) kept in the spool for next time")
    }

    func makeRuntime(_ config: AgentConfig, token: String, clock: SystemClock, systemd: SystemdNotifier) throws -> AgentRuntime {
        // Under systemd (journald on stderr) a `<N>` prefix gives each line its priority; on a
        // terminal, warnings and errors say so in words.
        let journal = getenv("JOURNAL_STREAM") != nil
        return try AgentRuntime(config: config, token: token, environment: HardwareEnvironment(clock: clock), clock: clock, systemd: systemd) { level, line in
            if journal {
                printError("<\(level.rawValue)>\(line)")
            } else {
                printError(level == .info ? line : "\(level.name): \(line)")
            }
        }
    }

    /// An emulator at the config's loopback API address, with the device token pre-created.
    func startBenchEmulator(_ config: AgentConfig, token: String) throws -> Emulator? {
        let api = config.device.api
        guard api.hasPrefix("http://") else { throw ValidationError("--bench needs [device] api = \"http://127.0.0.1:PORT\"; it is \(api)") }
        let hostPort = api.dropFirst(7).split(separator: "/").first.map(String.init) ?? ""
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]), parts[0] == "127.0.0.1" || parts[0] == "localhost" else {
            throw ValidationError("--bench needs [device] api on loopback with a port, such as http://127.0.0.1:8480; it is \(api)")
        }
        var options = Emulator.Options()
        options.deviceTokens = [token]
        options.profileTokens = ["bench-profile-token"]
        // TagoTiP over HTTP to the bench emulator: it knows the [tagotip] token and serial.
        if config.uplink.transport == .tagotip, let serial = config.tagotip.serial, let tipToken = try? config.tagotip.token?.resolve().token {
            options.tipAuthorizationTokens = [tipToken]
            options.tipDevices = [serial: token]
        }
        let emulator = try Emulator(options: options)
        do {
            _ = try emulator.start(host: "127.0.0.1", port: port)
        } catch {
            printError("note: port \(port) is taken (an emulator already running?); using it as TagoIO")
            return nil
        }
        print("bench: TagoIO emulator on http://127.0.0.1:\(port) (stats: /_emulator/stats)")
        return emulator
    }
}

/// The runtime in use, swapped on reload.
final class CurrentRuntime: @unchecked Sendable {
    private let lock = Lock()
    private var value: AgentRuntime

    init(_ runtime: AgentRuntime) { value = runtime }

    var runtime: AgentRuntime {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
