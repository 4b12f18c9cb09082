import EdgeCore

/// A simulated tree of the kernel's virtual files: DS18B20 sensors under
/// `/sys/bus/w1/devices/28-*/w1_slave` (the w1_therm driver's text, with its `crc=.. YES/NO`
/// line) and thermal zones under `/sys/class/thermal`. Each read makes a new measurement.
public final class SimulatedSysfs: SysfsReader {
    public static let oneWireDevices = "/sys/bus/w1/devices"
    public static let thermal = "/sys/class/thermal"

    private let lock = Lock()
    private let clock: MonotonicClock
    private var files: [String: () throws -> String] = [:]

    public init(clock: MonotonicClock) {
        self.clock = clock
    }

    /// Adds a DS18B20 with ROM id `id` (like `28-0316a2792aff`).
    public func addDS18B20(id: String, signal: SignalSpec, faults: FaultPlan = .none) {
        let generator = SignalGenerator(signal, model: .temperature, salt: UInt64(truncatingIfNeeded: id.stableHash))
        var reads = 0
        let path = "\(Self.oneWireDevices)/\(id)/w1_slave"
        let clock = self.clock
        lock.withLock {
            files[path] = {
                if faults.absent { throw HardwareError(device: path, operation: "open", errno: ENOENT_VALUE) }
                reads += 1
                // What w1_therm (Linux 5.10 and later) gives when the read fails or the CRC does not
                // check, after its retries: an empty file (w1_slave_show returns 0).
                if let limit = faults.nackAfter, reads > limit { return "" }
                if faults.corruptsCRC(reads) { return "" }
                if faults.shorted {
                    // All zeros, and the CRC of zeros is zero: the kernel says YES.
                    let zeros = String(repeating: "00 ", count: 9)
                    return "\(zeros): crc=00 YES\n\(zeros)t=0\n"
                }
                let celsius = faults.powerOnValue ? 85 : generator.next(atSeconds: Double(clock.nanoseconds()) / 1e9)
                return SimulatedSysfs.w1SlaveText(celsius: celsius)
            }
        }
    }

    /// The text w1_therm gives for a 12-bit conversion of `celsius`.
    public static func w1SlaveText(celsius: Double, corruptCRC: Bool = false) -> String {
        let raw = Int16(min(max((celsius * 16).rounded(), -880), 2000))
        let bits = UInt16(bitPattern: raw)
        var scratchpad: [UInt8] = [UInt8(bits & 0xFF), UInt8(bits >> 8), 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10]
        let computed = Checksum.maximCRC8(scratchpad)
        scratchpad.append(corruptCRC ? computed ^ 0x21 : computed)
        let hex = scratchpad.map { b -> String in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
        let crcText = String(computed, radix: 16)
        let verdict = corruptCRC ? "NO" : "YES"
        return "\(hex) : crc=\(crcText.count == 1 ? "0" + crcText : crcText) \(verdict)\n\(hex) t=\(Int(raw) * 1000 / 16)\n"
    }

    /// Adds `/sys/class/thermal/thermal_zone<index>` (type `cpu-thermal`) following `signal`.
    public func addThermalZone(index: Int, signal: SignalSpec, faults: FaultPlan = .none) {
        let generator = SignalGenerator(signal, model: .boardTemperature, salt: 41 + UInt64(index))
        let base = "\(Self.thermal)/thermal_zone\(index)"
        let clock = self.clock
        lock.withLock {
            files[base + "/type"] = { "cpu-thermal\n" }
            files[base + "/temp"] = {
                if faults.absent { throw HardwareError(device: base + "/temp", operation: "open", errno: ENOENT_VALUE) }
                let c = generator.next(atSeconds: Double(clock.nanoseconds()) / 1e9)
                return "\(Int((c * 1000).rounded()))\n"
            }
        }
    }

    /// Adds a file with fixed contents (for tests of parsing).
    public func addFile(_ path: String, contents: String) {
        lock.withLock { files[path] = { contents } }
    }

    public func readText(_ path: String) throws -> String {
        guard let producer = lock.withLock({ files[path] }) else {
            throw HardwareError(device: path, operation: "open", errno: ENOENT_VALUE)
        }
        return try lock.withLock { try producer() }
    }

    public func list(_ path: String) throws -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        let names = lock.withLock {
            Set(files.keys.filter { $0.hasPrefix(prefix) }.compactMap { $0.dropFirst(prefix.count).split(separator: "/").first.map(String.init) })
        }
        guard !names.isEmpty else { throw HardwareError(device: path, operation: "opendir", errno: ENOENT_VALUE) }
        return names.sorted()
    }
}
