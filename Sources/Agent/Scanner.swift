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

/// A sensor `scan --propose` found: what it is, where, and the config lines that read it.
public struct ProposedSensor: Sendable, Equatable {
    public var name: String
    public var driver: DriverKind
    /// I2C: the bus number and address; 1-Wire: the device id.
    public var bus: Int?
    public var address: UInt8?
    public var device: String?
    /// What was seen, for the comment (`BME280 at 0x76 on /dev/i2c-1, chip id 0x60`).
    public var seen: String
}

/// The sensors a gateway's buses show: each I2C chip named by its id registers (BME280/BMP280,
/// SHT3x with a valid CRC, ADS1115 by its power-on thresholds, BH1750 by address), each DS18B20
/// in the 1-Wire folder. Names are the bench's (`env`, `climate`, `light`, `adc`, `probe`), numbered
/// when there are more of one kind. `others` lists addresses that answered but are no chip
/// TagoEdge reads.
public func proposeSensors(buses: [(number: Int, bus: I2CBus)], sysfs: SysfsReader) -> (sensors: [ProposedSensor], others: [String]) {
    var found: [ProposedSensor] = []
    var others: [String] = []
    var used: [String: Int] = [:]
    func name(_ base: String) -> String {
        used[base, default: 0] += 1
        return used[base]! == 1 ? base : "\(base)\(used[base]!)"
    }
    for (number, bus) in buses {
        for r in scanBus(bus) {
            let at = "\(hexAddress(r.address)) on \(bus.name)"
            switch r.chip {
            case "BME280", "BMP280":
                found.append(ProposedSensor(name: name("env"), driver: .bme280, bus: number, address: r.address, device: nil, seen: "\(r.chip!) at \(at)"))
            case "SHT3x":
                found.append(ProposedSensor(name: name("climate"), driver: .sht3x, bus: number, address: r.address, device: nil, seen: "SHT3x at \(at)"))
            case "ADS1115":
                found.append(ProposedSensor(name: name("adc"), driver: .ads1115, bus: number, address: r.address, device: nil, seen: "ADS1115 at \(at)"))
            case "BH1750?":
                found.append(ProposedSensor(name: name("light"), driver: .bh1750, bus: number, address: r.address, device: nil,
                                            seen: "BH1750 at \(at) (it has no id register: known by its address)"))
            default:
                others.append("\(at): answered\(r.chip.map { " (\($0))" } ?? ""), not a chip TagoEdge reads")
            }
        }
    }
    for id in (try? sysfs.list("/sys/bus/w1/devices")) ?? [] where id.hasPrefix("28-") {
        found.append(ProposedSensor(name: name("probe"), driver: .ds18b20, bus: nil, address: nil, device: id, seen: "DS18B20 \(id) on 1-Wire"))
    }
    return (found, others)
}

/// A configuration that reads `sensors`, commented, ready for `check-config`. `simulated` adds a
/// `[sensor.simulate]` table to each (a proposal made on the bench's simulated buses).
public func proposedConfig(_ proposal: (sensors: [ProposedSensor], others: [String]), simulated: Bool, source: String) -> String {
    var out = """
    # Proposed by `tagoedge scan --propose` from \(source): one [[sensor]] per chip found.
    # Check it with `tagoedge check-config FILE`; set [device] token before `tagoedge run`.
    [device]
    token = "file:/etc/tagoedge/token"      # the device token, 0600 (or "env:TAGO_DEVICE_TOKEN")

    """
    if proposal.sensors.isEmpty { out += "# No chip answered. Wiring and buses: README.md, \"In the field\"; hardware/wiring/README.md.\n" }
    for s in proposal.sensors {
        let nameLine = "name = \"\(s.name)\""
        out += "\n[[sensor]]\n\(nameLine)\(String(repeating: " ", count: max(1, 40 - nameLine.count)))# \(s.seen)\ndriver = \"\(s.driver.rawValue)\"\n"
        if let bus = s.bus, let address = s.address { out += "bus = \(bus)\naddress = \(hexAddress(address))\n" }
        if let device = s.device { out += "device = \"\(device)\"\n" }
        out += "interval = \"\(s.driver == .ds18b20 ? "30s" : "60s")\"\n"
        if s.driver == .ads1115 { out += "channels = [\"ain0\"]                     # the inputs wired: ain0…ain3, or differential \"ain0-ain1\"\n" }
        if simulated { out += "[sensor.simulate]\nsignal = \"sine\"\n" }
    }
    for o in proposal.others { out += "\n# \(o)" }
    if !proposal.others.isEmpty { out += "\n" }
    out += "\n# GPIO inputs and counters cannot be detected: add them by hand (README.md, \"Configuration reference\").\n"
    return out
}
