import EdgeCore

/// TI ADS1115 16-bit ADC over I2C: one single-shot conversion per configured channel, waiting
/// on the OS bit, volts = code × full scale / 32768.
public final class ADS1115: SensorDriver {
    /// Programmable gain: the full-scale range in volts (datasheet table 8.3.3).
    public enum Gain: Double, Sendable, CaseIterable {
        case fs6_144 = 6.144, fs4_096 = 4.096, fs2_048 = 2.048, fs1_024 = 1.024, fs0_512 = 0.512, fs0_256 = 0.256

        var pga: UInt16 {
            switch self { case .fs6_144: 0; case .fs4_096: 1; case .fs2_048: 2; case .fs1_024: 3; case .fs0_512: 4; case .fs0_256: 5 }
        }
    }

    /// An input: single-ended AIN0…AIN3 against GND, or one of the four differential pairs.
    public enum Channel: String, Sendable, CaseIterable {
        case ain0, ain1, ain2, ain3
        case ain0_ain1 = "ain0-ain1", ain0_ain3 = "ain0-ain3", ain1_ain3 = "ain1-ain3", ain2_ain3 = "ain2-ain3"

        var mux: UInt16 {
            switch self {
            case .ain0_ain1: 0; case .ain0_ain3: 1; case .ain1_ain3: 2; case .ain2_ain3: 3
            case .ain0: 4; case .ain1: 5; case .ain2: 6; case .ain3: 7
            }
        }

        /// The quantity name: a TagoIO variable may not contain '-'.
        public var quantity: String { rawValue.replacingDashes() }
    }

    static let conversionRegister: UInt8 = 0x00
    static let configRegister: UInt8 = 0x01
    static let dataRate128: UInt16 = 0b100   // 128 SPS: 7.8 ms per conversion
    static let comparatorDisabled: UInt16 = 0b11

    public let driver = "ads1115"
    public var location: String { "\(bus.name) \(hexAddress(address))" }
    private let bus: I2CBus
    private let address: UInt8
    private let channels: [Channel]
    private let gain: Gain
    private let clock: MonotonicClock

    public init(bus: I2CBus, address: UInt8 = 0x48, channels: [Channel] = [.ain0], gain: Gain = .fs4_096, clock: MonotonicClock) {
        self.bus = bus
        self.address = address
        self.channels = channels
        self.gain = gain
        self.clock = clock
    }

    /// The config word that starts one single-shot conversion of `channel`.
    func configWord(_ channel: Channel) -> UInt16 {
        1 << 15 | channel.mux << 12 | gain.pga << 9 | 1 << 8 | Self.dataRate128 << 5 | Self.comparatorDisabled
    }

    /// Volts from a conversion code.
    public static func volts(code: Int16, gain: Gain) -> Double { Double(code) * gain.rawValue / 32768 }

    public func read() throws -> [Measurement] {
        if let wait = try start() { clock.sleep(microseconds: wait) }
        return try finish()
    }

    /// Starts the first channel's single-shot conversion; `finish()` reads it, then converts the
    /// other channels one after the other (the chip has one converter).
    public func start() throws -> UInt64? {
        guard let first = channels.first else { return nil }
        try trigger(first)
        return 8_000
    }

    public func finish() throws -> [Measurement] {
        var out: [Measurement] = []
        for (i, channel) in channels.enumerated() {
            if i > 0 {
                try trigger(channel)
                clock.sleep(microseconds: 8_000)
            }
            out.append(try result(channel))
        }
        return out
    }

    private func trigger(_ channel: Channel) throws {
        let config = configWord(channel)
        try bus.write(address: address, [Self.configRegister, UInt8(config >> 8), UInt8(config & 0xFF)])
    }

    /// The conversion once the OS bit says it is done.
    private func result(_ channel: Channel) throws -> Measurement {
        var ready = false
        for _ in 0..<5 {
            let c = try bus.readRegisters(address: address, register: Self.configRegister, count: 2)
            ready = c[0] & 0x80 != 0
            if ready { break }
            clock.sleep(microseconds: 2_000)
        }
        guard ready else {
            throw SensorError(sensor: location, "conversion of \(channel.rawValue) did not finish: OS bit still 0 after 18 ms")
        }
        let d = try bus.readRegisters(address: address, register: Self.conversionRegister, count: 2)
        let code = Int16(bitPattern: UInt16(d[0]) << 8 | UInt16(d[1]))
        // The full-scale codes: the input is at or beyond ±FSR of this gain (or the supply),
        // so the value is a bound, not a measurement: flagged.
        let metadata = code == Int16.max ? ["clipped": "above"] : code == Int16.min ? ["clipped": "below"] : [:]
        return Measurement(channel.quantity, Self.volts(code: code, gain: gain), unit: "V", metadata: metadata)
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
