import EdgeCore

/// Reads every enabled sensor on its own interval into the spool (`SampleSchedule`), and hands
/// the readings to the analyses they trigger. A failing sensor is retried with backoff and fails
/// alone.
final class SamplingService: AgentService {
    let name = "sampling"
    private let context: RuntimeContext
    private var sensors: [SensorInstance]
    /// Sets a sensor up again (its bus or line was missing): tried each time it is due.
    private let setUp: ((SensorConfig) -> SensorInstance)?
    private let beatEvery: Int64
    /// Called with each round's readings once they are in the spool.
    private let onReadings: ([Reading]) -> Void
    /// Sensors whose last reading was clipped (warned about once, until they are back in range).
    private var clippedSensors: Set<String> = []
    /// `[sensor.report]` and the sensors' report params: what of each round is spooled.
    private var report: ReportFilter

    init(context: RuntimeContext, sensors: [SensorInstance], beatEveryMilliseconds: Int64, setUp: ((SensorConfig) -> SensorInstance)? = nil,
         onReadings: @escaping ([Reading]) -> Void) {
        self.context = context
        self.sensors = sensors
        self.setUp = setUp
        beatEvery = beatEveryMilliseconds
        self.onReadings = onReadings
        report = ReportFilter(settings: Self.reportSettings(sensors.map(\.config), remote: context.remote),
                              additive: Set(sensors.flatMap { s in s.config.additiveQuantities.map { s.config.variableName(for: $0) } }))
    }

    /// Report settings by variable name: the file's, under the sensors' params.
    static func reportSettings(_ sensors: [SensorConfig], remote: RemoteSettings) -> [String: ReportSettings] {
        var out: [String: ReportSettings] = [:]
        for s in sensors {
            for q in s.quantities { out[s.variableName(for: q)] = remote.report(sensor: s.name, base: s.reportSettings(for: q)) }
        }
        return out
    }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        let clock = context.clock
        for s in sensors where s.setupError != nil { context.log(.error, "sensor '\(s.config.name)': \(s.setupError!)") }
        var schedule = SampleSchedule(sensors: sensors.count, start: clock.nanoseconds())
        while !stop.isStopped {
            let now = clock.nanoseconds()
            heartbeat.beat(now)
            guard let first = schedule.next else {
                stop.sleep(milliseconds: 60_000, heartbeat: heartbeat, beatEvery: beatEvery)
                continue
            }
            if first > now {
                // Whole milliseconds, rounded up: never wakes before the sensor is due.
                stop.sleep(milliseconds: Int64((first - now + 999_999) / 1_000_000), heartbeat: heartbeat, beatEvery: beatEvery)
                continue
            }
            sampleDue(&schedule, now: now)
        }
        // The windows still open: what was read is spooled, as partial aggregates.
        let rest = report.flush()
        if !rest.isEmpty { context.spoolReadings(rest, sampled: false, remember: false) }
    }

    /// Reads the sensors due at `now` in one round and spools their readings in one write.
    private func sampleDue(_ schedule: inout SampleSchedule, now: UInt64) {
        let clock = context.clock
        let remote = context.remote
        var round: [Int] = []
        for i in schedule.dueNow(now) {
            if sensors[i].driver == nil, let setUp {
                // Missing at start (a bus whose overlay loads late, a USB adapter plugged in
                // later): set up now if it has appeared, without a restart.
                let again = setUp(sensors[i].config)
                if again.driver != nil {
                    context.log(.info, "sensor '\(again.config.name)' is set up now")
                    sensors[i] = again
                }
            }
            if remote.enabled(sensor: sensors[i].config.name, default: sensors[i].config.enabled) {
                round.append(i)
            } else {
                schedule.skip(i, now: now)
            }
        }
        let outcomes = sampleRound(round.map { sensors[$0] }, clock: clock) { context.clockGuard.stamp() }
        var readings: [Reading] = []
        var problems: [String] = []
        let finished = clock.nanoseconds()
        for (i, outcome) in zip(round, outcomes) {
            let sensor = sensors[i].config
            let interval = remote.intervalMilliseconds(sensor: sensor.name, default: sensor.intervalMilliseconds)
            if let error = outcome.error {
                let failures = schedule.failed(i, intervalMilliseconds: interval, now: finished)
                problems.append("\(sensor.name): \(error)")
                if failures == 1 || failures.nonzeroBitCount == 1 { context.log(.warning, "sensor '\(sensor.name)' failed (\(failures)×): \(error)") }
                continue
            }
            if schedule.failures[i] > 0 { context.log(.info, "sensor '\(sensor.name)' is back after \(schedule.failures[i]) failure(s)") }
            schedule.succeeded(i, intervalMilliseconds: interval, now: finished)
            context.log(.debug, "sensor '\(sensor.name)': " + outcome.readings.map { "\($0.variable)=\($0.value.display)" }.joined(separator: " "))
            // A value at the end of the chip's range, said once until it is back inside.
            let clipped = outcome.readings.filter { $0.metadata["clipped"] != nil }.map(\.variable)
            if !clipped.isEmpty, !clippedSensors.contains(sensor.name) {
                context.log(.warning, "sensor '\(sensor.name)': \(clipped.joined(separator: ", ")) at the end of the chip's range (clipped): the true value is beyond it; readings carry clipped metadata")
            }
            if clipped.isEmpty { clippedSensors.remove(sensor.name) } else { clippedSensors.insert(sensor.name) }
            if let dropped = outcome.readings.first(where: { $0.metadata["dropped_edges"] != nil })?.metadata["dropped_edges"] {
                context.log(.warning, "sensor '\(sensor.name)': the kernel dropped \(dropped) edge event(s) between two reads (counted from its sequence numbers); read more often")
            }
            readings += outcome.readings
        }
        if !problems.isEmpty {
            let stamp = clock.now()
            context.update {
                $0.sensorFailures += problems.count
                $0.lastSensorProblem = problems.last
                $0.note(problems.map { "sensor \($0)" }, at: stamp)
            }
        }
        guard !readings.isEmpty else { return }
        let settings = Self.reportSettings(sensors.map(\.config), remote: remote)
        if settings.filter({ !$0.value.sendsEverything }) != report.settings { report.update(settings: settings) }
        let toSpool = report.filter(readings)
        let withheld = report.withheld
        context.update {
            $0.sampled += readings.count
            $0.withheld = withheld
            for r in readings { $0.lastReadings[r.variable] = r }
        }
        guard context.spoolReadings(toSpool, sampled: false, remember: false) else { return }
        do {
            try context.spool.flushIfDue()
        } catch {
            context.log(.error, "spool: \(error)")
        }
        onReadings(readings)
    }
}
