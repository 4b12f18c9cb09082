import EdgeCore

/// The result of reading one sensor once.
public struct SensorOutcome {
    public let sensor: String
    public let driver: String
    public let readings: [Reading]
    /// Why the read failed (bus, chip, or setup), or nil.
    public let error: String?
}

/// Reads a sensor once and names and stamps its measurements. Never throws: a failure becomes
/// the outcome's error, so one failing sensor does not stop the others.
public func sample(_ sensor: SensorInstance, at time: Timestamp) -> SensorOutcome {
    let config = sensor.config
    guard let driver = sensor.driver else {
        return SensorOutcome(sensor: config.name, driver: config.driver.rawValue, readings: [], error: sensor.setupError ?? "not set up")
    }
    return outcome(sensor, at: time) { try driver.read() }
}

/// Reads several sensors together: every chip that can (`SensorDriver.start()`) starts its
/// conversion first, then one wait for the slowest, then each result is read; the others are read
/// whole. One failing sensor fails alone. Readings are stamped when their result is read.
public func sampleRound(_ sensors: [SensorInstance], clock: MonotonicClock, stamp: () -> Timestamp) -> [SensorOutcome] {
    var outcomes = [SensorOutcome?](repeating: nil, count: sensors.count)
    var started: [Int] = []
    var readyAt: UInt64 = 0
    for (i, sensor) in sensors.enumerated() {
        guard let driver = sensor.driver else { continue }
        do {
            if let wait = try driver.start() {
                started.append(i)
                readyAt = max(readyAt, clock.nanoseconds() + wait * 1000)
            }
        } catch {
            outcomes[i] = SensorOutcome(sensor: sensor.config.name, driver: driver.driver, readings: [], error: "\(error)")
        }
    }
    let now = clock.nanoseconds()
    if !started.isEmpty, readyAt > now { clock.sleep(microseconds: (readyAt - now) / 1000) }
    for i in started {
        let sensor = sensors[i]
        outcomes[i] = outcome(sensor, at: stamp()) { try sensor.driver!.finish() }
    }
    for (i, sensor) in sensors.enumerated() where outcomes[i] == nil {
        outcomes[i] = sample(sensor, at: stamp())
    }
    return outcomes.map { $0! }
}

/// Names and rounds a driver's measurements, or keeps its error.
func outcome(_ sensor: SensorInstance, at time: Timestamp, _ measure: () throws -> [Measurement]) -> SensorOutcome {
    let config = sensor.config
    let driverName = sensor.driver?.driver ?? config.driver.rawValue
    do {
        let readings = try measure().map { m in
            var value = m.value
            if case .number(let v) = value { value = .number(roundToSignificantDigits(v, 7)) }
            return Reading(variable: config.variableName(for: m.quantity), value: value, unit: m.unit, time: time, metadata: m.metadata)
        }
        return SensorOutcome(sensor: config.name, driver: driverName, readings: readings, error: nil)
    } catch {
        return SensorOutcome(sensor: config.name, driver: driverName, readings: [], error: "\(error)")
    }
}
