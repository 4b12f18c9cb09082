#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure talking to hardware (or to its simulation), carrying the errno, the call and the device,
/// so that a log line says what failed and where:
/// `/dev/i2c-1: I2C_RDWR to 0x76 failed: Remote I/O error (no acknowledge)`.
public struct HardwareError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The device or bus: `/dev/i2c-1`, `sim:i2c-1`, `/dev/gpiochip0`, a sysfs path.
    public var device: String
    /// The operation, with its target: `I2C_RDWR to 0x76`, `open`, `GPIO_V2_GET_LINE_IOCTL line 17`.
    public var operation: String
    /// The errno, when the failure came from the kernel (or the simulation of one); 0 otherwise.
    public var errno: Int32
    /// Extra words when there is no errno, or to say more than it does.
    public var detail: String?

    public init(device: String, operation: String, errno: Int32, detail: String? = nil) {
        self.device = device
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(device): \(operation) failed"
        if errno != 0 {
            text += ": \(HardwareError.errnoText(errno))"
            // Hints speak of buses and chips: not for ordinary files (a token, a dump).
            if !device.hasPrefix("/") || device.hasPrefix("/dev/"), let hint = HardwareError.hint(errno) { text += " (\(hint))" }
        }
        if let detail { text += errno != 0 ? "; \(detail)" : ": \(detail)" }
        return text
    }

    /// `strerror` text for an errno.
    public static func errnoText(_ code: Int32) -> String { errnoDescription(code) }

    static func hint(_ code: Int32) -> String? {
        switch code {
        case EREMOTEIO, ENXIO: return "no acknowledge"
        case ENOENT: return "no such device: is the interface enabled?"
        case EACCES, EPERM: return "permission denied: is the user in the i2c/gpio group?"
        case ENOTTY: return "not a character device of this kind"
        case ETIMEDOUT: return "bus timed out"
        case EBUSY: return "in use by another consumer"
        default: return nil
        }
    }
}

/// A failure that is not the bus's: the chip answered, but with something that cannot be right
/// (wrong chip id, bad CRC, a value out of physical range, a busy bit that never clears).
public struct SensorError: Error, Sendable, Equatable, CustomStringConvertible {
    public var sensor: String
    public var message: String

    public init(sensor: String, _ message: String) {
        self.sensor = sensor
        self.message = message
    }

    public var description: String { "\(sensor): \(message)" }
}
