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

extension Checksum {
    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of spool records.
    /// Slicing-by-8: about eight bytes per table round.
    public static func crc32c(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        var p = bytes.baseAddress.map { UnsafeRawPointer($0) }
        var n = bytes.count
        guard var ptr = p else { return seed }
        crc32cTable.withUnsafeBufferPointer { t in
            while n >= 8 {
                let lo = ptr.loadUnaligned(as: UInt32.self).littleEndian ^ crc
                let hi = ptr.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
                // Typed halves: Swift 6.0 (the arm64 compiler) gives up on the one long expression.
                let a: UInt32 = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                let b: UInt32 = t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                let c: UInt32 = t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                let d: UInt32 = t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                crc = a ^ b ^ c ^ d
                ptr += 8
                n -= 8
            }
            while n > 0 {
                crc = t[Int((crc ^ UInt32(ptr.load(as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                ptr += 1
                n -= 1
            }
        }
        p = nil
        return ~crc
    }

    /// CRC-32C of a byte array.
    public static func crc32c(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { crc32c($0, seed: seed) }
    }

    static let crc32cTable: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            table[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 {
                let prev = table[(k - 1) * 256 + i]
                table[k * 256 + i] = table[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return table
    }()
}
