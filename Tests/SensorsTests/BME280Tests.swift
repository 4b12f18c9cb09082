import Testing
import EdgeCore
import Hardware
@testable import Sensors

let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

func bme280(_ dumpFile: String? = nil, signal: SignalSpec? = nil, faults: String = "", settings: BME280.Settings = .init()) throws -> (BME280, SimulatedBME280, ManualClock) {
    let clock = ManualClock()
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    let registers = try dumpFile.map { try I2CDump(text: readTextFile(repositoryRoot + "/hardware/dumps/" + $0)).registers() }
    let plan = try FaultPlan(spec: faults)
    let chip = SimulatedBME280(registers: registers, signal: signal, faults: plan, clock: clock)
    bus.attach(chip, at: 0x76, faults: plan)
    return (BME280(bus: bus, address: 0x76, settings: settings, clock: clock), chip, clock)
}

func value(_ ms: [Measurement], _ quantity: String) -> Double? {
    ms.first { $0.quantity == quantity }?.value.number
}

@Suite struct BME280Tests {
    /// The acceptance check: a chip seeded from a real chip's registers gives what the Bosch
    /// datasheet's formulas give for those registers (here the integer reference routines, an
    /// independent implementation), and what the chip's owner published for them.
    @Test func capturedChipMatchesTheDatasheetFormulas() throws {
        let (driver, _, _) = try bme280("bme280-0x76.i2cdump")
        let ms = try driver.read()
        let registers = try I2CDump(text: readTextFile(repositoryRoot + "/hardware/dumps/bme280-0x76.i2cdump")).registers()
        let ref = BME280IntegerCompensation(registers: registers)
        let d = Array(registers[0xF7...0xFE])
        let adcP = Int32(d[0]) << 12 | Int32(d[1]) << 4 | Int32(d[2]) >> 4
        let adcT = Int32(d[3]) << 12 | Int32(d[4]) << 4 | Int32(d[5]) >> 4
        let adcH = Int32(d[6]) << 8 | Int32(d[7])
        let (centi, tFine) = ref.temperature(adc: adcT)
        let t = try #require(value(ms, "temperature")), p = try #require(value(ms, "pressure")), h = try #require(value(ms, "humidity"))
        #expect(abs(t - Double(centi) / 100) <= 0.01)
        #expect(abs(p * 100 - Double(ref.pressure(adc: adcP, tFine: tFine)) / 256) <= 1)
        #expect(abs(h - Double(ref.humidity(adc: adcH, tFine: tFine)) / 1024) <= 0.01)
        // The figures published with the capture: 24.44 °C and 54.17 %RH.
        #expect(abs(t - 24.44) < 0.005)
        #expect(abs(h - 54.17) < 0.005)
        #expect(abs(p - 996.21) < 0.01)
    }

    @Test func floatingFormulasAgreeWithIntegerReferenceAcrossTheRange() {
        let registers = SimulatedBME280.defaultImage
        let ref = BME280IntegerCompensation(registers: registers)
        let cal = BME280Calibration(block1: Array(registers[0x88...0xA1]), block2: Array(registers[0xE1...0xE7]))
        var worstT = 0.0, worstP = 0.0, worstH = 0.0
        for adcT in stride(from: Int32(400_000), to: 650_000, by: 4_999) {
            let (centi, tFine) = ref.temperature(adc: adcT)
            let (celsius, tFineF) = BME280Compensation.temperature(adc: adcT, cal)
            worstT = max(worstT, abs(celsius - Double(centi) / 100))
            for adcP in stride(from: Int32(250_000), to: 450_000, by: 19_999) {
                guard let pa = BME280Compensation.pressure(adc: adcP, tFine: tFineF, cal) else { continue }
                worstP = max(worstP, abs(pa - Double(ref.pressure(adc: adcP, tFine: tFine)) / 256))
            }
            for adcH in stride(from: Int32(20_000), to: 45_000, by: 2_501) {
                let rh = BME280Compensation.humidity(adc: adcH, tFine: tFineF, cal)
                let refRH = Double(ref.humidity(adc: adcH, tFine: tFine)) / 1024
                if refRH > 0 && refRH < 100 { worstH = max(worstH, abs(rh - refRH)) }
            }
        }
        #expect(worstT <= 0.01)
        #expect(worstP <= 1)
        #expect(worstH <= 0.01)
    }

    @Test func followsAConstantSignal() throws {
        let (driver, chip, _) = try bme280(signal: SignalSpec(.constant), settings: .init(temperatureOversampling: 2, pressureOversampling: 16, humidityOversampling: 1, filter: 4))
        for n in 1...3 {
            let ms = try driver.read()
            #expect(abs(try #require(value(ms, "temperature")) - 22) < 0.01)
            #expect(abs(try #require(value(ms, "pressure")) - 1013.25) < 0.02)
            #expect(abs(try #require(value(ms, "humidity")) - 45) < 0.02)
            #expect(chip.conversions == n)  // one forced conversion per read
        }
        #expect(chip.registers[0xF4] >> 5 == 2)  // x2 temperature oversampling programmed
        #expect(chip.registers[0xF5] >> 2 & 0x07 == 2)  // filter 4
    }

    @Test func counterSignalIsRecoverable() throws {
        let (driver, _, _) = try bme280(signal: SignalSpec(.counter))
        let temperatures = try (0..<5).map { _ in try #require(value(try driver.read(), "temperature")) }
        #expect(temperatures.map { $0.rounded() } == [0, 1, 2, 3, 4])
    }

    @Test func powerOnCaptureReportsSkippedMeasurement() throws {
        let clock = ManualClock()
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        let registers = try I2CDump(text: readTextFile(repositoryRoot + "/hardware/dumps/bme280-0x77-power-on.i2cdump")).registers()
        bus.attach(SimulatedBME280(registers: registers, signal: nil, clock: clock), at: 0x77)
        let driver = BME280(bus: bus, address: 0x77, clock: clock)
        #expect { try driver.read() } throws: { ($0 as? SensorError)?.message.contains("skipped") == true }
    }

    @Test func faultsBecomeErrorsNotValues() throws {
        let (stuck, _, _) = try bme280(signal: SignalSpec(.constant), faults: "stuck-busy")
        #expect { try stuck.read() } throws: { ($0 as? SensorError)?.message.contains("busy bit still set") == true }

        let (absent, _, _) = try bme280(signal: SignalSpec(.constant), faults: "absent")
        #expect { try absent.read() } throws: { ($0 as? HardwareError)?.errno == EREMOTEIO_FOR_TESTS }

        // Fails mid-life (after configuration), then keeps failing: never a made-up value.
        let (flaky, _, _) = try bme280(signal: SignalSpec(.constant), faults: "nack-after:20")
        var outcomes: [Bool] = []
        for _ in 0..<6 { outcomes.append((try? flaky.read()) != nil) }
        #expect(outcomes.first == true)
        #expect(outcomes.last == false)
    }

    @Test func wrongChipIsNamed() throws {
        let clock = ManualClock()
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        let other = RegisterMapDevice()
        other.registers[0xD0] = 0x61
        bus.attach(other, at: 0x76)
        let driver = BME280(bus: bus, address: 0x76, clock: clock)
        #expect { try driver.read() } throws: { "\($0)".contains("chip id is 0x61, expected 0x60") }
    }
}

let EREMOTEIO_FOR_TESTS: Int32 = 121
