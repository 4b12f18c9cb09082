import CChecksum
import EdgeCore

/// CRC-32C of the frame bytes: the CPU's instruction where it has one (the same function as
/// `Checksum.crc32c`, which the tests hold it to).
@inline(__always)
func crc32c(_ b: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    te_crc32c(seed, b.baseAddress, b.count)
}

/// The spool file format, version 1.
///
/// ```
/// 0      header slot A (512 bytes)    two slots written alternately, each with a generation and a
/// 512    header slot B (512 bytes)    CRC-32C; the valid one with the higher generation wins
/// 1024   reserved
/// 4096   data region, a ring up to the file's end:
///          record  = u32 marker<<24 | payload length, u32 CRC-32C, u64 sequence number, payload,
///                    zero padding to 8 bytes
///          padding = zero bytes up to the next 512-byte boundary (written at each sync point)
///          wrap    = u32 0x5A5A5A5A: the ring continues at 4096
/// ```
/// The CRC covers the first word, the sequence number and the payload. Records never straddle
/// the end of the file. The header holds hints (acknowledged-through, first live and next
/// sequence numbers, counters); recovery re-derives the ring by scanning the records.
enum SpoolFormat {
    static let magic: [UInt8] = Array("TGESPOOL".utf8)
    static let version: UInt32 = 1
    static let slotSize = 512
    static let dataStart: Int64 = 4096
    static let sector: Int64 = 512
    static let frameHeader = 16
    static let recordMarker: UInt32 = 0xA5
    static let wrapMarker: UInt32 = 0x5A5A_5A5A
    static let maxPayload = 65_535
    /// Sequence numbers and counters are below 2^62 (an append a microsecond would take 146,000
    /// years to get there): a record or header holding more is damaged, so arithmetic on the
    /// numbers a file holds cannot overflow.
    static let numberLimit: UInt64 = 1 << 62

    @inline(__always) static func frameSize(_ payload: Int) -> Int64 { Int64((frameHeader + payload + 7) & ~7) }

    /// A record's frame: header then payload, padded to 8 bytes, appended to `out`.
    static func appendFrame(seq: UInt64, payload: [UInt8], to out: inout [UInt8]) {
        let start = out.count
        let size = Int(frameSize(payload.count))
        out.append(contentsOf: repeatElement(0, count: size))
        out.withUnsafeMutableBytes { raw in
            let frame = UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + size)])
            frame.storeBytes(of: (recordMarker << 24 | UInt32(payload.count)).littleEndian, toByteOffset: 0, as: UInt32.self)
            frame.storeBytes(of: seq.littleEndian, toByteOffset: 8, as: UInt64.self)
            payload.withUnsafeBytes { p in
                if let base = p.baseAddress { (frame.baseAddress! + frameHeader).copyMemory(from: base, byteCount: p.count) }
            }
            // The CRC covers the first word, then the sequence number and payload (contiguous).
            var crc = crc32c(UnsafeRawBufferPointer(rebasing: frame[0..<4]))
            crc = crc32c(UnsafeRawBufferPointer(rebasing: frame[8..<(frameHeader + payload.count)]), seed: crc)
            frame.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    /// Checks a frame at `p` in `b`; returns (seq, payload length) when valid.
    @inline(__always)
    static func validFrame(_ b: UnsafeRawBufferPointer, at p: Int) -> (seq: UInt64, length: Int)? {
        guard p + frameHeader <= b.count else { return nil }
        let word0 = b.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian
        guard word0 >> 24 == recordMarker else { return nil }
        let length = Int(word0 & 0xFF_FFFF)
        guard length <= maxPayload, p + frameHeader + length <= b.count else { return nil }
        let stored = b.loadUnaligned(fromByteOffset: p + 4, as: UInt32.self).littleEndian
        guard te_crc32c_frame(b.baseAddress! + p, frameHeader + length) == stored else { return nil }
        let seq = b.loadUnaligned(fromByteOffset: p + 8, as: UInt64.self).littleEndian
        guard seq > 0, seq < numberLimit else { return nil }
        return (seq, length)
    }

    struct Header: Equatable {
        var capacity: Int64
        var generation: UInt64 = 0
        var ackedThrough: UInt64 = 0
        var tailSeq: UInt64 = 1
        var nextSeq: UInt64 = 1
        var dropped: UInt64 = 0
        var damaged: UInt64 = 0

        func encoded() -> [UInt8] {
            var out = SpoolFormat.magic
            out.appendLE(SpoolFormat.version)
            out.appendLE(UInt32(0))
            out.appendLE(UInt64(capacity))
            out.appendLE(UInt64(SpoolFormat.dataStart))
            for v in [generation, ackedThrough, tailSeq, nextSeq, dropped, damaged] { out.appendLE(v) }
            out.appendLE(Checksum.crc32c(out))
            out.append(contentsOf: repeatElement(0, count: SpoolFormat.slotSize - out.count))
            return out
        }

        enum Decoded {
            case valid(Header)
            /// Our magic, a known version, but a bad CRC or impossible values.
            case damaged
            /// Our magic with a version this build does not know.
            case futureVersion(UInt32)
            /// Not a spool header at all.
            case foreign
        }

        static func decode(_ b: [UInt8]) -> Decoded {
            guard b.count >= 84, Array(b[0..<8]) == SpoolFormat.magic else { return .foreign }
            let version = b.u32(at: 8)
            guard version == SpoolFormat.version else { return version > SpoolFormat.version ? .futureVersion(version) : .damaged }
            guard Checksum.crc32c(Array(b[0..<80])) == b.u32(at: 80) else { return .damaged }
            let capacity = Int64(bitPattern: b.u64(at: 16))
            guard Int64(bitPattern: b.u64(at: 24)) == SpoolFormat.dataStart, capacity > SpoolFormat.dataStart, capacity % SpoolFormat.sector == 0 else { return .damaged }
            let h = Header(capacity: capacity, generation: b.u64(at: 32), ackedThrough: b.u64(at: 40), tailSeq: b.u64(at: 48),
                           nextSeq: b.u64(at: 56), dropped: b.u64(at: 64), damaged: b.u64(at: 72))
            guard [h.generation, h.ackedThrough, h.tailSeq, h.nextSeq, h.dropped, h.damaged].allSatisfy({ $0 < SpoolFormat.numberLimit }) else { return .damaged }
            return .valid(h)
        }
    }
}
