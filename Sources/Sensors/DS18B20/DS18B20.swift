import EdgeCore

/// Maxim DS18B20 1-Wire thermometer through the kernel's w1_therm driver: parses `w1_slave`,
/// checks the scratchpad CRC itself (not only the kernel's YES), and rejects the 85 °C power-on
/// value, which means a conversion did not run (often weak parasite power).
public final class DS18B20: SensorDriver {
    public static let devicesDirectory = "/sys/bus/w1/devices"

    public let driver = "ds18b20"
    public var location: String { id ?? "\(Self.devicesDirectory)/28-*" }
    private let sysfs: SysfsReader
    private var id: String?

    /// `id` is the ROM id directory (`28-0316a2792aff`); nil takes the first DS18B20 found.
    public init(sysfs: SysfsReader, id: String? = nil) {
        self.sysfs = sysfs
        self.id = id
    }

    /// The DS18B20s (family code 0x28) the kernel has found.
    public static func discover(_ sysfs: SysfsReader) throws -> [String] {
        do {
            return try sysfs.list(devicesDirectory).filter { $0.hasPrefix("28-") }
        } catch {
            throw SensorError(sensor: devicesDirectory, "no 1-Wire bus (\(error)); enable it with dtoverlay=w1-gpio in config.txt")
        }
    }

    /// Parses w1_therm's text. Throws `SensorError` naming what is wrong.
    public static func parse(_ text: String, location: String) throws -> Double {
        if text.isEmpty {
            // Linux 5.10 and later: w1_therm returns nothing when its reads failed or the
            // scratchpad's CRC did not check, after its retries.
            throw SensorError(sensor: location, "the kernel read nothing from the sensor (its reads failed or the CRC did not check): a loose wire, noise, or a missing pull-up")
        }
        let lines = text.split(separator: "\n")
        guard lines.count >= 2 else { throw SensorError(sensor: location, "w1_slave has \(lines.count) line(s), expected 2: '\(text.prefix(80))'") }
        let hexFields = lines[0].split(separator: " ").prefix(9)
        let bytes = hexFields.compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 9 else { throw SensorError(sensor: location, "w1_slave's first line does not start with 9 scratchpad bytes: '\(lines[0])'") }
        guard lines[0].hasSuffix("YES") else {
            throw SensorError(sensor: location, "the kernel reports a CRC error on the scratchpad (\(lines[0].split(separator: ":").last.map { $0.trimmingCharacters() } ?? "")): noise or a long cable without a pull-up")
        }
        let crc = Checksum.maximCRC8(bytes.prefix(8))
        guard crc == bytes[8] else {
            throw SensorError(sensor: location, "scratchpad CRC is \(hexByte(bytes[8])), computed \(hexByte(crc))")
        }
        // The configuration register's fixed bits (0-4 read 1, bit 7 reads 0): a data line shorted
        // to ground reads nine zero bytes, whose CRC is zero and checks, and would be 0 °C.
        guard bytes[4] & 0x9F == 0x1F else {
            throw SensorError(sensor: location, "the scratchpad's configuration register reads \(hexByte(bytes[4])) where its fixed bits must read 0x1F: the data line is shorted or held low, or this is not a DS18B20")
        }
        let raw = Int16(bitPattern: UInt16(bytes[1]) << 8 | UInt16(bytes[0]))
        // Resolution from the configuration register: undefined low bits are masked.
        let resolutionBits = Int((bytes[4] >> 5) & 0x03)
        let mask: Int16 = [~0x07, ~0x03, ~0x01, ~0x00][resolutionBits]
        let celsius = Double(raw & mask) / 16
        guard raw != 0x0550 else {
            throw SensorError(sensor: location, "reads 85 °C, the power-on value: no conversion ran (check the supply; parasite power needs a strong pull-up)")
        }
        guard (-55.0...125.0).contains(celsius) else {
            throw SensorError(sensor: location, "reads \(celsius) °C, outside the chip's −55…125 °C range")
        }
        return celsius
    }

    public func read() throws -> [Measurement] {
        if id == nil {
            guard let first = try Self.discover(sysfs).first else {
                throw SensorError(sensor: location, "no DS18B20 (28-*) under \(Self.devicesDirectory): is the w1-gpio overlay enabled?")
            }
            id = first
        }
        let device = id ?? ""
        let text = try sysfs.readText("\(Self.devicesDirectory)/\(device)/w1_slave")
        return [Measurement("temperature", try Self.parse(text, location: device), unit: "°C", metadata: ["rom": device])]
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " || $0 == "\n" }.reversed())
    }
}
