import EdgeCore

/// ROHM BH1750FVI ambient light sensor over I2C, in one-time measurement mode (the chip powers
/// down between readings). Lux = counts / 1.2 × (69 / MTreg), halved in H-resolution mode 2.
public final class BH1750: SensorDriver {
    public enum Resolution: String, Sendable, CaseIterable {
        /// 1 lx per count, 120 ms typical.
        case high
        /// 0.5 lx per count, 120 ms typical.
        case high2
        /// 4 lx per count, 16 ms typical.
        case low

        var oneTimeOpcode: UInt8 {
            switch self { case .high: 0x20; case .high2: 0x21; case .low: 0x23 }
        }

        /// Datasheet maximum measurement time at MTreg 69.
        var maximumMicroseconds: UInt64 {
            switch self { case .high, .high2: 180_000; case .low: 24_000 }
        }
    }

    public let driver = "bh1750"
    public var location: String { "\(bus.name) \(hexAddress(address))" }
    private let bus: I2CBus
    private let address: UInt8
    private let resolution: Resolution
    private let clock: MonotonicClock

    public init(bus: I2CBus, address: UInt8 = 0x23, resolution: Resolution = .high, clock: MonotonicClock) {
        self.bus = bus
        self.address = address
        self.resolution = resolution
        self.clock = clock
    }

    /// Lux from the raw counts at the default measurement time (MTreg 69).
    public static func lux(counts: UInt16, resolution: Resolution) -> Double {
        let lux = Double(counts) / 1.2
        return resolution == .high2 ? lux / 2 : lux
    }

    public func read() throws -> [Measurement] {
        if let wait = try start() { clock.sleep(microseconds: wait) }
        return try finish()
    }

    /// Powers on and starts a one-time measurement (the chip powers down after it).
    public func start() throws -> UInt64? {
        try bus.write(address: address, [0x01])  // power on
        try bus.write(address: address, [resolution.oneTimeOpcode])
        return resolution.maximumMicroseconds
    }

    public func finish() throws -> [Measurement] {
        let bytes = try bus.read(address: address, count: 2)
        let counts = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        // 65535 counts: the light is at or beyond the chip's range (54,612 lx in H-resolution
        // mode, half that in H-resolution mode 2): flagged, not reported as a plain value.
        let metadata = counts == UInt16.max ? ["clipped": "above"] : [:]
        return [Measurement("illuminance", Self.lux(counts: counts, resolution: resolution), unit: "lx", metadata: metadata)]
    }
}
