#if canImport(Glibc)
import Glibc
#endif
import CLinuxHAL
import EdgeCore

/// An I2C adapter through Linux i2c-dev (`/dev/i2c-N`).
///
/// Combined transfers use `I2C_RDWR` (a repeated start between the register write and the read).
/// Adapters without plain I2C (`I2C_FUNC_I2C` missing: i2c-stub, many SMBus controllers) get the
/// same transfers as SMBus ones where SMBus has them: a probe is a quick write or a byte read, a
/// register read a byte-data or I2C-block read (32 bytes at a time), a register write a
/// byte-data or I2C-block write. A transfer SMBus cannot express (a read without a register, a
/// command of two bytes followed by a read, as the SHT3x needs) is refused with EOPNOTSUPP and
/// says so. (Before, such adapters got write(2)/read(2), which i2c-stub refuses, and a probe that
/// sent nothing at all: every address "answered".)
/// `I2C_SLAVE_FORCE` is used only when `force` is set (it takes an address a kernel driver holds).
/// Not thread safe: use one bus from one thread at a time. Owns its descriptor, closed on deinit.
public final class LinuxI2CBus: I2CBus {
    public let name: String
    public let functionality: UInt64
    private let fd: Int32
    private let force: Bool
    private let number: Int
    private let sysfsRoot: String
    /// Addresses checked for a kernel driver (I2C_RDWR does not check, as I2C_SLAVE does).
    private var checked: Set<UInt8> = []

    /// Opens `/dev/i2c-<number>` (or `path` if given) and queries `I2C_FUNCS`.
    public init(number: Int, path: String? = nil, force: Bool = false, sysfsRoot: String = "") throws {
        let device = path ?? "/dev/i2c-\(number)"
        name = device
        self.force = force
        self.number = number
        self.sysfsRoot = sysfsRoot
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
            // I2C_SLAVE refuses an address a kernel driver holds (EBUSY); I2C_RDWR does not, and
            // the agent would talk to the chip behind the driver's back. Check sysfs, once.
            if !force, !checked.contains(address) {
                if let driver = Self.kernelDriver(bus: number, address: address, sysfsRoot: sysfsRoot) {
                    throw HardwareError(device: name, operation: "I2C_RDWR to \(hexAddress(address))", errno: EBUSY_VALUE,
                                        detail: "the kernel driver '\(driver)' owns this address; unbind it (echo \(number)-00\(String(format2: address)) > /sys/bus/i2c/drivers/\(driver)/unbind) or set force = true")
                }
                checked.insert(address)
            }
            let rc = bytes.withUnsafeBufferPointer { w in
                input.withUnsafeMutableBufferPointer { r in
                    tehal_i2c_write_read(fd, UInt16(address), w.baseAddress, UInt16(w.count), r.baseAddress, UInt16(r.count))
                }
            }
            guard rc == 0 else { throw HardwareError(device: name, operation: "I2C_RDWR to \(hexAddress(address))", errno: -rc) }
            return input
        }
        try select(address)
        return try smbusTransfer(address: address, write: bytes, readCount: count)
    }

    private func select(_ address: UInt8) throws {
        let arc = tehal_i2c_set_address(fd, UInt16(address), force ? 1 : 0)
        guard arc == 0 else {
            throw HardwareError(device: name, operation: "\(force ? "I2C_SLAVE_FORCE" : "I2C_SLAVE") \(hexAddress(address))", errno: -arc,
                                detail: arc == -EBUSY_VALUE ? "a kernel driver owns this address; set force = true to override" : nil)
        }
    }

    private func has(_ bit: UInt64) -> Bool { functionality & bit != 0 }

    /// One SMBus transfer; `data` in and out.
    private func smbus(_ address: UInt8, read: Bool, command: UInt8, size: Int32, data: inout [UInt8], what: String) throws {
        var length = UInt8(clamping: data.count)
        if data.isEmpty { data = [0] }
        let rc = data.withUnsafeMutableBufferPointer { tehal_i2c_smbus(fd, read ? 1 : 0, command, size, $0.baseAddress, &length) }
        guard rc == 0 else { throw HardwareError(device: name, operation: "SMBus \(what) at \(hexAddress(address))", errno: -rc) }
        if size == Int32(TEHAL_SMBUS_I2C_BLOCK) { data = Array(data.prefix(Int(length))) }
    }

    private func smbusTransfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] {
        func unsupported(_ what: String) -> HardwareError {
            HardwareError(device: name, operation: "\(what) at \(hexAddress(address))", errno: EOPNOTSUPP_VALUE,
                          detail: "this adapter offers SMBus transfers only (no I2C_FUNC_I2C), and SMBus has no such transfer")
        }
        switch (bytes.count, count) {
        case (0, 0):
            var none: [UInt8] = []
            try smbus(address, read: false, command: 0, size: Int32(TEHAL_SMBUS_QUICK), data: &none, what: "quick write")
            return []
        case (0, 1):
            var one: [UInt8] = [0]
            try smbus(address, read: true, command: 0, size: Int32(TEHAL_SMBUS_BYTE), data: &one, what: "read byte")
            return one
        case (1, 0):
            var none: [UInt8] = []
            try smbus(address, read: false, command: bytes[0], size: Int32(TEHAL_SMBUS_BYTE), data: &none, what: "write byte")
            return []
        case (1, _) where count > 0:
            // A register read: 32 bytes at a time as I2C block reads, or byte by byte.
            var out: [UInt8] = []
            while out.count < count {
                let register = bytes[0] &+ UInt8(truncatingIfNeeded: out.count)
                let chunk = min(32, count - out.count)
                if chunk > 1, has(TEHAL_I2C_FUNC_SMBUS_READ_I2C_BLOCK) {
                    var data = [UInt8](repeating: 0, count: chunk)
                    try smbus(address, read: true, command: register, size: Int32(TEHAL_SMBUS_I2C_BLOCK), data: &data, what: "read I2C block \(hexAddress(register))")
                    guard data.count == chunk else { throw HardwareError(device: name, operation: "SMBus read I2C block at \(hexAddress(address))", errno: EIO_VALUE, detail: "\(data.count) of \(chunk) bytes") }
                    out += data
                } else if has(TEHAL_I2C_FUNC_SMBUS_READ_BYTE_DATA) {
                    var one: [UInt8] = [0]
                    try smbus(address, read: true, command: register, size: Int32(TEHAL_SMBUS_BYTE_DATA), data: &one, what: "read byte data \(hexAddress(register))")
                    out += one
                } else {
                    throw unsupported("register read")
                }
            }
            return out
        case (let n, 0) where n >= 2:
            // A register write: the first byte is the register.
            if n == 2, has(TEHAL_I2C_FUNC_SMBUS_WRITE_BYTE_DATA) {
                var one = [bytes[1]]
                try smbus(address, read: false, command: bytes[0], size: Int32(TEHAL_SMBUS_BYTE_DATA), data: &one, what: "write byte data \(hexAddress(bytes[0]))")
                return []
            }
            guard n <= 33, has(TEHAL_I2C_FUNC_SMBUS_WRITE_I2C_BLOCK) else { throw unsupported("write of \(n) bytes") }
            var data = Array(bytes.dropFirst())
            try smbus(address, read: false, command: bytes[0], size: Int32(TEHAL_SMBUS_I2C_BLOCK), data: &data, what: "write I2C block \(hexAddress(bytes[0]))")
            return []
        default:
            throw unsupported("a write of \(bytes.count) bytes then a read of \(count)")
        }
    }

    /// The kernel driver bound to `address` on bus `bus` (`/sys/bus/i2c/devices/N-00AA/driver`),
    /// or nil when none is.
    public static func kernelDriver(bus: Int, address: UInt8, sysfsRoot: String = "") -> String? {
        let link = "\(sysfsRoot)/sys/bus/i2c/devices/\(bus)-00\(String(format2: address))/driver"
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink(link, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    /// Probes like i2cdetect: a quick write, except a one-byte read in the ranges where a quick
    /// write could upset EEPROMs and some sensors (0x30–0x37, 0x50–0x5F), and where the adapter
    /// has no quick command.
    public func probe(address: UInt8) -> Bool {
        var readProbe = (0x30...0x37).contains(address) || (0x50...0x5F).contains(address)
        if !supportsCombined && !has(TEHAL_I2C_FUNC_SMBUS_QUICK) { readProbe = true }
        return (try? transfer(address: address, write: [], readCount: readProbe ? 1 : 0)) != nil
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
