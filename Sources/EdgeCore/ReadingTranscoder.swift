/// Spool bytes straight to TagoIO JSON: the MQTT uplink's hot path.
///
/// `append(encoded:to:)` writes byte for byte what `ReadingCodec.decode(bytes)?.appendDataObjectJSON(to:)`
/// writes, without building a `Reading` (no strings, no dictionary). It handles the common case
/// only and declines (returns false, appending nothing) whenever the general path has work to do:
/// a record that does not decode, a time still on the monotonic clock (the `ClockGuard` must place
/// it), a string that needs JSON escaping or is not valid UTF-8. One per thread: it remembers the
/// last day it wrote, since a batch's readings share their date.
public struct ReadingJSONTranscoder {
    private var day: Int64 = -1
    private var date: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}

    public mutating func append(encoded b: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        guard let layout = ReadingCodec.Layout(b) else { return false }
        let days = layout.time / 86_400_000
        if days != day {
            let (y, m, d) = Timestamp.civil(fromDays: days)
            func digit(_ v: Int64) -> UInt8 { UInt8(truncatingIfNeeded: 48 + v % 10) }
            date = (digit(y / 1000), digit(y / 100), digit(y / 10), digit(y), 0x2D, digit(m / 10), digit(m), 0x2D, digit(d / 10), digit(d))
            day = days
        }
        let date = self.date
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: layout.bound) { buffer in
            var w = JSONWriter(buffer.baseAddress!)
            w.literal(#"{"variable":""#)
            w.copy(b, layout.variable)
            w.literal(#"","value":"#)
            switch layout.kind {
            case 0: w.number(layout.number)
            case 1: w.literal("false")
            case 2: w.literal("true")
            default:
                w.byte(0x22); w.copy(b, layout.text); w.byte(0x22)
            }
            if let u = layout.unit {
                w.literal(#","unit":""#); w.copy(b, u); w.byte(0x22)
            }
            w.literal(#","time":""#)
            withUnsafeBytes(of: date) { w.copy($0) }
            w.time(ofDay: layout.time - days * 86_400_000)
            w.byte(0x22)
            if layout.metadataCount > 0 {
                w.literal(#","metadata":{"#)
                var i = layout.metadataStart
                for n in 0..<layout.metadataCount {
                    if n > 0 { w.byte(0x2C) }
                    w.byte(0x22); w.copy(b, ReadingCodec.Layout.string(b, &i)!); w.literal(#"":""#)
                    w.copy(b, ReadingCodec.Layout.string(b, &i)!); w.byte(0x22)
                }
                w.byte(0x7D)
            }
            w.byte(0x7D)
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: w.p - buffer.baseAddress!))
            return true
        }
    }
}

extension ReadingCodec {
    /// Where the parts of one encoded reading lie (offsets into the record), for a record the
    /// transcoder can copy as it is.
    struct Layout {
        var time: Int64 = 0
        var kind: UInt8 = 0
        var variable: Range<Int> = 0..<0
        var number: Double = 0
        var text: Range<Int> = 0..<0
        var unit: Range<Int>?
        /// Where the first metadata key's length is, and how many pairs follow (sorted by key).
        var metadataStart = 0
        var metadataCount = 0
        /// The JSON object's size at most.
        var bound = 128  // punctuation and key names (about 60), a number (24 at most), a time (24)
    }

    /// Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF), the bytes
    /// `String(decoding:as:)` keeps unchanged.
    static func isValidUTF8(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = b.count
        @inline(__always) func continuation(_ j: Int) -> Bool { j < n && b[j] & 0xC0 == 0x80 }
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            switch c {
            case 0xC2...0xDF:
                guard continuation(i + 1) else { return false }
                i += 2
            case 0xE0...0xEF:
                guard continuation(i + 1), continuation(i + 2) else { return false }
                let c1 = b[i + 1]
                if c == 0xE0 && c1 < 0xA0 { return false }  // overlong
                if c == 0xED && c1 >= 0xA0 { return false }  // surrogate
                i += 3
            case 0xF0...0xF4:
                guard continuation(i + 1), continuation(i + 2), continuation(i + 3) else { return false }
                let c1 = b[i + 1]
                if c == 0xF0 && c1 < 0x90 { return false }  // overlong
                if c == 0xF4 && c1 >= 0x90 { return false }  // past U+10FFFF
                i += 4
            default:
                return false
            }
        }
        return true
    }

}

extension ReadingCodec.Layout {
    /// Checks the record as `ReadingCodec.decode` does, and nil where that gives nil. Also nil where
    /// the transcoder must decline: a time before 1970 (monotonic) or after 9999, a string that
    /// needs escaping or is not valid UTF-8, metadata keys that are not ASCII and strictly
    /// increasing as `encode` writes them (decode would reorder them through its dictionary).
    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= 11, b[0] == ReadingCodec.version else { return nil }
        let flags = b[1]
        kind = b[2]
        time = Int64(bitPattern: b.loadUnaligned(fromByteOffset: 3, as: UInt64.self).littleEndian)
        guard time >= 0, time < 253_402_300_800_000 else { return nil }
        var i = 11
        guard let v = Self.string(b, &i), Self.plain(b, v, &bound) else { return nil }
        variable = v
        switch kind {
        case 0:
            guard i + 8 <= b.count else { return nil }
            number = Double(bitPattern: b.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
            i += 8
        case 1, 2: break
        case 3:
            guard let s = Self.string(b, &i), Self.plain(b, s, &bound) else { return nil }
            text = s
        default: return nil
        }
        if flags & 1 != 0 {
            guard let u = Self.string(b, &i), Self.plain(b, u, &bound) else { return nil }
            unit = u
        }
        if flags & 2 != 0 {
            guard i < b.count else { return nil }
            metadataCount = Int(b[i])
            i += 1
            metadataStart = i
            var previous: Range<Int>?
            for _ in 0..<metadataCount {
                guard let k = Self.string(b, &i), Self.plain(b, k, &bound), let v = Self.string(b, &i), Self.plain(b, v, &bound) else { return nil }
                for j in k where b[j] >= 0x80 { return nil }
                if let previous, !UnsafeRawBufferPointer(rebasing: b[previous]).lexicographicallyPrecedes(UnsafeRawBufferPointer(rebasing: b[k])) {
                    return nil
                }
                previous = k
            }
        }
        guard i == b.count else { return nil }
    }

    /// A u16-length-prefixed string at `i`, which moves past it.
    @inline(__always)
    static func string(_ b: UnsafeRawBufferPointer, _ i: inout Int) -> Range<Int>? {
        guard i + 2 <= b.count else { return nil }
        let n = Int(b.loadUnaligned(fromByteOffset: i, as: UInt16.self).littleEndian)
        guard i + 2 + n <= b.count else { return nil }
        i += 2 + n
        return (i - n)..<i
    }

    /// True if the bytes can be copied into JSON as they are (no escapes, valid UTF-8); counts them into `bound`.
    @inline(__always)
    static func plain(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ bound: inout Int) -> Bool {
        var high = false
        for i in r {
            let c = b[i]
            if c < 0x20 || c == 0x22 || c == 0x5C { return false }
            if c >= 0x80 { high = true }
        }
        if high, !ReadingCodec.isValidUTF8(UnsafeRawBufferPointer(rebasing: b[r])) { return false }
        bound += r.count + 6
        return true
    }
}

/// Writes into space already reserved; the caller sized it.
private struct JSONWriter {
    var p: UnsafeMutablePointer<UInt8>

    init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    @inline(__always) mutating func byte(_ c: UInt8) {
        p.pointee = c
        p += 1
    }

    @inline(__always) mutating func literal(_ s: StaticString) {
        p.update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        p += s.utf8CodeUnitCount
    }

    @inline(__always) mutating func copy(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) {
        guard !r.isEmpty else { return }
        (UnsafeMutableRawPointer(p)).copyMemory(from: b.baseAddress! + r.lowerBound, byteCount: r.count)
        p += r.count
    }

    @inline(__always) mutating func copy(_ b: UnsafeRawBufferPointer) { copy(b, 0..<b.count) }

    /// A number as `JSONValue.format` writes it: whole numbers below 1e15 as integers, anything
    /// not finite as `null`, others as Swift's shortest round-trip text. Decimals with up to nine
    /// fraction digits in [0.001, 1e15) are written here directly: the fewest fraction digits `d`
    /// for which `round(n·10^d) / 10^d == n` are the shortest that round-trip (both operands are
    /// exact, so the division is the correctly rounded parse), which is what Swift prints.
    mutating func number(_ n: Double) {
        guard n.isFinite else { literal("null"); return }
        let a = abs(n)
        if a == a.rounded(), a < 1e15 {
            if n < 0 { byte(0x2D) }
            integer(UInt64(a))
            return
        }
        if a >= 0.001 {
            var scale = 1.0
            for d in 1...9 {
                scale *= 10
                let scaled = a * scale
                guard scaled < 1e15 else { break }
                let m = scaled.rounded()
                if m / scale == a {
                    let mi = UInt64(m), s = UInt64(scale)
                    if n < 0 { byte(0x2D) }
                    integer(mi / s)
                    byte(0x2E)
                    var frac = mi % s
                    var q = p + d
                    p = q
                    for _ in 0..<d {
                        q -= 1
                        q.pointee = UInt8(truncatingIfNeeded: 48 + frac % 10)
                        frac /= 10
                    }
                    return
                }
            }
        }
        var text = String(n)
        text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
    }

    mutating func integer(_ value: UInt64) {
        var v = value
        var digits = 1
        var x = v
        while x >= 10 { x /= 10; digits += 1 }
        var q = p + digits
        p = q
        repeat {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        } while v > 0
    }

    @inline(__always) mutating func two(_ v: Int64) {
        p[0] = UInt8(truncatingIfNeeded: 48 + v / 10)
        p[1] = UInt8(truncatingIfNeeded: 48 + v % 10)
        p += 2
    }

    /// `THH:MM:SS.fffZ` of `Timestamp.iso8601`.
    mutating func time(ofDay ms: Int64) {
        byte(0x54)
        two(ms / 3_600_000); byte(0x3A); two((ms / 60_000) % 60); byte(0x3A); two((ms / 1000) % 60)
        byte(0x2E)
        let f = ms % 1000
        byte(UInt8(truncatingIfNeeded: 48 + f / 100)); two(f % 100)
        byte(0x5A)
    }
}
