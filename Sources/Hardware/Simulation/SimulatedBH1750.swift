import EdgeCore

/// A ROHM BH1750 ambient light sensor: one-byte opcodes (power, reset, continuous and one-time
/// modes at H, H2 and L resolution, measurement-time register), 16-bit big-endian results.
public final class SimulatedBH1750: SimulatedI2CDevice {
    private let clock: MonotonicClock
    private let faults: FaultPlan
    private let lux: SignalGenerator
    private var powered = false
    private var mode: UInt8 = 0
    private var mtreg: UInt8 = 69
    private var result: UInt16 = 0
    private var pendingUntil: UInt64?
    public private(set) var measurements = 0

    public init(signal: SignalSpec, faults: FaultPlan = .none, clock: MonotonicClock) {
        self.clock = clock
        self.faults = faults
        lux = SignalGenerator(signal, model: .illuminance, salt: 21)
    }

    private func measurementNanoseconds() -> UInt64 {
        let base: Double = mode & 0x03 == 0x03 ? 16 : 120  // typical ms at MTreg 69
        return UInt64(base * Double(mtreg) / 69 * 1_000_000)
    }

    private func settle() {
        guard let until = pendingUntil, !faults.stuckBusy, clock.nanoseconds() >= until else { return }
        pendingUntil = nil
        measurements += 1
        let value = lux.next(atSeconds: Double(clock.nanoseconds()) / 1e9)
        var counts = value * 1.2 * Double(mtreg) / 69
        if mode & 0x03 == 0x01 { counts *= 2 }  // H-resolution mode 2: 0.5 lx per count
        result = UInt16(min(max(counts.rounded(), 0), 65535))
        if mode & 0x20 != 0 { powered = false } else { pendingUntil = clock.nanoseconds() + measurementNanoseconds() }
    }

    public func receive(_ bytes: [UInt8]) -> Bool {
        settle()
        guard bytes.count <= 1 else { return false }
        guard let op = bytes.first else { return true }
        switch op {
        case 0x00: powered = false; pendingUntil = nil
        case 0x01: powered = true
        case 0x07: if powered { result = 0 } else { return false }
        case 0x10, 0x11, 0x13, 0x20, 0x21, 0x23:
            powered = true
            mode = op
            pendingUntil = clock.nanoseconds() + measurementNanoseconds()
        case 0x40...0x47: mtreg = (mtreg & 0x1F) | (op & 0x07) << 5
        case 0x60...0x7F: mtreg = (mtreg & 0xE0) | (op & 0x1F)
        default: return false
        }
        return true
    }

    public func respond(count: Int) -> [UInt8]? {
        settle()
        guard count == 2 else { return nil }
        return [UInt8(result >> 8), UInt8(result & 0xFF)]
    }
}
