import EdgeCore

/// Sensirion SHT30/31/35 over I2C: single-shot measurements without clock stretching, every
/// 16-bit word checked against its CRC-8. A bad CRC is an error, never a value.
public final class SHT3x: SensorDriver {
    public enum Repeatability: String, Sendable, CaseIterable {
        case high, medium, low

        /// Single shot, clock stretching disabled (datasheet table 9).
        var command: [UInt8] {
            switch self {
            case .high: [0x24, 0x00]
            case .medium: [0x24, 0x0B]
            case .low: [0x24, 0x16]
            }
        }

        /// Maximum measurement duration (datasheet table 4), plus a margin.
        var waitMicroseconds: UInt64 {
            switch self {
            case .high: 16_000
            case .medium: 7_000
            case .low: 5_000
            }
        }
    }

    public let driver = "sht3x"
    public var location: String { "\(bus.name) \(hexAddress(address))" }
    private let bus: I2CBus
    private let address: UInt8
    private let repeatability: Repeatability
    private let clock: MonotonicClock

    public init(bus: I2CBus, address: UInt8 = 0x44, repeatability: Repeatability = .high, clock: MonotonicClock) {
        self.bus = bus
        self.address = address
        self.repeatability = repeatability
        self.clock = clock
    }

    /// Checks the CRC of the word at `offset` in `bytes` (two data bytes then the CRC).
    static func word(_ bytes: [UInt8], at offset: Int, what: String, location: String) throws -> UInt16 {
        let data = bytes[offset..<(offset + 2)]
        let expected = Checksum.sensirionCRC8(data)
        guard expected == bytes[offset + 2] else {
            throw SensorError(sensor: location, "\(what) word failed its CRC check (got \(hexByte(bytes[offset + 2])), computed \(hexByte(expected))): noise on the bus or a loose wire")
        }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    /// Temperature in °C from the raw word (datasheet 4.13).
    public static func celsius(raw: UInt16) -> Double { -45 + 175 * Double(raw) / 65535 }
    /// Relative humidity in % from the raw word.
    public static func relativeHumidity(raw: UInt16) -> Double { 100 * Double(raw) / 65535 }

    public func read() throws -> [Measurement] {
        if let wait = try start() { clock.sleep(microseconds: wait) }
        return try finish()
    }

    /// Sends the single-shot measurement command (no clock stretching).
    public func start() throws -> UInt64? {
        try bus.write(address: address, repeatability.command)
        return repeatability.waitMicroseconds
    }

    public func finish() throws -> [Measurement] {
        var bytes: [UInt8]?
        var lastError: Error?
        // The chip does not acknowledge its address until the result is ready: retry briefly.
        for _ in 0..<3 {
            do {
                bytes = try bus.read(address: address, count: 6)
                break
            } catch {
                lastError = error
                clock.sleep(microseconds: 5_000)
            }
        }
        guard let bytes else { throw lastError ?? SensorError(sensor: location, "no result") }
        let rawT = try Self.word(bytes, at: 0, what: "temperature", location: location)
        let rawH = try Self.word(bytes, at: 3, what: "humidity", location: location)
        return [
            Measurement("temperature", Self.celsius(raw: rawT), unit: "°C"),
            Measurement("humidity", Self.relativeHumidity(raw: rawH), unit: "%"),
        ]
    }
}
