import CLinuxHAL
import EdgeCore

/// An I2C adapter through Linux i2c-dev (`/dev/i2c-N`).
///
/// Combined transfers use `I2C_RDWR` (a repeated start between the register write and the read).
/// Adapters without plain-I2C support fall back to `I2C_SLAVE` and separate write(2)/read(2);
/// `I2C_SLAVE_FORCE` is used only when `force` is set (it takes an address a kernel driver holds).
/// Not thread safe: use one bus from one thread at a time. Owns its descriptor, closed on deinit.
public final class LinuxI2CBus: I2CBus {
    public let name: String
    public let functionality: UInt64
    private let fd: Int32
    private let force: Bool

    /// Opens `/dev/i2c-<number>` (or `path` if given) and queries `I2C_FUNCS`.
    public init(number: Int, path: String? = nil, force: Bool = false) throws {
        let device = path ?? "/dev/i2c-\(number)"
        name = device
        self.force = force
        let rc = tehal_open_chardev(device)
        guard rc >= 0 else {
            throw HardwareError(device: device, operation: "open", errno: -rc,
                                detail: rc == -ENOTTY_VALUE ? "the path exists but is not an i2c-dev character device" : nil)
        }
        fd = rc
        var funcs: UInt64 = 0
        let frc = tehal_i2c_funcs(fd, &funcs)
        guard frc == 0 else {
            _ = tehal_close(fd)
            throw HardwareError(device: device, operation: "I2C_FUNCS", errno: -frc)
        }
        functionality = funcs
    }

    deinit { _ = tehal_close(fd) }

    private var supportsCombined: Bool { functionality & TEHAL_I2C_FUNC_I2C != 0 }

    public func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] {
        guard bytes.count <= Int(UInt16.max), count <= Int(UInt16.max) else {
            throw HardwareError(device: name, operation: "I2C transfer to \(hexAddress(address))", errno: EINVAL_VALUE, detail: "message too long")
        }
        var input = [UInt8](repeating: 0, count: count)
        if supportsCombined {
            let rc = bytes.withUnsafeBufferPointer { w in
                input.withUnsafeMutableBufferPointer { r in
                    tehal_i2c_write_read(fd, UInt16(address), w.baseAddress, UInt16(w.count), r.baseAddress, UInt16(r.count))
                }
            }
            guard rc == 0 else { throw HardwareError(device: name, operation: "I2C_RDWR to \(hexAddress(address))", errno: -rc) }
            return input
        }
        let arc = tehal_i2c_set_address(fd, UInt16(address), force ? 1 : 0)
        guard arc == 0 else {
            throw HardwareError(device: name, operation: "\(force ? "I2C_SLAVE_FORCE" : "I2C_SLAVE") \(hexAddress(address))", errno: -arc,
                                detail: arc == -EBUSY_VALUE ? "a kernel driver owns this address; set force = true to override" : nil)
        }
        if !bytes.isEmpty {
            let n = bytes.withUnsafeBufferPointer { tehal_i2c_write(fd, $0.baseAddress, $0.count) }
            guard n == bytes.count else {
                throw HardwareError(device: name, operation: "write to \(hexAddress(address))", errno: n < 0 ? Int32(-n) : EIO_VALUE)
            }
        }
        if count > 0 {
            let n = input.withUnsafeMutableBufferPointer { tehal_i2c_read(fd, $0.baseAddress, $0.count) }
            guard n == count else {
                throw HardwareError(device: name, operation: "read from \(hexAddress(address))", errno: n < 0 ? Int32(-n) : EIO_VALUE)
            }
        }
        return input
    }

    /// Probes like i2cdetect: a quick write, except a one-byte read in the ranges where a quick
    /// write could upset EEPROMs and some sensors (0x30–0x37, 0x50–0x5F).
    public func probe(address: UInt8) -> Bool {
        let readProbe = (0x30...0x37).contains(address) || (0x50...0x5F).contains(address)
        return (try? transfer(address: address, write: [], readCount: readProbe ? 1 : 0)) != nil
    }
}
