import Testing
import EdgeCore
import Hardware
@testable import Sensors

func simulatedBus(_ device: SimulatedI2CDevice, at address: UInt8, faults: FaultPlan = .none) -> SimulatedI2CBus {
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    bus.attach(device, at: address, faults: faults)
    return bus
}

@Suite struct SHT3xTests {
    @Test func conversionFormulas() {
        #expect(SHT3x.celsius(raw: 0) == -45)
        #expect(SHT3x.celsius(raw: 0xFFFF) == 130)
        #expect(SHT3x.relativeHumidity(raw: 0xFFFF) == 100)
    }

    @Test func readsTheSimulatedChip() throws {
        let clock = ManualClock()
        let chip = SimulatedSHT3x(signal: SignalSpec(.constant), clock: clock)
        let driver = SHT3x(bus: simulatedBus(chip, at: 0x44), clock: clock)
        let ms = try driver.read()
        #expect(abs(try #require(ms.first { $0.quantity == "temperature" }?.value.number) - 22) < 0.01)
        #expect(abs(try #require(ms.first { $0.quantity == "humidity" }?.value.number) - 45) < 0.01)
        #expect(chip.measurements == 1)
    }

    @Test func readingTooEarlyIsNotAcknowledged() throws {
        let clock = ManualClock()
        let bus = simulatedBus(SimulatedSHT3x(signal: SignalSpec(.constant), clock: clock), at: 0x44)
        try bus.write(address: 0x44, [0x24, 0x00])
        #expect(throws: HardwareError.self) { try bus.read(address: 0x44, count: 6) }
        clock.sleep(microseconds: 16_000)
        #expect(try bus.read(address: 0x44, count: 6).count == 6)
    }

    @Test func badCRCIsAnErrorNotAValue() throws {
        let clock = ManualClock()
        let driver = SHT3x(bus: simulatedBus(SimulatedSHT3x(signal: SignalSpec(.constant), faults: try FaultPlan(spec: "bad-crc"), clock: clock), at: 0x44), clock: clock)
        #expect { try driver.read() } throws: { "\($0)".contains("failed its CRC check") }

        let sometimes = SHT3x(bus: simulatedBus(SimulatedSHT3x(signal: SignalSpec(.constant), faults: try FaultPlan(spec: "bad-crc-every:4"), clock: clock), at: 0x44), clock: clock)
        let results = (0..<4).map { _ in (try? sometimes.read()) != nil }
        #expect(results == [true, false, true, false])  // the 4th and 8th words are corrupted
    }
}

@Suite struct BH1750Tests {
    @Test func luxFromCounts() {
        #expect(BH1750.lux(counts: 120, resolution: .high) == 100)
        #expect(BH1750.lux(counts: 120, resolution: .high2) == 50)
    }

    @Test func readsTheSimulatedChip() throws {
        let clock = ManualClock()
        for resolution in BH1750.Resolution.allCases {
            let driver = BH1750(bus: simulatedBus(SimulatedBH1750(signal: SignalSpec(.constant), clock: clock), at: 0x23), resolution: resolution, clock: clock)
            let lux = try #require(try driver.read().first?.value.number)
            #expect(abs(lux - 320) < 1, "\(resolution)")
        }
    }

    /// Full sunlight saturates the chip at 65535 counts: flagged as clipped (before: 54,612 lx,
    /// a plain value).
    @Test func saturationIsFlagged() throws {
        final class Saturated: I2CBus {
            let name = "saturated"
            func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] { [UInt8](repeating: 0xFF, count: count) }
            func probe(address: UInt8) -> Bool { true }
        }
        let m = try #require(try BH1750(bus: Saturated(), clock: ManualClock()).read().first)
        #expect(m.metadata["clipped"] == "above")
        let normal = try #require(try BH1750(bus: simulatedBus(SimulatedBH1750(signal: SignalSpec(.constant), clock: ManualClock()), at: 0x23), clock: ManualClock()).read().first)
        #expect(normal.metadata["clipped"] == nil)
    }

    @Test func absentChip() throws {
        let clock = ManualClock()
        let driver = BH1750(bus: simulatedBus(SimulatedBH1750(signal: SignalSpec(.constant), clock: clock), at: 0x23, faults: try FaultPlan(spec: "absent")), clock: clock)
        #expect(throws: HardwareError.self) { try driver.read() }
    }
}

@Suite struct ADS1115Tests {
    @Test func singleEndedAndDifferential() throws {
        let clock = ManualClock()
        let chip = SimulatedADS1115(signal: SignalSpec(.constant), clock: clock)
        let driver = ADS1115(bus: simulatedBus(chip, at: 0x48), channels: [.ain0, .ain1, .ain3, .ain0_ain1], gain: .fs4_096, clock: clock)
        let ms = try driver.read()
        #expect(ms.map(\.quantity) == ["ain0", "ain1", "ain3", "ain0_ain1"])
        let volts = ms.compactMap(\.value.number)
        let lsb = 4.096 / 32768
        #expect(abs(volts[0] - 0.5) <= lsb)
        #expect(abs(volts[1] - 1.0) <= lsb)
        #expect(abs(volts[2] - 2.0) <= lsb)
        #expect(abs(volts[3] + 0.5) <= lsb)
        #expect(chip.conversions == 4)
    }

    @Test func gainClipsAtFullScale() throws {
        let clock = ManualClock()
        let driver = ADS1115(bus: simulatedBus(SimulatedADS1115(signal: SignalSpec(.constant), clock: clock), at: 0x48), channels: [.ain3], gain: .fs0_256, clock: clock)
        let m = try #require(try driver.read().first)
        #expect(m.value.number == 0.256 * 32767 / 32768)
        #expect(m.metadata["clipped"] == "above")  // a bound, not a measurement (before: a plain value)
    }

    @Test func stuckConversionIsReported() throws {
        let clock = ManualClock()
        let driver = ADS1115(bus: simulatedBus(SimulatedADS1115(signal: SignalSpec(.constant), faults: try FaultPlan(spec: "stuck-busy"), clock: clock), at: 0x48), clock: clock)
        #expect { try driver.read() } throws: { "\($0)".contains("OS bit still 0") }
    }

    @Test func configWordMatchesTheDatasheet() {
        let driver = ADS1115(bus: SimulatedI2CBus(name: "x"), channels: [.ain0], gain: .fs2_048, clock: ManualClock())
        // OS=1, MUX=100 (AIN0/GND), PGA=010, MODE=1, DR=100, comparator disabled: 0xC583.
        #expect(driver.configWord(.ain0) == 0xC583)
    }
}

@Suite struct DS18B20Tests {
    @Test func parsesRealKernelText() throws {
        let text = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
        #expect(try DS18B20.parse(text, location: "28-x") == 23.125)
        let negative = SimulatedSysfs.w1SlaveText(celsius: -10.125)
        #expect(try DS18B20.parse(negative, location: "28-x") == -10.125)
    }

    @Test func rejectsCRCErrorsAndThePowerOnValue() {
        let kernelNo = "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
        #expect { try DS18B20.parse(kernelNo, location: "28-x") } throws: { "\($0)".contains("CRC error") }
        let wrongByte = "72 01 4b 46 7f ff 0e 10 58 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 58 t=23125\n"
        #expect { try DS18B20.parse(wrongByte, location: "28-x") } throws: { "\($0)".contains("scratchpad CRC is 0x58, computed 0x57") }
        #expect { try DS18B20.parse(SimulatedSysfs.w1SlaveText(celsius: 85), location: "28-x") } throws: { "\($0)".contains("power-on value") }
        #expect(throws: SensorError.self) { try DS18B20.parse("garbage", location: "28-x") }
    }

    /// A shorted data line reads nine zero bytes whose CRC checks: 0 °C before, a fault now (the
    /// configuration register's fixed bits). Current w1_therm gives an empty file when its reads
    /// fail or the CRC does not check; the simulation now does the same.
    @Test func aShortedBusAndAFailedReadAreFaultsNotReadings() throws {
        let zeros = "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n"
        #expect { try DS18B20.parse(zeros, location: "28-x") } throws: { "\($0)".contains("shorted") }
        #expect { try DS18B20.parse("", location: "28-x") } throws: { "\($0)".contains("read nothing") }
        let sysfs = SimulatedSysfs(clock: ManualClock())
        sysfs.addDS18B20(id: "28-00000000000a", signal: SignalSpec(.constant), faults: try FaultPlan(spec: "shorted"))
        sysfs.addDS18B20(id: "28-00000000000b", signal: SignalSpec(.constant), faults: try FaultPlan(spec: "bad-crc"))
        #expect { try DS18B20(sysfs: sysfs, id: "28-00000000000a").read() } throws: { "\($0)".contains("shorted") }
        #expect(try sysfs.readText("/sys/bus/w1/devices/28-00000000000b/w1_slave") == "")
        #expect { try DS18B20(sysfs: sysfs, id: "28-00000000000b").read() } throws: { "\($0)".contains("read nothing") }
    }

    @Test func discoversAndReadsSimulatedSensors() throws {
        let clock = ManualClock()
        let sysfs = SimulatedSysfs(clock: clock)
        sysfs.addDS18B20(id: "28-0316a2792aff", signal: SignalSpec(.constant))
        sysfs.addDS18B20(id: "28-000000000001", signal: SignalSpec(.constant), faults: try FaultPlan(spec: "power-on-value"))
        #expect(try DS18B20.discover(sysfs) == ["28-000000000001", "28-0316a2792aff"])
        let good = DS18B20(sysfs: sysfs, id: "28-0316a2792aff")
        let m = try #require(try good.read().first)
        #expect(m.value.number == 22)
        #expect(m.metadata["rom"] == "28-0316a2792aff")
        #expect(throws: SensorError.self) { try DS18B20(sysfs: sysfs, id: "28-000000000001").read() }
        #expect(throws: HardwareError.self) { try DS18B20(sysfs: sysfs, id: "28-ffffffffffff").read() }
        #expect(throws: SensorError.self) { try DS18B20(sysfs: SimulatedSysfs(clock: clock)).read() }
    }
}

@Suite struct BoardAndGPIOTests {
    @Test func boardTemperature() throws {
        let clock = ManualClock()
        let sysfs = SimulatedSysfs(clock: clock)
        sysfs.addThermalZone(index: 0, signal: SignalSpec(.constant))
        #expect(try BoardTemperature(sysfs: sysfs).read().first?.value.number == 48)
        sysfs.addFile("/sys/class/thermal/thermal_zone1/temp", contents: "hot\n")
        #expect { try BoardTemperature(sysfs: sysfs, zone: 1).read() } throws: { "\($0)".contains("read 'hot'") }
        #expect(throws: HardwareError.self) { try BoardTemperature(sysfs: sysfs, zone: 2).read() }
    }

    @Test func counterDebouncesContactBounce() throws {
        let clock = ManualClock(startNanoseconds: 0)
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", clock: clock)
        chip.script(line: 17, PulseScript(rate: 2, bounce: 2))
        chip.script(line: 18, PulseScript(rate: 2, bounce: 2))
        // As the agent asks: the kernel debounces, and keeps up to 1,024 events between reads.
        let debounced = GPIOCounter(line: try chip.requestInput(line: 17, options: GPIOInputOptions(edges: .rising, debounceMicroseconds: 5_000, eventBufferSize: 1024), consumer: "t"), debounceMicroseconds: 5_000)
        let raw = GPIOCounter(line: try chip.requestInput(line: 18, options: GPIOInputOptions(edges: .rising, eventBufferSize: 1024), consumer: "t"), debounceMicroseconds: 0)
        clock.advance(nanoseconds: 10_000_000_000)
        let d = try debounced.read(), r = try raw.read()
        #expect(d.first?.value.number == 20)  // 2 Hz for 10 s
        #expect(r.first?.value.number == 60)  // each pulse has 3 rising edges with bounce
        clock.advance(nanoseconds: 1_000_000_000)
        let next = try debounced.read()
        #expect(next.map(\.value.number) == [22, 2])  // total, and pulses since the last read
    }

    /// Hundreds of pulses between two reads all count: the agent asks the kernel for 1,024
    /// events, and beyond that the per-line sequence numbers count what the kernel dropped
    /// (before, the kernel's default of 16 events kept 16 of 1,000 pulses, silently).
    @Test(arguments: [(UInt32(1024), 1_000, 0), (UInt32(1024), 5_000, 3_976), (UInt32(0), 1_000, 984)])
    func everyPulseCountsBetweenReads(buffer: UInt32, pulses: Int, dropped: Int) throws {
        let clock = ManualClock(startNanoseconds: 0)
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", clock: clock)
        chip.script(line: 4, PulseScript(rate: 500))
        let counter = GPIOCounter(line: try chip.requestInput(line: 4, options: GPIOInputOptions(edges: .rising, eventBufferSize: buffer), consumer: "t"), debounceMicroseconds: 0)
        _ = try counter.read()
        clock.advance(nanoseconds: UInt64(pulses) * 2_000_000)
        let m = try counter.read()
        #expect(m.map(\.value.number) == [Double(pulses), Double(pulses)])
        #expect(m[0].metadata["dropped_edges"] == (dropped > 0 ? String(dropped) : nil))
        #expect(counter.dropped == UInt64(dropped))
    }

    @Test func inputState() throws {
        let clock = ManualClock()
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", clock: clock)
        chip.setLevel(line: 5, true)
        let input = GPIOInput(line: try chip.requestInput(line: 5, options: GPIOInputOptions(), consumer: "t"))
        #expect(try input.read().first?.value.number == 1)
        chip.setLevel(line: 5, false)
        #expect(try input.read().first?.value.number == 0)
        chip.setLevel(line: 6, true)
        let inverted = GPIOInput(line: try chip.requestInput(line: 6, options: GPIOInputOptions(activeLow: true), consumer: "t"))
        #expect(try inverted.read().first?.value.number == 0)
    }
}
