/// BME280 register map (Bosch datasheet BST-BME280-DS002, section 5.3), with the datasheet's names.
enum BME280Register {
    static let calibration00: UInt8 = 0x88   // dig_T1 … dig_P9, 24 bytes; 0xA1 is dig_H1
    static let digH1: UInt8 = 0xA1
    static let chipID: UInt8 = 0xD0
    static let reset: UInt8 = 0xE0
    static let calibration26: UInt8 = 0xE1   // dig_H2 … dig_H6, 7 bytes
    static let ctrlHum: UInt8 = 0xF2
    static let status: UInt8 = 0xF3
    static let ctrlMeas: UInt8 = 0xF4
    static let config: UInt8 = 0xF5
    static let pressMSB: UInt8 = 0xF7        // press (3), temp (3), hum (2)

    static let resetCommand: UInt8 = 0xB6
    static let statusMeasuring: UInt8 = 0x08
    static let statusImUpdate: UInt8 = 0x01
    static let modeForced: UInt8 = 0x01

    static let bme280ID: UInt8 = 0x60
    static let bmp280IDs: Set<UInt8> = [0x56, 0x57, 0x58]
}

/// The trimming parameters read from the chip (datasheet table 16).
public struct BME280Calibration: Sendable, Equatable {
    public var t1: Double, t2: Double, t3: Double
    public var p1: Double, p2: Double, p3: Double, p4: Double, p5: Double, p6: Double, p7: Double, p8: Double, p9: Double
    public var h1: Double, h2: Double, h3: Double, h4: Double, h5: Double, h6: Double

    /// From the 26 bytes at 0x88…0xA1 and the 7 bytes at 0xE1…0xE7.
    public init(block1 a: [UInt8], block2 b: [UInt8]) {
        func u16(_ x: [UInt8], _ i: Int) -> Double { Double(UInt16(x[i]) | UInt16(x[i + 1]) << 8) }
        func s16(_ x: [UInt8], _ i: Int) -> Double { Double(Int16(bitPattern: UInt16(x[i]) | UInt16(x[i + 1]) << 8)) }
        t1 = u16(a, 0); t2 = s16(a, 2); t3 = s16(a, 4)
        p1 = u16(a, 6); p2 = s16(a, 8); p3 = s16(a, 10); p4 = s16(a, 12); p5 = s16(a, 14)
        p6 = s16(a, 16); p7 = s16(a, 18); p8 = s16(a, 20); p9 = s16(a, 22)
        h1 = Double(a[25])
        h2 = s16(b, 0)
        h3 = Double(b[2])
        h4 = Double(Int(Int8(bitPattern: b[3])) * 16 | Int(b[4] & 0x0F))
        h5 = Double(Int(Int8(bitPattern: b[5])) * 16 | Int(b[4] >> 4))
        h6 = Double(Int8(bitPattern: b[6]))
    }

    /// A chip whose trimming memory reads as all zeros or all ones is not answering properly.
    var isPlausible: Bool { t1 != 0 && t1 != 65535 && p1 != 0 && p1 != 65535 }
}

/// The datasheet's floating-point compensation formulas (section 8.1).
public enum BME280Compensation {
    /// Temperature in °C and t_fine, from the raw 20-bit value.
    public static func temperature(adc: Int32, _ c: BME280Calibration) -> (celsius: Double, tFine: Int32) {
        let x = Double(adc)
        let var1 = (x / 16384.0 - c.t1 / 1024.0) * c.t2
        let d = x / 131072.0 - c.t1 / 8192.0
        let var2 = d * d * c.t3
        return ((var1 + var2) / 5120.0, Int32(var1 + var2))
    }

    /// Pressure in Pa, or nil where the formula divides by zero.
    public static func pressure(adc: Int32, tFine: Int32, _ c: BME280Calibration) -> Double? {
        var var1 = Double(tFine) / 2.0 - 64000.0
        var var2 = var1 * var1 * c.p6 / 32768.0
        var2 = var2 + var1 * c.p5 * 2.0
        var2 = var2 / 4.0 + c.p4 * 65536.0
        var1 = (c.p3 * var1 * var1 / 524288.0 + c.p2 * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * c.p1
        guard var1 != 0 else { return nil }
        var p = 1048576.0 - Double(adc)
        p = (p - var2 / 4096.0) * 6250.0 / var1
        var1 = c.p9 * p * p / 2147483648.0
        var2 = p * c.p8 / 32768.0
        return p + (var1 + var2 + c.p7) / 16.0
    }

    /// Relative humidity in %, clamped to 0…100 as the datasheet does.
    public static func humidity(adc: Int32, tFine: Int32, _ c: BME280Calibration) -> Double {
        var h = Double(tFine) - 76800.0
        h = (Double(adc) - (c.h4 * 64.0 + c.h5 / 16384.0 * h))
            * (c.h2 / 65536.0 * (1.0 + c.h6 / 67108864.0 * h * (1.0 + c.h3 / 67108864.0 * h)))
        h = h * (1.0 - c.h1 * h / 524288.0)
        return min(max(h, 0), 100)
    }
}
