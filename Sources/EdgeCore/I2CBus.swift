/// An I2C bus: the Linux i2c-dev adapter or the simulated bus. Every failure throws
/// `HardwareError` (a missing acknowledge included); nothing returns a silent zero.
///
/// Implementations serialise their own transfers, so one bus may be shared by several drivers
/// used from one thread at a time.
public protocol I2CBus: AnyObject {
    /// The bus as users name it: `/dev/i2c-1`, or `sim:i2c-1`.
    var name: String { get }

    /// Writes `bytes` then, after a repeated start, reads `count` bytes, as one combined transfer.
    /// `count` may be 0 (a plain write); `bytes` may be empty (a plain read).
    func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8]

    /// Whether a device acknowledges at `address` (the probe `i2cdetect` makes).
    func probe(address: UInt8) -> Bool
}

extension I2CBus {
    /// Writes bytes to the device (command, or register followed by data).
    public func write(address: UInt8, _ bytes: [UInt8]) throws {
        _ = try transfer(address: address, write: bytes, readCount: 0)
    }

    /// Reads `count` bytes without first writing anything.
    public func read(address: UInt8, count: Int) throws -> [UInt8] {
        try transfer(address: address, write: [], readCount: count)
    }

    /// Reads `count` bytes starting at `register` (register pointer write, repeated start, read).
    public func readRegisters(address: UInt8, register: UInt8, count: Int) throws -> [UInt8] {
        try transfer(address: address, write: [register], readCount: count)
    }

    /// Reads one byte at `register`.
    public func readRegister(address: UInt8, register: UInt8) throws -> UInt8 {
        try readRegisters(address: address, register: register, count: 1)[0]
    }

    /// Writes one byte to `register`.
    public func writeRegister(address: UInt8, register: UInt8, value: UInt8) throws {
        try write(address: address, [register, value])
    }
}

/// Formats an I2C address as users see it in datasheets and i2cdetect: `0x76`.
public func hexAddress(_ address: UInt8) -> String {
    let digits = String(address, radix: 16)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}
