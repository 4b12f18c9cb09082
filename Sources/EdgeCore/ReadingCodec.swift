/// The binary form of a `Reading` stored in the spool: compact (about 40 bytes for a typical
/// reading, a third of its JSON), versioned, and checked on decode.
///
/// Layout (little endian): version u8 = 1, flags u8 (1 unit, 2 metadata), value kind u8
/// (0 number, 1 false, 2 true, 3 string), time i64 ms, variable (u16 length + UTF-8),
/// value (f64, or a string as u16 length + UTF-8), unit if flagged, metadata if flagged
/// (u8 count, then key and value strings).
public enum ReadingCodec {
    public static let version: UInt8 = 1

    public static func encode(_ r: Reading) -> [UInt8] {
        var out: [UInt8] = []
        encode(r, into: &out)
        return out
    }

    public static func encode(_ r: Reading, into out: inout [UInt8]) {
        out.reserveCapacity(out.count + 32 + r.variable.utf8.count)
        var flags: UInt8 = 0
        if r.unit != nil { flags |= 1 }
        if !r.metadata.isEmpty { flags |= 2 }
        let kind: UInt8
        switch r.value {
        case .number: kind = 0
        case .bool(let b): kind = b ? 2 : 1
        case .string: kind = 3
        }
        out.append(version)
        out.append(flags)
        out.append(kind)
        appendInteger(UInt64(bitPattern: r.time.millisecondsSince1970), into: &out)
        appendString(r.variable, into: &out)
        switch r.value {
        case .number(let v): appendInteger(v.bitPattern, into: &out)
        case .bool: break
        case .string(let s): appendString(s, into: &out)
        }
        if let unit = r.unit { appendString(unit, into: &out) }
        if !r.metadata.isEmpty {
            let pairs = r.metadata.sorted { $0.key < $1.key }.prefix(255)
            out.append(UInt8(pairs.count))
            for (k, v) in pairs {
                appendString(k, into: &out)
                appendString(v, into: &out)
            }
        }
    }

    /// Decodes a payload; nil if it is not a reading of a known version.
    public static func decode(_ bytes: [UInt8]) -> Reading? {
        bytes.withUnsafeBytes { decode($0) }
    }

    public static func decode(_ b: UnsafeRawBufferPointer) -> Reading? {
        var i = 0
        func byte() -> UInt8? {
            guard i < b.count else { return nil }
            defer { i += 1 }
            return b[i]
        }
        func u64() -> UInt64? {
            guard i + 8 <= b.count else { return nil }
            defer { i += 8 }
            return b.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian
        }
        func string() -> String? {
            guard i + 2 <= b.count else { return nil }
            let n = Int(b.loadUnaligned(fromByteOffset: i, as: UInt16.self).littleEndian)
            i += 2
            guard i + n <= b.count else { return nil }
            defer { i += n }
            return String(decoding: UnsafeRawBufferPointer(rebasing: b[i..<(i + n)]), as: UTF8.self)
        }
        guard byte() == version, let flags = byte(), let kind = byte(), let time = u64(), let variable = string() else { return nil }
        let value: ReadingValue
        switch kind {
        case 0: guard let bits = u64() else { return nil }; value = .number(Double(bitPattern: bits))
        case 1: value = .bool(false)
        case 2: value = .bool(true)
        case 3: guard let s = string() else { return nil }; value = .string(s)
        default: return nil
        }
        var unit: String?
        if flags & 1 != 0 { guard let u = string() else { return nil }; unit = u }
        var metadata: [String: String] = [:]
        if flags & 2 != 0 {
            guard let count = byte() else { return nil }
            for _ in 0..<count {
                guard let k = string(), let v = string() else { return nil }
                metadata[k] = v
            }
        }
        guard i == b.count else { return nil }
        return Reading(variable: variable, value: value, unit: unit, time: Timestamp(millisecondsSince1970: Int64(bitPattern: time)), metadata: metadata)
    }

    @inline(__always)
    static func appendInteger(_ v: UInt64, into out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { utf8 in
            let n = min(utf8.count, Int(UInt16.max))
            out.append(UInt8(n & 0xFF))
            out.append(UInt8(n >> 8))
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[0..<n]))
        }
    }
}
