import EdgeCore
import Hardware
import Sensors

/// Opens buses, chips and kernel files once and shares them between the sensors that use them:
/// the real Linux ones, and the simulated ones for sensors with a `[sensor.simulate]` table.
/// A failure to open one bus is kept and reported for the sensors on it; the others go on.
public final class HardwareEnvironment {
    public let clock: MonotonicClock
    public let sysfs: SysfsReader
    public let simulatedSysfs: SimulatedSysfs
    /// A prefix for /dev paths (tests, and `doctor --system-root`).
    public let deviceRoot: String
    private var linuxBuses: [Int: Result<LinuxI2CBus, Error>] = [:]
    private var simulatedBuses: [Int: SimulatedI2CBus] = [:]
    private var linuxChips: [String: Result<LinuxGPIOChip, Error>] = [:]
    private var simulatedChips: [String: SimulatedGPIOChip] = [:]

    /// - Parameters:
    ///   - clock: the clock drivers wait on; simulated chips convert on it too.
    ///   - sysfsRoot: a prefix for /sys paths of real (not simulated) 1-Wire and thermal sensors.
    ///   - deviceRoot: a prefix for /dev paths of real buses and chips.
    public init(clock: MonotonicClock, sysfsRoot: String = "", deviceRoot: String = "") {
        self.clock = clock
        self.deviceRoot = deviceRoot
        sysfs = LinuxSysfs(root: sysfsRoot)
        simulatedSysfs = SimulatedSysfs(clock: clock)
    }

    /// `/dev/i2c-<number>`, opened once it opens (a bus missing now is tried again next time:
    /// an overlay loaded late, a USB adapter plugged in after the agent started).
    public func linuxBus(_ number: Int, force: Bool) throws -> I2CBus {
        if let cached = linuxBuses[number] { return try cached.get() }
        let result = Result<LinuxI2CBus, Error> { try LinuxI2CBus(number: number, path: deviceRoot + "/dev/i2c-\(number)", force: force) }
        if case .success = result { linuxBuses[number] = result }
        return try result.get()
    }

    /// The simulated bus `sim:i2c-<number>`, created on first use.
    public func simulatedBus(_ number: Int) -> SimulatedI2CBus {
        if let bus = simulatedBuses[number] { return bus }
        let bus = SimulatedI2CBus(name: "sim:i2c-\(number)")
        simulatedBuses[number] = bus
        return bus
    }

    /// Whether a simulated bus with this number exists (some simulated sensor is on it).
    public func hasSimulatedBus(_ number: Int) -> Bool { simulatedBuses[number] != nil }

    public func linuxChip(_ name: String) throws -> GPIOChip {
        if let cached = linuxChips[name] { return try cached.get() }
        let path = !deviceRoot.isEmpty && name.hasPrefix("gpiochip") ? deviceRoot + "/dev/" + name : name
        let result = Result<LinuxGPIOChip, Error> { try LinuxGPIOChip(path) }
        if case .success = result { linuxChips[name] = result }
        return try result.get()
    }

    public func simulatedChip(_ name: String) -> SimulatedGPIOChip {
        if let chip = simulatedChips[name] { return chip }
        let chip = SimulatedGPIOChip(name: "sim:\(name)", clock: clock)
        simulatedChips[name] = chip
        return chip
    }
}

/// A configured sensor with its driver, or why the driver could not be set up.
public struct SensorInstance {
    public let config: SensorConfig
    public let driver: SensorDriver?
    public let setupError: String?
}

extension HardwareEnvironment {
    /// Builds a driver for every sensor in `config`. A sensor that cannot be set up (a missing
    /// bus, an unreadable dump) carries its error; the others are unaffected.
    public func makeSensors(_ config: AgentConfig) -> [SensorInstance] {
        config.sensors.map { makeSensor($0, config: config) }
    }

    /// One sensor's driver, or why it cannot be set up now.
    public func makeSensor(_ sensor: SensorConfig, config: AgentConfig) -> SensorInstance {
        do {
            return SensorInstance(config: sensor, driver: try makeDriver(sensor, config: config), setupError: nil)
        } catch {
            return SensorInstance(config: sensor, driver: nil, setupError: "\(error)")
        }
    }

    func makeDriver(_ s: SensorConfig, config: AgentConfig) throws -> SensorDriver {
        let address = s.address ?? 0
        func bus() throws -> I2CBus {
            s.simulate != nil ? simulatedBus(s.bus) : try linuxBus(s.bus, force: s.force)
        }
        let sim = s.simulate
        let signal = sim?.signal
        let faults = sim?.faults ?? .none
        switch s.options {
        case .bme280(let settings):
            if let sim {
                var registers: [UInt8]?
                if let dump = sim.dump {
                    let path = config.resolve(dump)
                    do {
                        registers = try I2CDump(text: readTextFile(path)).registers()
                    } catch let e as I2CDump.ParseError {
                        throw ConfigError(file: path, line: e.line, key: nil, "not an i2cdump capture: \(e.message)")
                    }
                }
                simulatedBus(s.bus).attach(SimulatedBME280(registers: registers, signal: signal, faults: faults, clock: clock), at: address, faults: faults)
            }
            return BME280(bus: try bus(), address: address, settings: settings, clock: clock)
        case .sht3x(let repeatability):
            if sim != nil { simulatedBus(s.bus).attach(SimulatedSHT3x(signal: signal ?? SignalSpec(.sine), faults: faults, clock: clock), at: address, faults: faults) }
            return SHT3x(bus: try bus(), address: address, repeatability: repeatability, clock: clock)
        case .bh1750(let resolution):
            if sim != nil { simulatedBus(s.bus).attach(SimulatedBH1750(signal: signal ?? SignalSpec(.sine), faults: faults, clock: clock), at: address, faults: faults) }
            return BH1750(bus: try bus(), address: address, resolution: resolution, clock: clock)
        case .ads1115(let channels, let gain):
            if sim != nil { simulatedBus(s.bus).attach(SimulatedADS1115(signal: signal ?? SignalSpec(.sine), faults: faults, clock: clock), at: address, faults: faults) }
            return ADS1115(bus: try bus(), address: address, channels: channels, gain: gain, clock: clock)
        case .ds18b20(let id):
            guard sim != nil else { return DS18B20(sysfs: sysfs, id: id) }
            let romID = id ?? "28-" + String(String(s.name.stableHash, radix: 16).suffix(12)).leftPadded(12)
            simulatedSysfs.addDS18B20(id: romID, signal: signal ?? SignalSpec(.sine), faults: faults)
            return DS18B20(sysfs: simulatedSysfs, id: romID)
        case .board(let zone):
            guard sim != nil else { return BoardTemperature(sysfs: sysfs, zone: zone) }
            simulatedSysfs.addThermalZone(index: zone, signal: signal ?? SignalSpec(.sine), faults: faults)
            return BoardTemperature(sysfs: simulatedSysfs, zone: zone)
        case .gpio(let g):
            let chip: GPIOChip
            if let sim {
                let simChip = simulatedChip(g.chip)
                simChip.script(line: try g.lineName.map { try simChip.lineOffset(named: $0) } ?? g.line, PulseScript(rate: sim.pulseRate, bounce: sim.bounce))
                chip = simChip
            } else {
                chip = try linuxChip(g.chip)
            }
            let debounceMicros = UInt64(g.debounceMilliseconds * 1000)
            let options = GPIOInputOptions(bias: g.bias, edges: g.mode == .counter ? .rising : .none, activeLow: g.activeLow,
                                           debounceMicroseconds: UInt32(debounceMicros),
                                           eventBufferSize: g.mode == .counter ? GPIOInputOptions.maxEventBuffer : 0)
            let offset = try g.lineName.map { try chip.lineOffset(named: $0) } ?? g.line
            let line = try chip.requestInput(line: offset, options: options, consumer: "tagoedge:\(s.name)")
            return g.mode == .counter ? GPIOCounter(line: line, debounceMicroseconds: debounceMicros) : GPIOInput(line: line)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
