import Testing
import EdgeCore
import Hardware
import Sensors
@testable import Agent

/// Physical ranges a reading of each quantity must fall in.
func inRange(_ r: Reading) -> Bool {
    guard case .number(let v) = r.value else { return false }
    switch r.unit {
    case "°C": return (-40...125).contains(v)
    case "%": return (0...100).contains(v)
    case "hPa": return (300...1100).contains(v)
    case "lx": return (0...65535).contains(v)
    case "V": return (-6.144...6.144).contains(v)
    default: return v >= 0
    }
}

@Suite struct SamplingTests {
    @Test func everyBenchSensorReadsInRange() throws {
        let config = try AgentConfig.load(path: repositoryRoot + "/config/bench.toml")
        let clock = ManualClock()
        let env = HardwareEnvironment(clock: clock)
        let outcomes = env.makeSensors(config).map { sample($0, at: clock.now()) }
        #expect(outcomes.allSatisfy { $0.error == nil }, "\(outcomes.compactMap(\.error))")
        let readings = outcomes.flatMap(\.readings)
        let expected = config.sensors.flatMap { s in s.quantities.map { s.variableName(for: $0) } }
        #expect(readings.map(\.variable) == expected)
        for r in readings { #expect(inRange(r), "\(r.variable) = \(r.value)") }
    }

    @Test func oneFaultySensorDoesNotStopTheOthers() throws {
        let text = try readTextFile(repositoryRoot + "/config/bench.toml") + """

        [[sensor]]
        name = "flaky"
        driver = "sht3x"
        address = 0x45
        [sensor.simulate]
        fault = "bad-crc"

        [[sensor]]
        name = "gone"
        driver = "bme280"
        bus = 3
        [sensor.simulate]
        fault = "absent"

        [[sensor]]
        name = "real"
        driver = "bme280"
        bus = 7
        """
        let config = try AgentConfig.parse(text, file: repositoryRoot + "/config/faulty.toml")
        let clock = ManualClock()
        let outcomes = HardwareEnvironment(clock: clock).makeSensors(config).map { sample($0, at: clock.now()) }
        let failed = Dictionary(uniqueKeysWithValues: outcomes.filter { $0.error != nil }.map { ($0.sensor, $0.error!) })
        #expect(Set(failed.keys) == ["flaky", "gone", "real"])
        #expect(failed["flaky"]!.contains("CRC"))
        #expect(failed["gone"]!.contains("sim:i2c-3: I2C_RDWR to 0x76 failed"))
        #expect(failed["real"]!.contains("/dev/i2c-7: open failed"))
        #expect(outcomes.filter { $0.error == nil }.count == config.sensors.count - 3)
        #expect(outcomes.filter { $0.error == nil }.allSatisfy { !$0.readings.isEmpty })
    }

    @Test func roundingKeepsSevenSignificantDigitsAndWholeNumbers() {
        #expect(roundToSignificantDigits(24.437370915, 7) == 24.43737)
        #expect(roundToSignificantDigits(0.000123456789, 7) == 0.0001234568)
        #expect(roundToSignificantDigits(123_456_789, 7) == 123_456_789)
        #expect(roundToSignificantDigits(-996.21273, 7) == -996.2127)
    }

    @Test func scanFindsAndNamesTheSimulatedChips() throws {
        let config = try AgentConfig.load(path: repositoryRoot + "/config/bench.toml")
        let env = HardwareEnvironment(clock: ManualClock())
        _ = env.makeSensors(config)
        let found = scanBus(env.simulatedBus(1))
        #expect(found == [ScanResult(address: 0x23, chip: "BH1750?"), ScanResult(address: 0x44, chip: "SHT3x"),
                          ScanResult(address: 0x48, chip: "ADS1115"), ScanResult(address: 0x76, chip: "BME280"),
                          ScanResult(address: 0x77, chip: "BME280")])
    }
}
