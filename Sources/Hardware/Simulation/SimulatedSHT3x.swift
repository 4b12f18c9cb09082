import EdgeCore

/// A Sensirion SHT3x at command level: single-shot measurements (with and without clock
/// stretching, three repeatabilities), soft reset, status register, and a CRC-8 after every word.
/// Without clock stretching, a read before the measurement is done is not acknowledged, as on the chip.
public final class SimulatedSHT3x: SimulatedI2CDevice {
    private let clock: MonotonicClock
    private let faults: FaultPlan
    private let temperature: SignalGenerator
    private let humidity: SignalGenerator
    private var output: (readyAt: UInt64, bytes: [UInt8])?
    private var status: UInt16 = 0x8010  // alert pending, reset detected (after power-up)
    private var crcCount = 0
    public private(set) var measurements = 0

    public init(signal: SignalSpec, faults: FaultPlan = .none, clock: MonotonicClock) {
        self.clock = clock
        self.faults = faults
        temperature = SignalGenerator(signal, model: .temperature, salt: 11)
        humidity = SignalGenerator(signal, model: .humidity, salt: 12)
    }

    private func word(_ value: UInt16) -> [UInt8] {
        let bytes = [UInt8(value >> 8), UInt8(value & 0xFF)]
        crcCount += 1
        var crc = Checksum.sensirionCRC8(bytes)
        if faults.corruptsCRC(crcCount) { crc ^= 0x5A }
        return bytes + [crc]
    }

    public func receive(_ bytes: [UInt8]) -> Bool {
        if bytes.isEmpty { return true }
        guard bytes.count == 2 else { return false }
        let command = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let now = clock.nanoseconds()
        switch command {
        case 0x2400, 0x240B, 0x2416, 0x2C06, 0x2C0D, 0x2C10:
            // Maximum measurement durations (datasheet table 4): high 15.5, medium 6.5, low 4.5 ms.
            let micros: UInt64 = [0x2400, 0x2C06].contains(command) ? 15_500 : [0x240B, 0x2C0D].contains(command) ? 6_500 : 4_500
            let stretching = command >> 8 == 0x2C
            measurements += 1
            let seconds = Double(now) / 1e9
            let t = temperature.next(atSeconds: seconds), h = humidity.next(atSeconds: seconds)
            let rawT = UInt16(min(max(((t + 45) / 175 * 65535).rounded(), 0), 65535))
            let rawH = UInt16(min(max((h / 100 * 65535).rounded(), 0), 65535))
            output = (stretching ? now : now + micros * 1000, word(rawT) + word(rawH))
        case 0x30A2:  // soft reset
            output = nil
            status = 0x0010
        case 0xF32D:  // read status
            output = (now, word(status))
        case 0x3041:  // clear status
            status = 0
        case 0x306D, 0x3066:  // heater on / off
            status = command == 0x306D ? status | 0x2000 : status & ~0x2000
        default:
            return false
        }
        return true
    }

    public func respond(count: Int) -> [UInt8]? {
        guard let out = output, !faults.stuckBusy, clock.nanoseconds() >= out.readyAt, count <= out.bytes.count else { return nil }
        output = nil
        return Array(out.bytes.prefix(count))
    }
}
