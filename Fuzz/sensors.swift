// libFuzzer target: every sensor driver against a bus, a sysfs file or a GPIO line that answers
// with any bytes (a failing chip, another device at the address, noise on a long cable, a kernel
// text the driver did not expect). The first byte picks the driver and its settings; the rest is
// what the hardware answers, in order. Properties: no trap; a read either throws or gives
// measurements whose numbers are finite (a NaN or an infinity would reach TagoIO as a reading).
import EdgeCore

/// The hardware's answers, consumed in order; exhausted, the hardware fails as a bus does.
final class Answers {
    let bytes: [UInt8]
    var at = 1
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= bytes.count - at else { throw HardwareError(device: "fuzz", operation: "read", errno: 121) }
        defer { at += n }
        return Array(bytes[at..<(at + n)])
    }

    func byte() throws -> UInt8 { try take(1)[0] }
}

final class FuzzBus: I2CBus {
    let name = "fuzz:i2c"
    let answers: Answers
    init(_ answers: Answers) { self.answers = answers }

    func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] {
        // One byte says whether the chip acknowledges at all.
        if try answers.byte() == 0xEE { throw HardwareError(device: name, operation: "I2C_RDWR", errno: 121) }
        return try answers.take(count)
    }

    func probe(address: UInt8) -> Bool { (try? answers.byte()).map { $0 & 1 == 1 } ?? false }
}

final class FuzzSysfs: SysfsReader {
    let answers: Answers
    init(_ answers: Answers) { self.answers = answers }

    /// A text: a length byte, then that many bytes (any, not only UTF-8).
    func readText(_ path: String) throws -> String {
        let n = Int(try answers.byte())
        return String(decoding: try answers.take(min(n, answers.bytes.count - answers.at)), as: UTF8.self)
    }

    func list(_ path: String) throws -> [String] {
        let n = Int(try answers.byte() % 4)
        return try (0..<n).map { _ in try readText(path) }
    }
}

final class FuzzLine: GPIOInputLine {
    let name = "fuzz:gpiochip0 line 17"
    let answers: Answers
    init(_ answers: Answers) { self.answers = answers }

    func value() throws -> Bool { try answers.byte() & 1 == 1 }

    /// Edges as the kernel reports them: kind, timestamp (8 bytes), line sequence (4 bytes).
    func edges(timeoutMilliseconds: Int) throws -> [GPIOEdge] {
        let n = Int(try answers.byte() % 32)
        return try (0..<n).map { _ in
            let b = try answers.take(13)
            var t: UInt64 = 0, s: UInt32 = 0
            for i in 0..<8 { t |= UInt64(b[1 + i]) << (8 * i) }
            for i in 0..<4 { s |= UInt32(b[9 + i]) << (8 * i) }
            return GPIOEdge(b[0] & 1 == 1 ? .rising : .falling, at: t, lineSequence: s)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let answers = Answers(Array(UnsafeBufferPointer(start: data, count: size)))
    let pick = answers.bytes[0]
    let clock = ManualClock()
    let driver: SensorDriver
    switch pick % 8 {
    case 0:
        let o = Int(pick >> 3 & 7)
        driver = BME280(bus: FuzzBus(answers), settings: .init(temperatureOversampling: 1, pressureOversampling: o % 6, humidityOversampling: (o + 1) % 6, filter: o % 5), clock: clock)
    case 1: driver = SHT3x(bus: FuzzBus(answers), repeatability: [.low, .medium, .high][Int(pick >> 3) % 3], clock: clock)
    case 2: driver = BH1750(bus: FuzzBus(answers), resolution: BH1750.Resolution.allCases[Int(pick >> 3) % BH1750.Resolution.allCases.count], clock: clock)
    case 3:
        let channels: [ADS1115.Channel] = [.ain0, .ain1, .ain3, .ain0_ain1]
        driver = ADS1115(bus: FuzzBus(answers), channels: Array(channels.prefix(Int(pick >> 3) % 4 + 1)),
                         gain: ADS1115.Gain.allCases[Int(pick >> 5) % ADS1115.Gain.allCases.count], clock: clock)
    case 4: driver = DS18B20(sysfs: FuzzSysfs(answers), id: pick & 8 == 0 ? nil : "28-0316a2792aff")
    case 5: driver = BoardTemperature(sysfs: FuzzSysfs(answers), zone: Int(pick >> 3))
    case 6: driver = GPIOInput(line: FuzzLine(answers))
    default: driver = GPIOCounter(line: FuzzLine(answers), debounceMicroseconds: UInt64(pick >> 3) * 100)
    }
    // Several rounds: drivers keep state between reads (calibration, counters).
    for _ in 0..<4 {
        guard let ms = try? driver.read() else { continue }
        for m in ms {
            if case .number(let v) = m.value, !v.isFinite { fatalError("\(driver.driver) \(m.quantity) = \(v)") }
        }
    }
    return 0
}
