/// A driver for one chip or input. `read()` makes one complete measurement, throwing on any bus
/// failure or implausible answer; it never returns a made-up value.
public protocol SensorDriver: AnyObject {
    /// The driver's config name: `bme280`, `sht3x`, …
    var driver: String { get }
    /// Where it is: `/dev/i2c-1 0x76`, `28-0316a2792aff`, `gpiochip0 line 17`.
    var location: String { get }
    func read() throws -> [Measurement]
}
