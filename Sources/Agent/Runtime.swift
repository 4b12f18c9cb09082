#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Hardware
import MQTT
import Spool
import TagoKit
import Uplink

/// A flag threads check to know when to stop, with a sleep that `stop()` interrupts at once
/// (a condition variable, so a sleeping thread costs no wake-ups).
public final class StopSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var stopped = false
    private var pokes = 0

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public var isStopped: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return stopped
    }

    public func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Wakes a `sleep` early without stopping (new work for the sleeper).
    public func poke() {
        pthread_mutex_lock(mutex)
        pokes += 1
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps up to `milliseconds` on the monotonic clock, returning early when stopped or poked.
    /// Returns false if stopped.
    @discardableResult
    public func sleep(milliseconds: Int64, clock: MonotonicClock) -> Bool {
        guard milliseconds > 0 else { return !isStopped }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Int64(now.tv_nsec) + (milliseconds % 1000) * 1_000_000
        var deadline = timespec(tv_sec: now.tv_sec + Int(milliseconds / 1000) + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let poked = pokes
        while !stopped && pokes == poked {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
        }
        return !stopped
    }
}

/// What the running agent has done, for the live line and `status`.
public struct AgentCounters: Sendable {
    public var sampled = 0
    /// Edge analyses run.
    public var analysisRuns = 0
    public var sensorFailures = 0
    public var spooled = 0
    public var delivered = 0
    public var uplinkWaits = 0
    public var lastUplinkProblem: String?
    public var lastSensorProblem: String?
    /// Monotonic nanoseconds when each loop last went round (the watchdog's evidence).
    public var samplerHeartbeat: UInt64 = 0
    public var uplinkHeartbeat: UInt64 = 0
    /// The last reading of each sensor, and when TagoIO last acknowledged anything.
    public var lastReadings: [String: Reading] = [:]
    public var lastDelivery: Timestamp?
    public var recentErrors: [String] = []
}

/// Samples every enabled sensor on its own interval into the spool, and drains the spool through
/// the configured uplink, on two threads. One failing sensor or uplink never stops the other.
public final class AgentRuntime: @unchecked Sendable {
    public let config: AgentConfig
    public let spool: FileSpool
    private let environment: HardwareEnvironment
    private let clock: SystemClock
    private let token: String
    private let logSink: @Sendable (LogLevel, String) -> Void
    private let lock = Lock()
    private var counters = AgentCounters()
    private var running = 0
    public let stopSignal = StopSignal()
    /// Wakes the analysis thread when readings trigger an analysis.
    private let analysisSignal = StopSignal()
    private var analysisQueue: [(analysis: Int, scope: [Reading])] = []
    /// Settings from configuration_params and the MQTT downlink, over the file's.
    public let remote: RemoteSettings
    /// Stamps readings from the monotonic clock until the system clock is trusted.
    public let clockGuard: ClockGuard

    /// Opens the spool (creating its folder) and sets up the sensors. Throws `SpoolError` when the
    /// spool cannot be opened (locked by another agent, no permission).
    public init(config: AgentConfig, token: String, environment: HardwareEnvironment, clock: SystemClock = SystemClock(),
                log: @escaping @Sendable (LogLevel, String) -> Void) throws {
        self.config = config
        self.environment = environment
        self.clock = clock
        self.token = token
        self.logSink = log
        makeDirectories(forFile: config.spool.path)
        let mode = SpoolSyncMode(rawValue: config.spool.sync.rawValue) ?? .batch
        spool = try FileSpool(path: config.spool.path, options: .init(capacityBytes: config.spool.capacityBytes, sync: mode,
                                                                      syncIntervalMilliseconds: config.spool.syncIntervalMilliseconds,
                                                                      policy: SpoolFullPolicy(rawValue: config.spool.full) ?? .dropOldest))
        clockGuard = ClockGuard(mode: config.agent.clock, kernelSynchronised: linuxClockIsSynchronised)
        if !clockGuard.isTrusted { log(.warning, "clock: the system clock is not synchronised yet; readings are stamped from the monotonic clock and held until it is") }
        remote = RemoteSettings(path: config.spool.path + ".settings.json", sensors: config.sensors.map(\.name), outputs: config.outputs.map(\.name))
        let r = spool.openReport
        if let aside = r.setAside { log(.error, "spool: \(r.reason ?? "unreadable"); moved to \(aside) and started a fresh spool") }
        if r.damaged > 0 { log(.warning, "spool: \(r.damaged) damaged record(s) cut away; \(r.recovered) recovered") } else if r.recovered > 0 { log(.info, "spool: \(r.recovered) unsent reading(s) recovered") }
        if let note = r.capacityNote { log(.warning, "spool: \(note)") }
    }

    public var snapshot: AgentCounters { lock.withLock { counters } }

    private var outputLines: [String: GPIOOutputLine] = [:]
    private var outputStates: [String: Bool] = [:]

    /// Requests the `[[output]]` lines at the state last applied (kept across restarts) or their
    /// initial one. A line that cannot be had is reported; the rest of the agent goes on.
    func setUpOutputs() {
        for o in config.outputs {
            let state = remote.output(o.name, default: o.initial)
            do {
                let chip: GPIOChip = o.simulate ? environment.simulatedChip(o.chip) : try environment.linuxChip(o.chip)
                let line = try chip.requestOutput(line: o.lineOffset, initial: state, activeLow: o.activeLow, consumer: "tagoedge:\(o.name)")
                lock.withLock {
                    outputLines[o.name] = line
                    outputStates[o.name] = state
                }
            } catch {
                log(.error, "output '\(o.name)': \(error)")
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

    private func update(_ body: (inout AgentCounters) -> Void) { lock.withLock { body(&counters) } }

    /// Says `text` if the current level (the `log_level` param, else the file's) lets it through.
    private func log(_ level: LogLevel, _ text: @autoclosure () -> String) {
        guard level <= remote.logLevel(default: config.agent.logLevel) else { return }
        logSink(level, text())
    }

    /// Starts the sampler, uplink and configuration_params threads.
    public func start() {
        setUpOutputs()
        lock.withLock { running = 3 }
        startThread { [self] in
            paramsLoop()
            lock.withLock { running -= 1 }
        }
        startThread { [self] in
            sampleLoop()
            lock.withLock { running -= 1 }
        }
        startThread { [self] in
            uplinkLoop()
            lock.withLock { running -= 1 }
        }
        if !config.analyses.isEmpty {
            lock.withLock { running += 1 }
            startThread { [self] in
                analysisLoop()
                lock.withLock { running -= 1 }
            }
        }
    }

    /// Stops sampling and uploading, waits up to `milliseconds` for both to end, and makes the
    /// spool durable.
    public func stop(waitMilliseconds: Int64 = 5_000) {
        stopSignal.stop()
        analysisSignal.stop()
        var waited: Int64 = 0
        while lock.withLock({ running > 0 }), waited < waitMilliseconds {
            clock.sleep(microseconds: 20_000)
            waited += 20
        }
        do {
            try spool.close()
        } catch {
            log(.error, "spool: could not be closed cleanly: \(error)")
        }
    }

    // MARK: sampling

    private func sampleLoop() {
        // Every sensor is set up, so a parameter can enable one the file disabled.
        let sensors = environment.makeSensors(config)
        for s in sensors where s.setupError != nil { log(.error, "sensor '\(s.config.name)': \(s.setupError!)") }
        let start = clock.nanoseconds()
        // Sensors share one schedule grid: those due together are read in one round, one wake-up,
        // their readings appended to the spool in one write.
        var due = [UInt64](repeating: start, count: sensors.count)
        var failures = [Int](repeating: 0, count: sensors.count)
        let telemetryEvery = UInt64(max(config.agent.telemetryIntervalMilliseconds, 0)) * 1_000_000
        var telemetryDue = start + 300_000_000  // soon after start, so a restart shows up
        /// Sensors due this close to the earliest join its round.
        let roundSlack: UInt64 = 5_000_000
        while !stopSignal.isStopped {
            let now = clock.nanoseconds()
            update { $0.samplerHeartbeat = now }
            if telemetryEvery > 0, now >= telemetryDue {
                telemetryDue = now + telemetryEvery
                appendTelemetry(startedAt: start)
            }
            guard let first = due.min() else {
                stopSignal.sleep(milliseconds: 1_000, clock: clock)
                continue
            }
            if first > now {
                let untilTelemetry = telemetryEvery > 0 ? telemetryDue &- now : UInt64.max
                stopSignal.sleep(milliseconds: Int64(min(first - now, untilTelemetry) / 1_000_000) + 1, clock: clock)
                continue
            }
            var payloads: [[UInt8]] = []
            var readings: [Reading] = []
            var problems: [String] = []
            var round: [Int] = []
            for i in sensors.indices where due[i] <= now + roundSlack {
                if remote.enabled(sensor: sensors[i].config.name, default: sensors[i].config.enabled) {
                    round.append(i)
                } else {
                    due[i] = now + 1_000_000_000  // disabled by a param: look again in a second
                }
            }
            let outcomes = sampleRound(round.map { sensors[$0] }, clock: clock) { clockGuard.stamp() }
            for (i, outcome) in zip(round, outcomes) {
                let sensor = sensors[i]
                let interval = UInt64(remote.intervalMilliseconds(sensor: sensor.config.name, default: sensor.config.intervalMilliseconds)) * 1_000_000
                if let error = outcome.error {
                    failures[i] += 1
                    problems.append("\(sensor.config.name): \(error)")
                    if failures[i] == 1 || failures[i].nonzeroBitCount == 1 { log(.warning, "sensor '\(sensor.config.name)' failed (\(failures[i])×): \(error)") }
                    // Retry with backoff, at most five minutes apart; the others keep their schedule.
                    let backoff = min(interval << UInt64(min(failures[i], 8)), 300_000_000_000)
                    due[i] = clock.nanoseconds() + max(interval, backoff / 4)
                    continue
                }
                if failures[i] > 0 { log(.info, "sensor '\(sensor.config.name)' is back after \(failures[i]) failure(s)") }
                failures[i] = 0
                // The next read is due one interval after this one was due: no drift; skip missed ones.
                due[i] += interval
                if due[i] < clock.nanoseconds() { due[i] = clock.nanoseconds() + interval }
                log(.debug, "sensor '\(sensor.config.name)': " + outcome.readings.map { "\($0.variable)=\($0.value.display)" }.joined(separator: " "))
                for r in outcome.readings { payloads.append(ReadingCodec.encode(r)) }
                readings += outcome.readings
            }
            if !problems.isEmpty {
                let stamp = clock.now().iso8601
                update {
                    $0.sensorFailures += problems.count
                    $0.lastSensorProblem = problems.last
                    $0.recentErrors = Array(($0.recentErrors + problems.map { "\(stamp) sensor \($0)" }).suffix(10))
                }
            }
            guard !payloads.isEmpty else { continue }
            do {
                try spool.append(payloads)
                try spool.flushIfDue()
                update {
                    $0.sampled += readings.count
                    $0.spooled += readings.count
                    for r in readings { $0.lastReadings[r.variable] = r }
                }
                triggerAnalyses(readings)
            } catch {
                log(.error, "spool: \(error)")
            }
        }
    }

    // MARK: analyses at the edge

    /// Queues every analysis that one of `readings`' variables triggers, with those readings as its scope.
    private func triggerAnalyses(_ readings: [Reading]) {
        guard !config.analyses.isEmpty else { return }
        var queued = false
        for (i, a) in config.analyses.enumerated() where !a.variables.isEmpty {
            let scope = readings.filter { a.variables.contains($0.variable) }
            guard !scope.isEmpty else { continue }
            lock.withLock {
                // One waiting run per analysis: a slow analysis sees the latest readings, not a backlog.
                if let j = analysisQueue.firstIndex(where: { $0.analysis == i }) { analysisQueue[j].scope = scope } else { analysisQueue.append((i, scope)) }
            }
            queued = true
        }
        if queued { analysisSignal.poke() }
    }

    /// Runs queued and timed analyses one at a time, so a slow one never holds up sampling or
    /// uploading; their output readings go through the spool like any other.
    private func analysisLoop() {
        let start = clock.nanoseconds()
        var due = config.analyses.map { $0.intervalMilliseconds > 0 ? start + UInt64($0.intervalMilliseconds) * 1_000_000 : UInt64.max }
        while !stopSignal.isStopped {
            // A timer that is due goes first, so analyses triggered by every reading cannot starve it.
            var work: (analysis: Int, scope: [Reading])?
            if let i = due.indices.min(by: { due[$0] < due[$1] }), due[i] <= clock.nanoseconds() {
                work = (i, [])
                due[i] = clock.nanoseconds() + UInt64(config.analyses[i].intervalMilliseconds) * 1_000_000
            } else {
                work = lock.withLock { analysisQueue.isEmpty ? nil : analysisQueue.removeFirst() }
            }
            guard let (i, scope) = work else {
                let soonest = due.min() ?? UInt64.max
                let now = clock.nanoseconds()
                let wait = soonest == UInt64.max ? 60_000 : Int64(min((soonest &- now) / 1_000_000 + 1, 60_000))
                analysisSignal.sleep(milliseconds: max(wait, 1), clock: clock)
                continue
            }
            let analysis = config.analyses[i]
            let run = EdgeAnalysisRunner.run(analysis, scope: scope, token: token, clock: clock)
            for line in run.log { log(.info, "analysis '\(analysis.name)': \(line)") }
            for problem in run.rejected { log(.warning, "analysis '\(analysis.name)': output refused: \(problem)") }
            if run.timedOut {
                log(.warning, "analysis '\(analysis.name)' was killed at its time limit (\(formatDuration(analysis.timeoutMilliseconds)))")
            } else if let status = run.status, status != 0 {
                log(.warning, "analysis '\(analysis.name)' exited with status \(status)")
            } else if run.status == nil {
                log(.error, "analysis '\(analysis.name)' could not run")
            }
            update { $0.analysisRuns += 1 }
            guard !run.readings.isEmpty else { continue }
            do {
                try spool.append(run.readings.map(ReadingCodec.encode))
                update {
                    $0.spooled += run.readings.count
                    for r in run.readings { $0.lastReadings[r.variable] = r }
                }
            } catch {
                log(.error, "spool: \(error)")
            }
        }
    }

    // MARK: uploading

    private enum AnyUplink {
        case http(HTTPUplink)
        case mqtt(MQTTUplink)

        func step() -> UplinkStep {
            switch self {
            case .http(let u): u.step()
            case .mqtt(let u): u.step(waitMilliseconds: 100)
            }
        }
    }

    private func makeUplink() -> AnyUplink {
        let deadLetters = DeadLetterFile(path: config.deadLetterPath)
        switch config.uplink.transport {
        case .http:
            let device = config.tagoDevice(token: token)
            var policy = UplinkPolicy()
            policy.maxRecords = config.uplink.batchSize
            policy.backoffBaseMilliseconds = config.uplink.backoffBaseMilliseconds
            policy.backoffCapMilliseconds = config.uplink.backoffCapMilliseconds
            return .http(HTTPUplink(spool: spool, device: device, deadLetters: deadLetters, policy: policy, clockGuard: clockGuard))
        case .mqtt:
            let m = config.mqtt
            let options = config.mqttOptions(token: token)
            var settings = MQTTUplinkSettings()
            settings.topic = m.topic
            settings.format = m.format == .tagotip ? .tagotip : .json
            settings.serial = m.serial ?? "tagoedge"
            settings.batchSize = m.batchSize
            settings.inflightWindow = m.inflight
            settings.maxPayloadBytes = m.maxPayloadBytes
            settings.statusTopic = m.statusTopic
            settings.downlinkTopic = m.downlinkTopic
            settings.sequenceFile = config.spool.path + ".tagotip-seq"
            settings.backoffBaseMilliseconds = config.uplink.backoffBaseMilliseconds
            settings.backoffCapMilliseconds = config.uplink.backoffCapMilliseconds
            return .mqtt(MQTTUplink(spool: spool, options: options, settings: settings, deadLetters: deadLetters, clockGuard: clockGuard))
        }
    }

    private func uplinkLoop() {
        let uplink = makeUplink()
        var lastProblem: String?
        while !stopSignal.isStopped {
            try? spool.flushIfDue()
            update { $0.uplinkHeartbeat = clock.nanoseconds() }
            if case .mqtt(let m) = uplink {
                for message in m.takeDownlink() { applyDownlink(String(decoding: message.payload, as: UTF8.self), from: message.topic) }
            }
            switch uplink.step() {
            case .sent(let count, let through, let dead):
                log(.debug, "uplink: \(count) reading(s) acknowledged, through spool record \(through)")
                update {
                    $0.delivered += count
                    if count > 0 { $0.lastDelivery = clock.now() }
                }
                if dead > 0 { log(.warning, "uplink: \(dead) reading(s) refused by TagoIO, kept in \(config.deadLetterPath)") }
                if lastProblem != nil { log(.info, "uplink: delivering again") }
                lastProblem = nil
            case .idle:
                stopSignal.sleep(milliseconds: remote.uploadIntervalMilliseconds(default: config.agent.uploadIntervalMilliseconds), clock: clock)
            case .wait(let ms, let reason, let kind):
                if ms > 0 {
                    update {
                        $0.uplinkWaits += 1
                        $0.lastUplinkProblem = reason
                        if reason != lastProblem { $0.recentErrors = Array(($0.recentErrors + ["\(clock.now().iso8601) uplink: \(reason)"]).suffix(10)) }
                    }
                    if reason != lastProblem {
                        log(kind == .unauthorized ? .error : .warning, "uplink: \(kind == .unauthorized ? "REFUSED: " : "")\(reason); retrying in \(formatDuration(ms))")
                        lastProblem = reason
                    }
                }
                stopSignal.sleep(milliseconds: ms, clock: clock)
            }
        }
        if case .mqtt(let m) = uplink { m.close() }
    }
}

extension AgentRuntime {
    /// The agent's own variables, through the same spool: spool depth, readings dropped, uplink
    /// waits, sensor failures, uptime, and the board's temperature where the kernel reports one.
    func appendTelemetry(startedAt: UInt64) {
        let c = snapshot
        let s = spool.stats
        let time = clockGuard.stamp()
        var readings = [
            Reading(variable: "agent_spool_depth", value: .number(Double(s.recordCount)), time: time),
            Reading(variable: "agent_dropped", value: .number(Double(s.dropped)), time: time),
            Reading(variable: "agent_uplink_errors", value: .number(Double(c.uplinkWaits)), time: time),
            Reading(variable: "agent_sensor_failures", value: .number(Double(c.sensorFailures)), time: time),
            Reading(variable: "agent_uptime", value: .number(Double((clock.nanoseconds() - startedAt) / 1_000_000_000)), unit: "s", time: time),
        ]
        if let text = try? environment.sysfs.readText("/sys/class/thermal/thermal_zone0/temp"), let milli = Int(text.trimmingWhitespace()) {
            readings.append(Reading(variable: "agent_board_temperature", value: .number(Double(milli) / 1000), unit: "°C", time: time))
        }
        if (try? spool.append(readings.map(ReadingCodec.encode))) != nil {
            update { $0.sampled += readings.count; $0.spooled += readings.count }  // so the counts add up
        }
    }

    /// Whether both loops went round within `milliseconds` (the sampler sleeps at most until
    /// its next reading, the uplink at most one backoff, both waking every 50 ms to check).
    public func isAlive(withinMilliseconds milliseconds: Int64) -> Bool {
        let c = snapshot
        let now = SystemClock().nanoseconds()
        let limit = UInt64(milliseconds) * 1_000_000
        return now &- c.samplerHeartbeat < limit && now &- c.uplinkHeartbeat < limit
    }

    /// The state `tagoedge status` reads: last reading per sensor, last upload, spool, errors.
    public func statusJSON() -> JSONValue {
        let c = snapshot
        let s = spool.stats
        let readings = c.lastReadings.sorted { $0.key < $1.key }.map { $0.value.dataObject }
        return .object([
            ("updated", .string(SystemClock().now().iso8601)), ("pid", .number(Double(getpid()))),
            ("sampled", .number(Double(c.sampled))), ("acknowledged", .number(Double(c.delivered))),
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
            log(.warning, "\(source): '\(key)' = '\(value)' not applied: \(problem)")
            let reading = Reading(variable: "config_error", value: .string("\(key): \(problem)"), time: SystemClock().now(),
                                  metadata: ["key": key, "value": value, "reason": problem, "source": source])
            _ = try? spool.append([ReadingCodec.encode(reading)])
            return false
        }
        if config.outputs.contains(where: { $0.name == key }), let state = RemoteSettings.switchValue(value) {
            if let problem = switchOutput(key, to: state) {
                log(.error, "\(source): output '\(key)' could not be switched: \(problem)")
                return false
            }
        }
        remote.apply(key: key, value: value)
        log(.info, "\(source): applied \(key) = \(value)")
        return true
    }

    /// Polls configuration_params, applies them, and marks each one read.
    func paramsLoop() {
        guard config.agent.paramsIntervalMilliseconds > 0, config.uplink.transport == .http || config.device.token != nil else { return }
        let device = config.tagoDevice(token: token)
        var lastProblem: String?
        repeat {
            do {
                for param in try device.params(onlyUnread: true) {
                    applySetting(key: param.key, value: param.value, source: "configuration_params")
                    if let id = param.id { try device.markParamRead(id: id) }
                }
                lastProblem = nil
            } catch {
                if "\(error)" != lastProblem { log(.warning, "configuration_params: \(error)") }
                lastProblem = "\(error)"
            }
        } while stopSignal.sleep(milliseconds: config.agent.paramsIntervalMilliseconds, clock: clock)
    }

    /// `key=value` lines, or a JSON object of them, from the MQTT downlink topic.
    func applyDownlink(_ text: String, from topic: String) {
        if case .object(let members)? = try? JSONValue.parse(text) {
            for (k, v) in members { applySetting(key: k, value: v.stringValue ?? v.serialized, source: "mqtt \(topic)") }
            return
        }
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            guard kv.count == 2 else { log(.warning, "mqtt \(topic): '\(line)' is not key=value"); continue }
            applySetting(key: kv[0], value: kv[1], source: "mqtt \(topic)")
        }
    }
}

/// Creates the folders above `path` (like mkdir -p), mode 0750.
func makeDirectories(forFile path: String) {
    var prefix = ""
    for part in path.split(separator: "/").dropLast() {
        prefix += "/" + part
        mkdir(prefix, 0o750)
    }
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension AgentConfig {
    /// The Device API client the agent uses: the `[uplink]` timeouts, CA file and TLS choice.
    public func tagoDevice(token: String) -> TagoDevice {
        var http = CurlHTTPClient.Options()
        http.timeoutMilliseconds = Int(uplink.timeoutMilliseconds)
        http.connectTimeoutMilliseconds = Int(uplink.connectTimeoutMilliseconds)
        http.caFile = uplink.caFile
        http.insecure = uplink.insecure
        return TagoDevice(token: token, endpoint: TagoEndpoint(api: device.api), http: CurlHTTPClient(options: http))
    }

    /// The broker connection of the `[mqtt]` table; by TagoIO's convention the token is the password.
    public func mqttOptions(token: String) -> MQTTOptions {
        let m = mqtt
        var options = MQTTOptions()
        options.host = m.host
        options.port = m.port
        options.clientID = m.clientID ?? "tagoedge-\(hostName())"
        options.username = m.username
        options.password = token
        options.keepaliveSeconds = m.keepaliveSeconds
        options.cleanSession = m.cleanSession
        if m.tls {
            var tls = MQTTOptions.TLSOptions()
            tls.caFile = m.caFile
            tls.certFile = m.certFile
            tls.keyFile = m.keyFile
            tls.insecure = m.insecure
            options.tls = tls
        }
        return options
    }
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
