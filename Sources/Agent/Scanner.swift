import EdgeCore

/// An address that answered a scan, and the chip it most likely is.
public struct ScanResult: Sendable, Equatable {
    public let address: UInt8
    public let chip: String?
}

/// Probes 0x03…0x77 like i2cdetect, then names what answered by reading identification
/// registers where the chip has one (BME280/BMP280 0xD0, SHT3x status with valid CRC, ADS1115
/// threshold registers at their power-on values) and by address where it has none (BH1750).
public func scanBus(_ bus: I2CBus) -> [ScanResult] {
    (UInt8(0x03)...UInt8(0x77)).filter { bus.probe(address: $0) }.map { ScanResult(address: $0, chip: identify(bus, $0)) }
}

func identify(_ bus: I2CBus, _ address: UInt8) -> String? {
    switch address {
    case 0x76, 0x77:
        switch try? bus.readRegister(address: address, register: 0xD0) {
        case 0x60: return "BME280"
        case 0x56, 0x57, 0x58: return "BMP280"
        case 0x61: return "BME680"
        default: return nil
        }
    case 0x44, 0x45:
        guard (try? bus.write(address: address, [0xF3, 0x2D])) != nil,
              let s = try? bus.read(address: address, count: 3), Checksum.sensirionCRC8(s.prefix(2)) == s[2] else { return nil }
        return "SHT3x"
    case 0x48...0x4B:
        guard let lo = try? bus.readRegisters(address: address, register: 0x02, count: 2),
              let hi = try? bus.readRegisters(address: address, register: 0x03, count: 2) else { return nil }
        return lo == [0x80, 0x00] && hi == [0x7F, 0xFF] ? "ADS1115" : "ADS1x15?"
    case 0x23, 0x5C:
        return "BH1750?"
    default:
        return nil
    }
}
