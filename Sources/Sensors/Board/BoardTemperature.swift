import EdgeCore

/// The SoC temperature from the kernel's thermal zone (`/sys/class/thermal/thermal_zoneN/temp`,
/// millidegrees Celsius).
public final class BoardTemperature: SensorDriver {
    public let driver = "board"
    public let location: String
    private let sysfs: SysfsReader

    public init(sysfs: SysfsReader, zone: Int = 0) {
        self.sysfs = sysfs
        location = "/sys/class/thermal/thermal_zone\(zone)/temp"
    }

    public func read() throws -> [Measurement] {
        let text = try sysfs.readText(location)
        let trimmed = text.split(separator: "\n").first.map(String.init) ?? ""
        guard let milli = Int(trimmed) else {
            throw SensorError(sensor: location, "expected millidegrees as an integer, read '\(trimmed.prefix(40))'")
        }
        let celsius = Double(milli) / 1000
        guard (-40.0...150.0).contains(celsius) else {
            throw SensorError(sensor: location, "reads \(celsius) °C, which no running board reaches")
        }
        return [Measurement("temperature", celsius, unit: "°C")]
    }
}
