import Testing
#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Hardware
@testable import Sensors

/// Writes the seeds of the `sensors` fuzz target (Fuzz/sensors.swift) from the simulated chips: the
/// first byte picks the driver, then each I2C transfer is an acknowledge byte and the chip's answer,
/// each sysfs text a length byte and the text, as the target reads them. Run with
/// TAGOEDGE_WRITE_FUZZ_SEEDS=1 to write them anew; the committed seeds are what the fuzzer starts from.
@Suite struct FuzzSeedWriter {
    final class Recording: I2CBus {
        let inner: I2CBus
        var answers: [UInt8]
        init(_ inner: I2CBus, pick: UInt8) { self.inner = inner; answers = [pick] }
        var name: String { inner.name }
        func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] {
            let got = try inner.transfer(address: address, write: bytes, readCount: count)
            answers.append(0)
            answers += got
            return got
        }
        func probe(address: UInt8) -> Bool { inner.probe(address: address) }
    }

    @Test(.enabled(if: getenv("TAGOEDGE_WRITE_FUZZ_SEEDS") != nil)) func writeSeeds() throws {
        let dir = repositoryRoot + "/Fuzz/corpus/sensors"
        let clock = ManualClock()
        func record(_ name: String, pick: UInt8, _ chip: SimulatedI2CDevice, at address: UInt8, _ make: (I2CBus) -> SensorDriver) throws {
            let bus = Recording(simulatedBus(chip, at: address), pick: pick)
            let driver = make(bus)
            for _ in 0..<2 { _ = try driver.read() }
            #expect(writeFileAtomically(dir + "/" + name, bus.answers, mode: 0o644))
        }
        try record("bme280", pick: 0 | 1 << 3, SimulatedBME280(registers: nil, signal: SignalSpec(.constant), clock: clock), at: 0x76) {
            BME280(bus: $0, settings: .init(), clock: clock)
        }
        try record("sht3x", pick: 1, SimulatedSHT3x(signal: SignalSpec(.constant), clock: clock), at: 0x44) { SHT3x(bus: $0, clock: clock) }
        try record("bh1750", pick: 2, SimulatedBH1750(signal: SignalSpec(.constant), clock: clock), at: 0x23) { BH1750(bus: $0, clock: clock) }
        try record("ads1115", pick: 3 | 3 << 3 | 1 << 5, SimulatedADS1115(signal: SignalSpec(.constant), clock: clock), at: 0x48) {
            ADS1115(bus: $0, channels: [.ain0, .ain1, .ain3, .ain0_ain1], gain: .fs4_096, clock: clock)
        }
        func texts(_ pick: UInt8, _ texts: [String]) -> [UInt8] {
            var out: [UInt8] = [pick]
            for text in texts {
                let bytes = Array(text.utf8.prefix(255))
                out.append(UInt8(bytes.count))
                out.append(contentsOf: bytes)
            }
            return out
        }
        let w1 = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
        #expect(writeFileAtomically(dir + "/ds18b20", texts(4 | 8, [w1, w1, w1, w1]), mode: 0o644))
        var listed: [UInt8] = [4, 1]  // the driver lists the devices: one, then its text
        listed.append(contentsOf: texts(0, ["28-0316a2792aff", w1]).dropFirst())
        #expect(writeFileAtomically(dir + "/ds18b20-listed", listed, mode: 0o644))
        #expect(writeFileAtomically(dir + "/board", texts(5, ["48312\n", "48312\n", "-1200\n", "48312\n"]), mode: 0o644))
        var edges: [UInt8] = [7 | 2 << 3, 3]
        for i in 0..<3 {
            // A rising edge every second: kind, timestamp (8 bytes, little-endian), line sequence.
            let nanoseconds = UInt64(i + 1) * 1_000_000_000
            let stamp: [UInt8] = (0..<8).map { (shift: Int) -> UInt8 in UInt8(truncatingIfNeeded: nanoseconds >> UInt64(8 * shift)) }
            edges.append(1)
            edges.append(contentsOf: stamp)
            edges.append(contentsOf: [UInt8(i + 1), 0, 0, 0])
        }
        #expect(writeFileAtomically(dir + "/gpio-counter", edges, mode: 0o644))
        #expect(writeFileAtomically(dir + "/gpio-input", [6, 1, 0, 1, 1], mode: 0o644))
    }
}
