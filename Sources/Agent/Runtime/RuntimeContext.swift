import EdgeCore
import Spool
import TagoKit

/// What the running agent has done, for the live line and `status`.
public struct AgentCounters: Sendable {
    public var sampled = 0
    /// Edge analyses run.
    public var analysisRuns = 0
    public var sensorFailures = 0
    public var spooled = 0
    /// Readings the report settings held back or folded into an aggregate (never spooled).
    public var withheld = 0
    public var delivered = 0
    public var uplinkWaits = 0
    /// Times the uplink waited for the plan's per-minute limit.
    public var budgetWaits = 0
    public var lastUplinkProblem: String?
    public var lastSensorProblem: String?
    /// The last reading of each sensor, and when TagoIO last acknowledged anything.
    public var lastReadings: [String: Reading] = [:]
    public var lastDelivery: Timestamp?
    public var recentErrors: [String] = []

    /// Keeps the ten most recent problems, stamped.
    mutating func note(_ problems: [String], at stamp: Timestamp) {
        recentErrors = Array((recentErrors + problems.map { "\(stamp.iso8601) \($0)" }).suffix(10))
    }
}

/// What the services of one runtime share: the configuration, the spool, the settings from the
/// cloud, the clocks, the counters and the log. Owned by `AgentRuntime`; every service holds it
/// only while it runs (the supervisor joins them before the spool closes).
public final class RuntimeContext: @unchecked Sendable {
    public let config: AgentConfig
    public let spool: Spool
    public let clock: MonotonicClock & WallClock
    public let clockGuard: ClockGuard
    public let remote: RemoteSettings
    /// TagoIO's per-minute limits of the plan (`[device] plan`), shared by the uplink and the
    /// params poller: neither sends faster than the plan allows.
    public let budget: RequestBudget
    private let logSink: @Sendable (LogLevel, String) -> Void
    private let lock = Lock()
    private var counters = AgentCounters()
    private var spoolFailures = RepeatedFailure()

    public init(config: AgentConfig, spool: Spool, clock: MonotonicClock & WallClock, clockGuard: ClockGuard, remote: RemoteSettings,
                log: @escaping @Sendable (LogLevel, String) -> Void) {
        self.config = config
        self.spool = spool
        self.clock = clock
        self.clockGuard = clockGuard
        self.remote = remote
        var limits: [String: Int] = [:]
        for route in [PlanLimits.Route.data, .params, .mqttPublish, .tagotip] { limits[route.rawValue] = config.device.plan?[route] }
        budget = RequestBudget(perMinute: limits, clock: clock)
        logSink = log
    }

    public var snapshot: AgentCounters { lock.withLock { counters } }

    func update(_ body: (inout AgentCounters) -> Void) { lock.withLock { body(&counters) } }

    /// Says `text` if the current level (the `log_level` param, else the file's) lets it through.
    func log(_ level: LogLevel, _ text: @autoclosure () -> String) {
        guard level <= remote.logLevel(default: config.agent.logLevel) else { return }
        logSink(level, text())
    }

    /// Appends readings to the spool and counts them; a spool error is logged, not thrown.
    @discardableResult
    func spoolReadings(_ readings: [Reading], sampled: Bool, remember: Bool = true) -> Bool {
        guard !readings.isEmpty else { return true }
        do {
            let range = try spool.append(readings.map(ReadingCodec.encode))
            // Under sync = "always" the append returned after fdatasync: say so, for the power-cut
            // test (scripts/gateway-test --power-cuts) and for whoever debugs a lost reading.
            if let last = range?.upperBound {
                log(.debug, "spool: readings appended through seq \(last)" + (config.spool.options.sync == .always ? ", durable" : ", not yet durable"))
            }
            update {
                if sampled { $0.sampled += readings.count }
                $0.spooled += readings.count
                if remember { for r in readings { $0.lastReadings[r.variable] = r } }
            }
            if let failed = lock.withLock({ spoolFailures.succeeded() }) {
                log(.warning, "spool: appends work again (\(failed) failed before)")
            }
            return true
        } catch {
            // A failing disk fails every append: said once, then at most once a minute with a count
            // (the journal may live on the same SD card).
            let (say, quiet) = lock.withLock { spoolFailures.failed(now: clock.nanoseconds()) }
            if say { log(.error, "spool: \(error)" + (quiet > 0 ? " (\(quiet) more failed since the last message)" : "")) }
            return false
        }
    }
}

/// A failure that repeats (every append to a failing disk): said the first time, then at most
/// once per `every` nanoseconds with the count of those not said, and its end said once.
struct RepeatedFailure {
    var every: UInt64 = 60_000_000_000
    private(set) var failures = 0
    private var quiet = 0
    private var lastSaid: UInt64?

    /// Whether to say this failure, and how many went unsaid since the last one said.
    mutating func failed(now: UInt64) -> (say: Bool, quiet: Int) {
        failures += 1
        if let last = lastSaid, now &- last < every {
            quiet += 1
            return (false, 0)
        }
        defer { quiet = 0 }
        lastSaid = now
        return (true, quiet)
    }

    /// After failures, how many there were (once); nil when nothing was failing.
    mutating func succeeded() -> Int? {
        guard failures > 0 else { return nil }
        defer { failures = 0; quiet = 0; lastSaid = nil }
        return failures
    }
}
