/// A driver for one chip or input. `read()` makes one complete measurement, throwing on any bus
/// failure or implausible answer; it never returns a made-up value.
public protocol SensorDriver: AnyObject {
    /// The driver's config name: `bme280`, `sht3x`, …
    var driver: String { get }
    /// Where it is: `/dev/i2c-1 0x76`, `28-0316a2792aff`, `gpiochip0 line 17`.
    var location: String { get }
    func read() throws -> [Measurement]
    /// Starts a measurement and returns the microseconds before its result can be read, so that a
    /// scheduler can start several chips, wait once, and `finish()` each; nil when this driver
    /// measures in `read()` alone. `read()` is `start()`, the wait, then `finish()`.
    func start() throws -> UInt64?
    /// The result of the measurement `start()` began (after its wait).
    func finish() throws -> [Measurement]
}

extension SensorDriver {
    public func start() throws -> UInt64? { nil }
    public func finish() throws -> [Measurement] { try read() }
}
