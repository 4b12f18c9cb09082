import EdgeCore
import TagoKit

/// What one variable costs a day: readings taken, and records sent under its report settings.
public struct VariableBudget: Sendable, Equatable {
    public var sensor: String
    public var variable: String
    public var readPerDay: Double
    /// Records sent a day: exact for "every reading" and windows; for a deadband the range
    /// from its heartbeat (the least) to every reading (the most), or the count of a 24-hour
    /// simulation when the sensor is simulated.
    public var sentPerDay: Double
    public var sentAtLeast: Double
    public var simulated: Bool
    /// The JSON data object of one record, in bytes.
    public var recordBytes: Int
}

/// The configured sensors' data records, bytes and requests, against the plan's limits.
public struct BudgetReport: Sendable {
    public var variables: [VariableBudget]
    public var plan: PlanLimits?
    public var transport: UplinkSettings.Transport
    public var uploadIntervalMilliseconds: Int64
    public var paramsIntervalMilliseconds: Int64
    public var batchSize: Int

    public var readPerDay: Double { variables.reduce(0) { $0 + $1.readPerDay } }
    public var sentPerDay: Double { variables.reduce(0) { $0 + $1.sentPerDay } }

    /// The route the uplink's requests count against.
    public var route: PlanLimits.Route {
        switch transport {
        case .http: .data
        case .mqtt: .mqttPublish
        case .tagotip: .tagotip
        }
    }

    /// Requests a minute for `recordsPerDay`, at most: each upload sends what waits, up to a
    /// batch, at most once per upload interval (readings of one round travel together, so
    /// the real count is often lower).
    public func requestsPerMinute(recordsPerDay: Double) -> Double {
        let perMinute = recordsPerDay / 1440
        let wakeups = 60_000 / Double(max(uploadIntervalMilliseconds, 1))
        return max(perMinute / Double(max(batchSize, 1)), min(wakeups, perMinute))
    }

    /// Bytes a day on the wire for `recordsPerDay` (the records' JSON, and about 400 bytes of
    /// HTTP or MQTT framing and headers per request).
    public func bytesPerDay(recordsPerDay: Double) -> Double {
        let total = variables.reduce(0.0) { $0 + $1.readPerDay }
        let perRecord = total > 0 ? variables.reduce(0.0) { $0 + Double($1.recordBytes) * $1.readPerDay } / total : 0
        return recordsPerDay * (perRecord + 1) + requestsPerMinute(recordsPerDay: recordsPerDay) * 1440 * 400
    }
}

/// Estimates the budget of `config`: every enabled sensor's variables, read at their intervals;
/// simulated sensors with a deadband are run for `simulatedMilliseconds` (24 hours) on a manual
/// clock through the report filter, the others bounded by their settings.
public func estimateBudget(_ config: AgentConfig, simulatedMilliseconds: Int64 = 86_400_000) -> BudgetReport {
    let day = 86_400_000.0
    var lines: [VariableBudget] = []
    // Only what a deadband makes depend on the signal is simulated.
    let deadbanded = Set(config.sensors.filter { s in s.enabled && s.simulate != nil && s.quantities.contains { q in
        let r = s.reportSettings(for: q)
        return !r.sendsEverything && r.windowMilliseconds == nil
    } }.map(\.name))
    let simulated = deadbanded.isEmpty ? [:] : simulateReporting(config, milliseconds: simulatedMilliseconds, sensors: deadbanded)
    for s in config.sensors where s.enabled {
        for q in s.quantities {
            let variable = s.variableName(for: q)
            let read = day / Double(max(s.intervalMilliseconds, 1))
            let r = s.reportSettings(for: q)
            var line = VariableBudget(sensor: s.name, variable: variable, readPerDay: read, sentPerDay: read, sentAtLeast: read, simulated: false,
                                      recordBytes: sampleRecordBytes(variable: variable, unit: s.unit(of: q)))
            if let w = r.windowMilliseconds {
                line.sentPerDay = min(read, day / Double(w))
                line.sentAtLeast = line.sentPerDay
            } else if !r.sendsEverything {
                line.sentAtLeast = min(read, r.heartbeatMilliseconds.map { day / Double($0) } ?? 1)
                if let sim = simulated[variable], sim.read > 0 {
                    line.sentPerDay = Double(sim.sent) * day / Double(simulatedMilliseconds)
                    line.simulated = true
                }
            }
            if let sim = simulated[variable] { line.recordBytes = sim.bytes }
            lines.append(line)
        }
    }
    let transport = config.uplink.transport
    return BudgetReport(variables: lines, plan: config.device.plan, transport: transport, uploadIntervalMilliseconds: config.agent.uploadIntervalMilliseconds,
                        paramsIntervalMilliseconds: config.agent.paramsIntervalMilliseconds,
                        batchSize: transport == .http ? config.uplink.batchSize : transport == .mqtt ? config.mqtt.publishing.batchSize : config.tagotip.batchSize)
}

func sampleRecordBytes(variable: String, unit: String?) -> Int {
    var out: [UInt8] = []
    Reading(variable: variable, value: .number(21.53125), unit: unit, time: Timestamp(millisecondsSince1970: 1_796_119_200_000)).appendDataObjectJSON(to: &out)
    return out.count
}

/// Runs the simulated sensors of `config` for `milliseconds` on a manual clock, each at its
/// interval, through its report settings: per variable, readings taken, records sent, and the
/// bytes of one record. Sensors that are not simulated are left out.
public func simulateReporting(_ config: AgentConfig, milliseconds: Int64, withReport: Bool = true, sensors names: Set<String>? = nil)
    -> [String: (read: Int, sent: Int, bytes: Int)] {
    let clock = ManualClock(startNanoseconds: 1_000_000_000, wallStart: Timestamp(millisecondsSince1970: 1_796_083_200_000))
    let environment = HardwareEnvironment(clock: clock)
    let sensors = config.sensors.filter { s in s.enabled && s.simulate != nil && (names?.contains(s.name) ?? true) }.map { environment.makeSensor($0, config: config) }.filter { $0.driver != nil }
    guard !sensors.isEmpty else { return [:] }
    var settings: [String: ReportSettings] = [:]
    var additive: Set<String> = []
    for s in sensors {
        for q in s.config.quantities where withReport { settings[s.config.variableName(for: q)] = s.config.reportSettings(for: q) }
        for q in s.config.additiveQuantities { additive.insert(s.config.variableName(for: q)) }
    }
    let filter = ReportFilter(settings: settings, additive: additive)
    var out: [String: (read: Int, sent: Int, bytes: Int)] = [:]
    let start = clock.nanoseconds()
    let end = start + UInt64(max(milliseconds, 0)) * 1_000_000
    var due = [UInt64](repeating: start, count: sensors.count)
    while true {
        guard let i = due.indices.min(by: { due[$0] < due[$1] }), due[i] < end else { break }
        if due[i] > clock.nanoseconds() { clock.advance(nanoseconds: due[i] - clock.nanoseconds()) }
        let outcome = sampleRound([sensors[i]], clock: clock) { clock.now() }[0]
        for r in outcome.readings { out[r.variable, default: (0, 0, 0)].read += 1 }
        for r in filter.filter(outcome.readings) {
            var bytes: [UInt8] = []
            r.appendDataObjectJSON(to: &bytes)
            out[r.variable, default: (0, 0, 0)].sent += 1
            out[r.variable]!.bytes = max(out[r.variable]!.bytes, bytes.count)
        }
        due[i] = due[i] + UInt64(max(sensors[i].config.intervalMilliseconds, 100)) * 1_000_000
    }
    for r in filter.flush() { out[r.variable, default: (0, 0, 0)].sent += 1 }
    return out
}
