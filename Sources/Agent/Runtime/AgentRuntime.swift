#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Hardware
import MQTT
import Spool
import TagoKit
import Uplink

/// One running configuration of the agent: the spool, the settings from the cloud, the outputs,
/// and the services (sampling, uplink, params, analyses, status) under a supervisor.
///
/// `start` starts the services; `stop` stops them, joins every thread, and only then makes the
/// spool durable and closes it, so nothing is written after close. A reload is `stop` on one
/// runtime and `start` on a new one. The threads, and what each owns: docs/architecture.md.
public final class AgentRuntime: @unchecked Sendable {
    public var config: AgentConfig { context.config }
    public let spool: FileSpool
    public let context: RuntimeContext
    private let environment: HardwareEnvironment
    private let token: String
    private let lock = Lock()
    /// Settings from configuration_params and the MQTT downlink, over the file's.
    public var remote: RemoteSettings { context.remote }
    /// Stamps readings from the monotonic clock until the system clock is trusted.
    public var clockGuard: ClockGuard { context.clockGuard }
    public let supervisor: Supervisor
    private var outputLines: [String: GPIOOutputLine] = [:]
    private var outputStates: [String: Bool] = [:]
    private let startedAt: UInt64
    /// When the last downlink messages came (the rate bound).
    private var downlinkTimes: [UInt64] = []

    /// Opens the spool (creating its folder) and sets up the sensors. Throws `SpoolError` when the
    /// spool cannot be opened (locked by another agent, no permission).
    ///
    /// - Parameters:
    ///   - clock: what every service schedules and waits on (a `ManualClock` in tests).
    ///   - systemd: told STATUS and fed WATCHDOG by the status service.
    ///   - paramsSource: where configuration_params come from (default: the Device API).
    ///   - makeUplink: the uplink (default: the one the config names).
    public init(config: AgentConfig, token: String, environment: HardwareEnvironment, clock: MonotonicClock & WallClock = SystemClock(),
                systemd: SystemdNotifier? = nil, beatEveryMilliseconds: Int64? = nil, paramsSource: ParamsSource? = nil,
                makeUplink: ((RuntimeContext) -> Uplink)? = nil,
                log: @escaping @Sendable (LogLevel, String) -> Void) throws {
        self.environment = environment
        self.token = token
        startedAt = clock.nanoseconds()
        makeDirectories(forFile: config.spool.path)
        spool = try FileSpool(path: config.spool.path, options: config.spool.options)
        let clockGuard = ClockGuard(mode: config.agent.clock, wall: clock, monotonic: clock, kernelSynchronised: linuxClockIsSynchronised)
        let remote = RemoteSettings(path: config.spool.path + ".settings.json", sensors: config.sensors.map(\.name), outputs: config.outputs.map(\.name),
                                    warn: { log(.warning, $0) })
        let context = RuntimeContext(config: config, spool: spool, clock: clock, clockGuard: clockGuard, remote: remote, log: log)
        self.context = context
        if !clockGuard.isTrusted { context.log(.warning, "clock: the system clock is not synchronised yet; readings are stamped from the monotonic clock and held until it is") }
        let r = spool.openReport
        if let aside = r.setAside { context.log(.error, "spool: \(r.reason ?? "unreadable"); moved to \(aside) and started a fresh spool") }
        if r.damaged > 0 { context.log(.warning, "spool: \(r.damaged) damaged record(s) cut away; \(r.recovered) recovered") } else if r.recovered > 0 { context.log(.info, "spool: \(r.recovered) unsent reading(s) recovered") }
        if let note = r.capacityNote { context.log(.warning, "spool: \(note)") }

        // The services. They reach back into the runtime (settings, outputs, status) through
        // `owner`, set once they exist; none runs before `start`.
        let owner = WeakRuntime()
        var services: [AgentService] = []
        let beatEveryMilliseconds = beatEveryMilliseconds ?? Self.beatInterval(watchdogMilliseconds: systemd?.watchdogIntervalMilliseconds)
        let analyses = config.analyses.isEmpty ? nil : AnalysisService(context: context, token: token, beatEveryMilliseconds: beatEveryMilliseconds)
        // Every sensor is set up, so a parameter can enable one the file disabled.
        services.append(SamplingService(context: context, sensors: environment.makeSensors(config), beatEveryMilliseconds: beatEveryMilliseconds,
                                        setUp: { environment.makeSensor($0, config: config) }) { readings in
            analyses?.trigger(readings)
        })
        let uplinkFactory = makeUplink ?? { Self.defaultUplink($0, token: token) }
        services.append(UplinkService(context: context, beatEveryMilliseconds: beatEveryMilliseconds, makeUplink: { uplinkFactory(context) }) { text, topic in
            owner.value?.applyDownlink(text, from: topic)
        })
        if config.agent.paramsIntervalMilliseconds > 0, config.uplink.transport == .http || config.device.token != nil {
            services.append(ParamsService(context: context, source: paramsSource ?? config.tagoDevice(token: token), beatEveryMilliseconds: beatEveryMilliseconds) { key, value in
                owner.value?.applySetting(key: key, value: value, source: "configuration_params")
            })
        }
        if let analyses { services.append(analyses) }
        let supervisorBox = SupervisorBox()
        services.append(StatusService(context: context, beatEveryMilliseconds: beatEveryMilliseconds, watchdogMilliseconds: systemd?.watchdogIntervalMilliseconds,
                                      statusFile: { owner.value?.writeStatus() }, telemetry: { owner.value?.telemetry() ?? [] },
                                      notify: { systemd?.notify($0) }, stalled: { supervisorBox.value?.stalled(withinMilliseconds: $0) ?? [] }))
        supervisor = Supervisor(clock: clock, services: services)
        supervisorBox.value = supervisor
        owner.value = self
    }

    public var snapshot: AgentCounters { context.snapshot }

    /// Sets up the outputs, then starts every service.
    public func start() {
        setUpOutputs()
        supervisor.start()
    }

    /// Stops every service and waits until each has returned, then makes the spool durable and
    /// closes it. Nothing reaches the spool after this.
    public func stop() {
        supervisor.stop()
        do {
            try spool.close()
        } catch {
            context.log(.error, "spool: could not be closed cleanly: \(error)")
        }
    }

    /// Whether every service beat within `milliseconds` (they beat while they wait, too).
    public func isAlive(withinMilliseconds milliseconds: Int64) -> Bool { supervisor.isAlive(withinMilliseconds: milliseconds) }

    // MARK: outputs

    /// Requests the `[[output]]` lines at the state last applied (kept across restarts) or their
    /// initial one. A line that cannot be had is reported; the rest of the agent goes on.
    func setUpOutputs() {
        for o in config.outputs {
            let state = remote.output(o.name, default: o.initial)
            do {
                let chip: GPIOChip = o.simulate ? environment.simulatedChip(o.chip) : try environment.linuxChip(o.chip)
                let offset = try o.lineName.map { try chip.lineOffset(named: $0) } ?? o.lineOffset
                let line = try chip.requestOutput(line: offset, initial: state, activeLow: o.activeLow, consumer: "tagoedge:\(o.name)")
                lock.withLock {
                    outputLines[o.name] = line
                    outputStates[o.name] = state
                }
            } catch {
                context.log(.error, "output '\(o.name)': \(error)")
            }
        }
    }

    /// Switches an output; returns why not, or nil.
    func switchOutput(_ name: String, to state: Bool) -> String? {
        guard let line = lock.withLock({ outputLines[name] }) else { return "output '\(name)' is not available" }
        do {
            try line.set(state)
            lock.withLock { outputStates[name] = state }
            return nil
        } catch {
            return "\(error)"
        }
    }

    var outputsSnapshot: [String: Bool] { lock.withLock { outputStates } }

    // MARK: the uplink the config names

    /// How often a waiting service beats: four times in the watchdog's window (WatchdogSec, twice
    /// the interval systemd asks to be fed at), so a wait never looks like a hang; without a
    /// watchdog no one asks, and every 15 s is plenty (each beat is a wake-up on a gateway that
    /// otherwise sleeps between readings).
    static func beatInterval(watchdogMilliseconds: Int64?) -> Int64 {
        min(15_000, max(50, (watchdogMilliseconds ?? 30_000) / 2))
    }

    static func defaultUplink(_ context: RuntimeContext, token: String) -> Uplink {
        let config = context.config
        let deadLetters = DeadLetterFile(path: config.deadLetterPath)
        switch config.uplink.transport {
        case .http:
            return HTTPUplink(spool: context.spool, device: config.tagoDevice(token: token), deadLetters: deadLetters, policy: config.uplinkPolicy,
                              clock: context.clock, clockGuard: context.clockGuard)
        case .mqtt:
            return MQTTUplink(spool: context.spool, options: config.mqttOptions(token: token), settings: config.mqttUplinkSettings, deadLetters: deadLetters,
                              clock: context.clock, clockGuard: context.clockGuard)
        case .tagotip:
            let transport: TipTransport?
            do {
                guard let source = config.tagotip.token else { throw TokenError(description: "[tagotip] token is missing") }
                let token = try source.resolve().token
                transport = config.tagoTiPTransport(token: token, key: try config.tagotip.resolveKey(token: token))
            } catch {
                return StuckUplink(reason: "TagoTiP: \(error); readings are kept until the token can be read (a reload tries again)")
            }
            guard let transport else { return StuckUplink(reason: "TagoTiP: '\(config.tagotip.url)' is not an address this version can use") }
            return TagoTiPUplink(spool: context.spool, transport: transport, settings: config.tagoTiPUplinkSettings, deadLetters: deadLetters,
                                 clock: context.clock, clockGuard: context.clockGuard)
        }
    }
}

/// An uplink that cannot start (its token cannot be read): it sends nothing, keeps every reading
/// and says why at each step, so the agent samples on and the reason is in the status.
final class StuckUplink: Uplink {
    let reason: String
    init(reason: String) { self.reason = reason }
    func step() -> UplinkStep { .wait(milliseconds: 60_000, reason: reason, kind: .unauthorized) }
    func takeDownlink() -> [(topic: String, payload: [UInt8])] { [] }
    func close() {}
}

/// A reference the services hold back to their runtime without keeping it alive.
private final class WeakRuntime: @unchecked Sendable {
    weak var value: AgentRuntime?
}

private final class SupervisorBox: @unchecked Sendable {
    weak var value: Supervisor?
}

extension AgentRuntime {
    /// The agent's own variables, through the same spool: spool depth, readings dropped, uplink
    /// waits, sensor failures, uptime, and the board's temperature where the kernel reports one.
    func telemetry() -> [Reading] {
        let c = snapshot
        let s = spool.stats
        let time = clockGuard.stamp()
        let uptime = (context.clock.nanoseconds() &- startedAt) / 1_000_000_000
        var readings = [
            Reading(variable: "agent_spool_depth", value: .number(Double(s.recordCount)), time: time),
            Reading(variable: "agent_dropped", value: .number(Double(s.dropped)), time: time),
            Reading(variable: "agent_uplink_errors", value: .number(Double(c.uplinkWaits)), time: time),
            Reading(variable: "agent_sensor_failures", value: .number(Double(c.sensorFailures)), time: time),
            Reading(variable: "agent_uptime", value: .number(Double(uptime)), unit: "s", time: time),
            // What the report settings saved and what the plan's limits cost (docs/budget.md).
            Reading(variable: "agent_records_sent", value: .number(Double(c.spooled)), time: time),
            Reading(variable: "agent_records_withheld", value: .number(Double(c.withheld)), time: time),
            Reading(variable: "agent_requests", value: .number(Double(context.budget.sent.values.reduce(0, +))), time: time),
        ]
        if let text = try? environment.sysfs.readText("/sys/class/thermal/thermal_zone0/temp"), let milli = Int(text.trimmingWhitespace()), abs(milli) < 1_000_000 {
            readings.append(Reading(variable: "agent_board_temperature", value: .number(Double(milli) / 1000), unit: "°C", time: time))
        }
        return readings
    }

    /// The state `tagoedge status` reads: last reading per sensor, last upload, spool, errors.
    public func statusJSON() -> JSONValue {
        let c = snapshot
        let s = spool.stats
        let readings = c.lastReadings.sorted { $0.key < $1.key }.map { $0.value.dataObject }
        return .object([
            ("updated", .string(context.clock.now().iso8601)), ("pid", .number(Double(getpid()))),
            ("sampled", .number(Double(c.sampled))), ("acknowledged", .number(Double(c.delivered))),
            ("withheld", .number(Double(c.withheld))), ("spooled", .number(Double(c.spooled))),
            ("uptime_seconds", .number(Double((context.clock.nanoseconds() &- startedAt) / 1_000_000_000))),
            ("requests", .object(context.budget.sent.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })),
            ("plan", config.device.plan.map { .string($0.name) } ?? .null), ("plan_waits", .number(Double(c.budgetWaits))),
            ("last_upload", c.lastDelivery.map { .string($0.iso8601) } ?? .null),
            ("spool", .object([("path", .string(spool.path)), ("records", .number(Double(s.recordCount))), ("used_bytes", .number(Double(s.usedBytes))),
                               ("capacity_bytes", .number(Double(s.capacityBytes))), ("dropped", .number(Double(s.dropped))), ("damaged", .number(Double(s.damaged)))])),
            ("sensor_failures", .number(Double(c.sensorFailures))), ("last_readings", .array(readings)),
            ("recent_errors", .array(c.recentErrors.map { .string($0) })),
            ("outputs", .object(outputsSnapshot.sorted { $0.key < $1.key }.map { ($0.key, .bool($0.value)) })), ("settings", .object(remote.all.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ])
    }

    /// Writes the status file next to the spool (atomically).
    public func writeStatus() {
        let path = statusFilePath(spool: config.spool.path)
        writeFileAtomically(path, Array(statusJSON().serialized.utf8), mode: 0o644)
    }

    /// Applies one setting, or reports why not: logged, and sent to the cloud as a `config_error`
    /// reading with the key, value and reason in its metadata, so the fleet operator sees it.
    /// Returns whether it was applied.
    @discardableResult
    public func applySetting(key: String, value: String, source: String) -> Bool {
        if let problem = remote.problem(key: key, value: value) {
            context.log(.warning, "\(source): '\(key)' = '\(value)' not applied: \(problem)")
            let reading = Reading(variable: "config_error", value: .string("\(key): \(problem)"), time: clockGuard.stamp(),
                                  metadata: ["key": key, "value": value, "reason": problem, "source": source])
            context.spoolReadings([reading], sampled: false, remember: false)
            return false
        }
        if config.outputs.contains(where: { $0.name == key }), let state = RemoteSettings.switchValue(value) {
            if let problem = switchOutput(key, to: state) {
                context.log(.error, "\(source): output '\(key)' could not be switched: \(problem)")
                return false
            }
        }
        remote.apply(key: key, value: value)
        context.log(.info, "\(source): applied \(key) = \(value)")
        return true
    }

    /// Downlink messages a minute at most (their bytes and settings are bounded by
    /// `parseDownlinkSettings`). Whoever can publish to the downlink topic can switch outputs (the
    /// broker's ACL decides who that is); these bounds keep a compromised or looping publisher
    /// from flooding the agent.
    static let downlinkPerMinute = 60

    /// `key=value` lines, or a JSON object of them, from the MQTT downlink topic.
    func applyDownlink(_ text: String, from topic: String) {
        let now = context.clock.nanoseconds()
        let admitted = lock.withLock { () -> Bool in
            downlinkTimes = downlinkTimes.filter { now &- $0 < 60_000_000_000 }
            guard downlinkTimes.count < Self.downlinkPerMinute else { return false }
            downlinkTimes.append(now)
            return true
        }
        guard admitted else {
            context.log(.warning, "mqtt \(topic): more than \(Self.downlinkPerMinute) messages a minute; ignored")
            return
        }
        let (settings, problems) = parseDownlinkSettings(text)
        for problem in problems { context.log(.warning, "mqtt \(topic): \(problem)") }
        for (k, v) in settings { applySetting(key: k, value: v, source: "mqtt \(topic)") }
    }
}

/// Creates the folders above `path` (like mkdir -p), mode 0750; what cannot be made is reported
/// by whoever opens the file.
func makeDirectories(forFile path: String) {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
    try? makeDirectories(String(path[..<slash]), mode: 0o750)
}

/// Where the running agent writes its status file. Under systemd with `RuntimeDirectory=`
/// (`$RUNTIME_DIRECTORY`, a tmpfs under /run): rewritten every 5 s, it would otherwise wear the SD
/// card for nothing. Elsewhere, next to the spool.
public func statusFilePath(spool: String) -> String {
    if let dir = getenv("RUNTIME_DIRECTORY").map({ String(cString: $0) }), let first = dir.split(separator: ":").first {
        return "\(first)/\(statusFileName(spool: spool))"
    }
    return spool + ".status.json"
}

/// Where `tagoedge status` looks, in order: the runtime directory (this environment's, then the
/// service's /run/tagoedge), then next to the spool.
public func statusFileCandidates(spool: String) -> [String] {
    var paths: [String] = []
    if getenv("RUNTIME_DIRECTORY") != nil { paths.append(statusFilePath(spool: spool)) }
    paths.append("/run/tagoedge/\(statusFileName(spool: spool))")
    paths.append(spool + ".status.json")
    return paths
}

private func statusFileName(spool: String) -> String {
    (spool.split(separator: "/").last.map(String.init) ?? "spool") + ".status.json"
}
