import EdgeCore

/// A chip on the simulated bus, answering at the level of bytes on the wire.
public protocol SimulatedI2CDevice: AnyObject {
    /// Handles the bytes of a write message. Returns false to not acknowledge.
    func receive(_ bytes: [UInt8]) -> Bool
    /// Answers a read message of `count` bytes, or nil to not acknowledge.
    func respond(count: Int) -> [UInt8]?
}

/// An I2C bus whose devices are register-level models, so the real drivers run on the bench.
/// Missing acknowledges surface exactly as on Linux: `HardwareError` with `EREMOTEIO`.
/// Thread safe: transfers are serialised.
public final class SimulatedI2CBus: I2CBus {
    public let name: String
    private let lock = Lock()
    private var devices: [UInt8: Attached] = [:]

    private final class Attached {
        let device: SimulatedI2CDevice
        let faults: FaultPlan
        var transactions = 0
        init(_ device: SimulatedI2CDevice, _ faults: FaultPlan) {
            self.device = device
            self.faults = faults
        }
    }

    /// A bus named like `sim:i2c-1`.
    public init(name: String) {
        self.name = name
    }

    /// Puts `device` at `address`, with the bus-level faults of `faults` (absent, nack-after).
    public func attach(_ device: SimulatedI2CDevice, at address: UInt8, faults: FaultPlan = .none) {
        lock.withLock { devices[address] = Attached(device, faults) }
    }

    /// The model at `address`, for tests that inspect it.
    public func device(at address: UInt8) -> SimulatedI2CDevice? {
        lock.withLock { devices[address]?.device }
    }

    public func transfer(address: UInt8, write bytes: [UInt8], readCount count: Int) throws -> [UInt8] {
        try lock.withLock {
            // The error is built only when there is one (formatting it on every transfer showed in profiles).
            func nack() -> HardwareError { HardwareError(device: name, operation: "I2C_RDWR to \(hexAddress(address))", errno: EREMOTEIO_VALUE) }
            guard let slot = devices[address], !slot.faults.absent else { throw nack() }
            slot.transactions += 1
            if let limit = slot.faults.nackAfter, slot.transactions > limit { throw nack() }
            if !bytes.isEmpty || count == 0 {
                guard slot.device.receive(bytes) else { throw nack() }
            }
            guard count > 0 else { return [] }
            guard let answer = slot.device.respond(count: count), answer.count == count else { throw nack() }
            return answer
        }
    }

    public func probe(address: UInt8) -> Bool {
        (try? transfer(address: address, write: [], readCount: 0)) != nil
    }
}

/// A register file with an auto-incrementing pointer, the model most I2C chips follow:
/// a write sets the pointer then writes bytes; a read returns bytes from the pointer on.
open class RegisterMapDevice: SimulatedI2CDevice {
    public var registers: [UInt8]
    public var pointer: UInt8 = 0

    public init(registers: [UInt8] = [UInt8](repeating: 0, count: 256)) {
        self.registers = registers
    }

    open func receive(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return true }
        pointer = first
        for byte in bytes.dropFirst() {
            writeRegister(pointer, byte)
            pointer &+= 1
        }
        return true
    }

    open func respond(count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            out.append(readRegister(pointer))
            pointer &+= 1
        }
        return out
    }

    open func writeRegister(_ register: UInt8, _ value: UInt8) { registers[Int(register)] = value }
    open func readRegister(_ register: UInt8) -> UInt8 { registers[Int(register)] }
}
