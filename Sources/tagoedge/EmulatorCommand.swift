import EdgeCore
import Emulator
#if canImport(Glibc)
import Glibc
#endif

struct EmulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run a local TagoIO emulator (Device API, Account API, faults on demand) on loopback.",
        discussion: """
        Faults: --faults "latency=50ms,error-rate=0.1,reset-rate=0.05,throttle=10s,blackhole=5s" \
        (throttle and blackhole start now), or at run time: curl -d 'error-rate=0.5' http://127.0.0.1:PORT/_emulator/faults. \
        Counters: GET /_emulator/stats.
        """
    )

    @Option(help: "TCP port on 127.0.0.1 (0 picks a free one).") var port: UInt16 = 8480
    @Option(help: "Address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(name: .customLong("data-dir"), help: "Keep devices, tokens and data here across restarts.") var dataDir: String?
    @Option(name: .customLong("profile-token"), help: "A profile token the Account API accepts (repeatable).") var profileTokens: [String] = []
    @Option(name: .customLong("device-token"), help: "Pre-create a device with this token (repeatable).") var deviceTokens: [String] = []
    @Option(help: "Faults to play from the start.") var faults: String?
    @Option(help: "Ingest JSON data published to a broker (HOST:PORT) into the --device-token device, like TagoIO's Insert to Device action.")
    var mqtt: String?
    @Option(name: .customLong("mqtt-topic"), help: "The data topic to ingest (its sub-topic may name a device token or id).") var mqttTopic = "tago/data/post"
    @Option(name: .customLong("rate-limit"), help: "ROUTE=N per minute, e.g. 'POST /data=250'; 'none' for no limits (default: TagoIO's Scale plan).")
    var rateLimits: [String] = []

    func run() throws {
        var options = Emulator.Options()
        options.profileTokens = profileTokens
        options.deviceTokens = deviceTokens
        options.dataDirectory = dataDir
        if let faults {
            do {
                options.faults = try EmulatorFaults(spec: faults, now: SystemClock().now().millisecondsSince1970)
            } catch {
                throw ValidationError(error.description)
            }
        }
        for limit in rateLimits {
            if limit == "none" { options.rateLimits = [:]; continue }
            let parts = limit.split(separator: "=")
            guard parts.count == 2, let n = Int(parts[1]), n > 0 else { throw ValidationError("--rate-limit '\(limit)': expected ROUTE=N such as 'POST /data=250'") }
            options.rateLimits[String(parts[0])] = n
        }
        blockTerminationSignals()  // before any thread starts, so sigwait below receives them
        let emulator = try Emulator(options: options)
        let bound = try emulator.start(host: host, port: port)
        let devices = deviceTokens.count, accounts = profileTokens.count
        print("TagoIO emulator on http://\(host):\(bound)  (\(devices) device(s) pre-created, \(accounts) account credential(s))")
        print("stats: http://\(host):\(bound)/_emulator/stats")
        if let mqtt {
            let parts = mqtt.split(separator: ":")
            guard parts.count == 2, let mqttPort = Int(parts[1]), (1...65535).contains(mqttPort) else { throw ValidationError("--mqtt '\(mqtt)': expected HOST:PORT such as 127.0.0.1:1883") }
            emulator.ingestMQTT(host: String(parts[0]), port: mqttPort, topic: mqttTopic, defaultToken: deviceTokens.first)
            print("ingesting MQTT \(mqttTopic) from \(mqtt)")
        }
        waitForTermination()
        emulator.stop()
    }
}

func terminationSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGHUP)
    return set
}

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it.
func blockTerminationSignals() {
    var set = terminationSignals()
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

/// Waits for SIGINT, SIGTERM or SIGHUP (call `blockTerminationSignals` first) and returns it.
@discardableResult
func waitForSignal() -> Int32 {
    var set = terminationSignals()
    var signal: Int32 = 0
    sigwait(&set, &signal)
    return signal
}

/// Waits until SIGINT or SIGTERM arrives, ignoring SIGHUP.
func waitForTermination() {
    while waitForSignal() == SIGHUP {}
}

/// Blocks SIGINT and SIGTERM, and returns a check that says, without waiting, whether one has
/// arrived since (for a loop that stops between steps).
func installStopSignals() -> () -> Bool {
    blockTerminationSignals()
    var stopped = false
    return {
        if stopped { return true }
        var set = terminationSignals()
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        let s = sigtimedwait(&set, nil, &zero)
        if s == SIGINT || s == SIGTERM { stopped = true }
        return stopped
    }
}
