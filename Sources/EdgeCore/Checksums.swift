/// Checksums used on the wire and on disk.
public enum Checksum {
    /// CRC-8 with polynomial 0x31, initial 0xFF, no reflection: Sensirion's word CRC
    /// (SHT3x datasheet 4.12: 0xBEEF gives 0x92).
    public static func sensirionCRC8<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        var crc: UInt8 = 0xFF
        for byte in bytes {
            crc ^= byte
            for _ in 0..<8 { crc = crc & 0x80 != 0 ? (crc << 1) ^ 0x31 : crc << 1 }
        }
        return crc
    }

    /// Dallas/Maxim 1-Wire CRC-8 (polynomial x^8+x^5+x^4+1, reflected 0x8C, initial 0), as the
    /// DS18B20 appends to its scratchpad and ROM code.
    public static func maximCRC8<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        var crc: UInt8 = 0
        for byte in bytes {
            var b = byte
            for _ in 0..<8 {
                let mix = (crc ^ b) & 1
                crc >>= 1
                if mix != 0 { crc ^= 0x8C }
                b >>= 1
            }
        }
        return crc
    }
}
