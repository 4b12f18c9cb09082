import Testing
import EdgeCore
@testable import Hardware

let repositoryRoot: String = {
    let file = #filePath
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/HardwareTests/SimulationTests.swift
    return parts.joined(separator: "/")
}()

@Suite struct I2CDumpTests {
    @Test func parsesARealCapture() throws {
        let dump = try I2CDump(text: readTextFile(repositoryRoot + "/hardware/dumps/bme280-0x77-power-on.i2cdump"))
        #expect(dump.bytes[0xD0] == 0x60)
        #expect(dump.bytes[0x88] == 0x8E)
        #expect(dump.bytes[0xFF] == 0x80)
    }

    @Test func failedCellsAndBadCells() throws {
        var rows = ["     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f"]
        rows.append("00: XX 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f    ................")
        let dump = try I2CDump(text: rows.joined(separator: "\n"))
        #expect(dump.bytes[0] == nil)
        #expect(dump.bytes[15] == 0x0F)
        #expect(dump.registers(fill: 0xEE)[0] == 0xEE)
        rows.append("10: 00 11 zz 00 00 00 00 00 00 00 00 00 00 00 00 00")
        #expect(throws: I2CDump.ParseError(line: 3, message: "cell 2 of row 10 is 'zz', not two hex digits or XX")) {
            try I2CDump(text: rows.joined(separator: "\n"))
        }
        #expect(throws: I2CDump.ParseError.self) { try I2CDump(text: "hello\nworld") }
    }
}

@Suite struct SimulatedBusTests {
    @Test func missingDeviceIsANackLikeLinux() {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        do {
            _ = try bus.readRegister(address: 0x76, register: 0xD0)
            Issue.record("read from an empty address")
        } catch let e as HardwareError {
            #expect(e.description == "sim:i2c-1: I2C_RDWR to 0x76 failed: Remote I/O error (no acknowledge)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(!bus.probe(address: 0x76))
    }

    @Test func faultsAbsentAndNackAfter() throws {
        let clock = ManualClock()
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        bus.attach(SimulatedBME280(signal: nil, clock: clock), at: 0x76, faults: try FaultPlan(spec: "nack-after:3"))
        bus.attach(SimulatedBME280(signal: nil, clock: clock), at: 0x77, faults: try FaultPlan(spec: "absent"))
        for _ in 0..<3 { #expect(try bus.readRegister(address: 0x76, register: 0xD0) == 0x60) }
        #expect(throws: HardwareError.self) { try bus.readRegister(address: 0x76, register: 0xD0) }
        #expect(!bus.probe(address: 0x77))
    }

    @Test func faultSpecErrorsNameThePart() {
        #expect(throws: FaultSpecError.self) { try FaultPlan(spec: "nack-after:soon") }
        do {
            _ = try FaultPlan(spec: "absent, melted")
            Issue.record("accepted an unknown fault")
        } catch {
            #expect(error.part == "melted")
            #expect(error.description.contains("valid: absent, nack-after:N"))
        }
        let plan = try? FaultPlan(spec: "bad-crc-every:3, stuck-busy")
        #expect(plan?.badCRCEvery == 3)
        #expect(plan?.stuckBusy == true)
        #expect(plan?.corruptsCRC(3) == true)
        #expect(plan?.corruptsCRC(4) == false)
    }
}

@Suite struct SignalTests {
    @Test func counterStepsByOnePerReading() {
        let g = SignalGenerator(SignalSpec(.counter), model: .temperature)
        let values = (0..<5).map { _ in g.next(atSeconds: 0) }
        #expect(values == [0, 1, 2, 3, 4])
    }

    @Test func randomWalkIsSeededAndBounded() {
        func walk(_ seed: UInt64) -> [Double] {
            let g = SignalGenerator(SignalSpec(.randomWalk, seed: seed), model: .humidity)
            return (0..<500).map { _ in g.next(atSeconds: 0) }
        }
        #expect(walk(1) == walk(1))
        #expect(walk(1) != walk(2))
        #expect(walk(5).allSatisfy { (15.0...75.0).contains($0) })
        #expect(Set(walk(5)).count > 400)
    }

    @Test func sineStaysWithinItsAmplitude() {
        let g = SignalGenerator(SignalSpec(.sine, periodSeconds: 10), model: .temperature)
        let values = stride(from: 0.0, to: 10, by: 0.1).map { g.next(atSeconds: $0) }
        #expect(values.allSatisfy { abs($0 - 22) <= 3.0001 })
        #expect(values.max()! > 24.9 && values.min()! < 19.1)
    }
}

@Suite struct SimulatedGPIOTests {
    @Test func pulsesWithBounceAndRecordedOutputs() throws {
        let clock = ManualClock(startNanoseconds: 0)
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", clock: clock)
        chip.script(line: 17, PulseScript(rate: 2, bounce: 1))
        let line = try chip.requestInput(line: 17, options: GPIOInputOptions(edges: .both), consumer: "test")
        clock.advance(nanoseconds: 1_000_000_000)
        let edges = try line.edges(timeoutMilliseconds: 0)
        // Two pulses in one second, each: rise, bounce fall, bounce rise, fall.
        #expect(edges.map(\.kind) == [.rising, .falling, .rising, .falling, .rising, .falling, .rising, .falling])
        #expect(edges.map(\.timestampNanoseconds) == edges.map(\.timestampNanoseconds).sorted())
        #expect(try line.edges(timeoutMilliseconds: 0).isEmpty)
        #expect(throws: HardwareError.self) { try chip.requestInput(line: 17, options: GPIOInputOptions(), consumer: "again") }
        #expect(throws: HardwareError.self) { try chip.requestOutput(line: 99, initial: false, activeLow: false, consumer: "x") }

        let relay = try chip.requestOutput(line: 22, initial: false, activeLow: false, consumer: "relay")
        try relay.set(true)
        try relay.set(false)
        try relay.set(true)
        #expect(chip.writes.filter { $0.line == 22 }.map(\.value) == [false, true, false, true])
        #expect(chip.outputValue(line: 22) == true)
    }
}

@Suite struct BME280IntegerReferenceTests {
    @Test func bmp280DatasheetExample() {
        // BMP280 datasheet (BST-BMP280-DS001) section 3.12: the same T and P routines as the BME280.
        var r = [UInt8](repeating: 0, count: 256)
        let words: [Int] = [27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000]
        for (i, w) in words.enumerated() {
            let u = UInt16(bitPattern: Int16(truncatingIfNeeded: w))
            r[0x88 + 2 * i] = UInt8(u & 0xFF)
            r[0x89 + 2 * i] = UInt8(u >> 8)
        }
        let c = BME280IntegerCompensation(registers: r)
        let (t, tFine) = c.temperature(adc: 519_888)
        #expect(t == 2508)
        #expect(tFine == 128_422)
        let p = Double(c.pressure(adc: 415_148, tFine: tFine)) / 256
        #expect(abs(p - 100_653.27) < 0.5)
        #expect(c.rawTemperature(for: 25.08) != 0)
        #expect(c.temperature(adc: c.rawTemperature(for: 25.08)).centiCelsius == 2508)
    }
}
