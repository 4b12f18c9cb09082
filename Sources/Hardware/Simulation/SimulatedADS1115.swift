import EdgeCore

/// A TI ADS1115 16-bit ADC: conversion, config (OS, MUX, PGA, MODE, DR), threshold registers,
/// single-shot conversions that take 1/DR seconds, and the OS bit reading 0 while converting.
public final class SimulatedADS1115: SimulatedI2CDevice {
    private let clock: MonotonicClock
    private let faults: FaultPlan
    private let inputs: [SignalGenerator]
    private var regs: [UInt16] = [0x0000, 0x8583, 0x8000, 0x7FFF]
    private var pointer = 0
    private var convertingUntil: UInt64?
    private var continuousNext: UInt64?
    public private(set) var conversions = 0

    /// Inputs AIN0…AIN3 rest at 0.5, 1.0, 1.5 and 2.0 V and follow `signal`.
    public init(signal: SignalSpec, faults: FaultPlan = .none, clock: MonotonicClock) {
        self.clock = clock
        self.faults = faults
        inputs = (0..<4).map { SignalGenerator(signal, model: .voltage(0.5 * Double($0 + 1)), salt: 31 + UInt64($0)) }
    }

    static let fullScale: [Double] = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256]
    static let rates: [Double] = [8, 16, 32, 64, 128, 250, 475, 860]

    private func convert() {
        conversions += 1
        let config = regs[1]
        let mux = Int(config >> 12 & 0x07)
        let fs = Self.fullScale[Int(config >> 9 & 0x07)]
        let seconds = Double(clock.nanoseconds()) / 1e9
        var volts = inputs.map { $0.next(atSeconds: seconds) }
        volts = volts.map { min(max($0, 0), 5.5) }
        let v: Double
        switch mux {
        case 0: v = volts[0] - volts[1]
        case 1: v = volts[0] - volts[3]
        case 2: v = volts[1] - volts[3]
        case 3: v = volts[2] - volts[3]
        default: v = volts[mux - 4]
        }
        let code = min(max((v / fs * 32768).rounded(), -32768), 32767)
        regs[0] = UInt16(bitPattern: Int16(code))
    }

    private func conversionNanoseconds() -> UInt64 {
        UInt64(1e9 / Self.rates[Int(regs[1] >> 5 & 0x07)])
    }

    private func settle() {
        let now = clock.nanoseconds()
        if let until = convertingUntil, !faults.stuckBusy, now >= until {
            convertingUntil = nil
            convert()
        }
        if let next = continuousNext, now >= next {
            convert()
            continuousNext = now + conversionNanoseconds()
        }
    }

    public func receive(_ bytes: [UInt8]) -> Bool {
        settle()
        guard let first = bytes.first else { return true }
        guard first <= 3, bytes.count == 1 || bytes.count == 3 else { return false }
        pointer = Int(first)
        if bytes.count == 3 {
            let value = UInt16(bytes[1]) << 8 | UInt16(bytes[2])
            switch pointer {
            case 0: break  // conversion register is read-only
            case 1:
                regs[1] = value & 0x7FFF | (regs[1] & 0x8000)
                if value & 0x0100 != 0 {  // single-shot
                    continuousNext = nil
                    if value & 0x8000 != 0, convertingUntil == nil {
                        regs[1] &= 0x7FFF
                        convertingUntil = clock.nanoseconds() + conversionNanoseconds()
                    }
                } else {
                    continuousNext = clock.nanoseconds() + conversionNanoseconds()
                }
            default: regs[pointer] = value
            }
        }
        return true
    }

    public func respond(count: Int) -> [UInt8]? {
        settle()
        guard count == 2 else { return nil }
        var value = regs[pointer]
        if pointer == 1 {
            value = value & 0x7FFF | (convertingUntil == nil && !faults.stuckBusy ? 0x8000 : 0)
        }
        return [UInt8(value >> 8), UInt8(value & 0xFF)]
    }
}
