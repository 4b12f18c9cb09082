import EdgeCore

/// A Bosch BME280 at register level: chip id 0x60 at 0xD0, trimming parameters, soft reset
/// (0xB6 to 0xE0), ctrl_hum latched by a ctrl_meas write, forced and normal mode, the status
/// busy bit for the datasheet's measurement time, and data registers updated only when a
/// conversion completes.
public final class SimulatedBME280: RegisterMapDevice {
    public static let chipID: UInt8 = 0x60
    private let clock: MonotonicClock
    private let faults: FaultPlan
    private let signals: (temperature: SignalGenerator, pressure: SignalGenerator, humidity: SignalGenerator)?
    private let resetImage: [UInt8]
    private var latchedHumidityOversampling: UInt8 = 0
    private var pending: (readyAt: UInt64, data: [UInt8])?
    /// Conversions started (forced-mode triggers and normal-mode samples).
    public private(set) var conversions = 0

    /// - Parameters:
    ///   - registers: a 256-byte image to start from (an i2cdump capture); nil for the defaults
    ///     (trimming parameters of a real chip, see hardware/dumps/README.md).
    ///   - signal: what the measured values do; nil keeps the data registers as captured.
    public init(registers: [UInt8]? = nil, signal: SignalSpec?, faults: FaultPlan = .none, clock: MonotonicClock) {
        var image = registers ?? SimulatedBME280.defaultImage
        image[0xD0] = SimulatedBME280.chipID
        resetImage = image
        self.clock = clock
        self.faults = faults
        signals = signal.map {
            (SignalGenerator($0, model: .temperature, salt: 1), SignalGenerator($0, model: .pressure, salt: 2),
             SignalGenerator($0, model: .humidity, salt: 3))
        }
        super.init(registers: image)
    }

    /// A real chip's trimming parameters (published on Bosch Sensortec's community forum, 2019)
    /// with registers at their reset values.
    public static let defaultImage: [UInt8] = {
        var r = [UInt8](repeating: 0, count: 256)
        let trimming: [UInt8] = [0x6C, 0x6E, 0x77, 0x66, 0x32, 0x00, 0xA8, 0x92, 0x27, 0xD5, 0xD0, 0x0B,
                                 0x6F, 0x18, 0xCA, 0xFF, 0xF9, 0xFF, 0xAC, 0x26, 0x0A, 0xD8, 0xBD, 0x10]
        for (i, b) in trimming.enumerated() { r[0x88 + i] = b }
        r[0xA1] = 0x4B
        for (i, b) in [0x65, 0x01, 0x00, 0x14, 0x0B, 0x00, 0x1E].enumerated() { r[0xE1 + i] = UInt8(b) }
        r[0xD0] = chipID
        for a in 0xF7...0xFC { r[a] = a == 0xF7 || a == 0xFA ? 0x80 : 0 }  // "skipped" values
        r[0xFD] = 0x80
        return r
    }()

    private func settle() {
        guard let p = pending, !faults.stuckBusy, clock.nanoseconds() >= p.readyAt else { return }
        for (i, b) in p.data.enumerated() { registers[0xF7 + i] = b }
        pending = nil
        if registers[0xF4] & 0x03 != 0x03 { registers[0xF4] &= ~0x03 }  // forced mode returns to sleep
    }

    public override func receive(_ bytes: [UInt8]) -> Bool {
        settle()
        guard let first = bytes.first else { return true }
        pointer = first
        // BME280 writes are register/value pairs.
        var i = 0
        while i + 1 < bytes.count {
            writeRegister(bytes[i], bytes[i + 1])
            i += 2
        }
        return true
    }

    public override func respond(count: Int) -> [UInt8]? {
        settle()
        if registers[0xF4] & 0x03 == 0x03, pending == nil, pointer == 0xF7 { startConversion() }
        return super.respond(count: count)
    }

    public override func readRegister(_ register: UInt8) -> UInt8 {
        if register == 0xF3 {
            let measuring: UInt8 = pending != nil || faults.stuckBusy ? 0x08 : 0
            return measuring
        }
        return registers[Int(register)]
    }

    public override func writeRegister(_ register: UInt8, _ value: UInt8) {
        switch register {
        case 0xE0:
            if value == 0xB6 {
                registers = resetImage
                for a in [0xF2, 0xF4, 0xF5] { registers[a] = 0 }
                pending = nil
                latchedHumidityOversampling = 0
            }
        case 0xF2:
            registers[0xF2] = value & 0x07
        case 0xF4:
            registers[0xF4] = value
            latchedHumidityOversampling = registers[0xF2] & 0x07
            if value & 0x03 != 0 { startConversion() }
        case 0xF5:
            registers[0xF5] = value & 0xFD
        case 0x88...0xA1, 0xD0, 0xE1...0xF0, 0xF3, 0xF7...0xFE:
            break  // read-only
        default:
            break
        }
    }

    private static func oversampling(_ code: UInt8) -> Double {
        code == 0 ? 0 : Double(1 << min(Int(code) - 1, 4))
    }

    /// Datasheet section 9.1: maximum measurement time.
    private func measurementMicroseconds() -> UInt64 {
        let osT = Self.oversampling(registers[0xF4] >> 5), osP = Self.oversampling(registers[0xF4] >> 2 & 0x07)
        let osH = Self.oversampling(latchedHumidityOversampling)
        let ms = 1.25 + 2.3 * osT + (osP > 0 ? 2.3 * osP + 0.575 : 0) + (osH > 0 ? 2.3 * osH + 0.575 : 0)
        return UInt64(ms * 1000)
    }

    private func startConversion() {
        conversions += 1
        var data = Array(registers[0xF7...0xFE])
        if let s = signals {
            let seconds = Double(clock.nanoseconds()) / 1e9
            let comp = BME280IntegerCompensation(registers: registers)
            let rawT = comp.rawTemperature(for: s.temperature.next(atSeconds: seconds))
            let tFine = comp.temperature(adc: rawT).tFine
            let rawP = comp.rawPressure(for: s.pressure.next(atSeconds: seconds), tFine: tFine)
            let rawH = comp.rawHumidity(for: s.humidity.next(atSeconds: seconds), tFine: tFine)
            let skipT = registers[0xF4] >> 5 == 0, skipP = registers[0xF4] >> 2 & 0x07 == 0, skipH = latchedHumidityOversampling == 0
            let t = skipT ? 0x80000 : rawT, p = skipP ? 0x80000 : rawP, h = skipH ? 0x8000 : rawH
            data = [UInt8(p >> 12 & 0xFF), UInt8(p >> 4 & 0xFF), UInt8(p << 4 & 0xF0),
                    UInt8(t >> 12 & 0xFF), UInt8(t >> 4 & 0xFF), UInt8(t << 4 & 0xF0),
                    UInt8(h >> 8 & 0xFF), UInt8(h & 0xFF)]
        }
        pending = (clock.nanoseconds() + measurementMicroseconds() * 1000, data)
    }
}
