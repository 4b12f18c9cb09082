#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EdgeCore

// One file of about 600 lines, on purpose: one hot loop and the tables it uses, which must write
// byte for byte what the general path writes (TranscoderTests); it is read as a whole.

/// Spool bytes straight to TagoIO JSON: the MQTT uplink's hot path.
///
/// `append(encoded:to:)` writes byte for byte what `ReadingCodec.decode(bytes)?.appendDataObjectJSON(to:)`
/// writes, without building a `Reading` (no strings, no dictionary). It handles the common case
/// only and declines (returns false, appending nothing) whenever the general path has work to do:
/// a record that does not decode, a time still on the monotonic clock (the `ClockGuard` must place
/// it), a string that needs JSON escaping or is not valid UTF-8.
///
/// One per thread. It remembers the last day it wrote (a batch's readings share their date) and,
/// for numeric readings, the JSON around the value and the time of the last few sensors'
/// records: a record whose bytes other than its time and value equal a remembered one's is
/// written from those parts without being parsed or checked again.
public struct ReadingJSONTranscoder {
    private var day: Int64 = -1
    /// `YYYY-MM-DD` of `day`: its first eight bytes and its last two, as they are stored.
    private var date = (UInt64(0), UInt16(0))
    /// The minute of the day last written, and its `THH:MM:` (in the first seven bytes).
    private var minute: UInt32 = .max
    private var minuteText: UInt64 = 0
    private let templates = TemplateCache()

    public init() {}

    /// The most JSON one record of `count` encoded bytes can turn into.
    public static func maximumJSONSize(encodedCount count: Int) -> Int { 2 * count + 160 }

    /// Appends the record's JSON data object to `out`; false (nothing appended) for a record the
    /// general path must handle.
    public mutating func append(encoded b: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumJSONSize(encodedCount: b.count)) { buffer in
            let n = write(encoded: b, into: buffer.baseAddress!)
            guard n > 0 else { return false }
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: n))
            return true
        }
    }

    /// Writes the record's JSON data object at `out`, which has room for
    /// `maximumJSONSize(encodedCount: b.count)` bytes. Returns the bytes written, or 0 for a
    /// record the general path must handle.
    public mutating func write(encoded b: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Int {
        guard let base = b.baseAddress, b.count >= 11, b[0] == ReadingCodec.version else { return 0 }
        let time = Int64(bitPattern: base.loadUnaligned(fromByteOffset: 3, as: UInt64.self).littleEndian)
        guard time >= 0, time < 253_402_300_800_000 else { return 0 }
        let days = time / 86_400_000
        if days != day {
            let (y, m, d) = Timestamp.civil(fromDays: days)
            func digit(_ v: Int64) -> UInt8 { UInt8(truncatingIfNeeded: 48 + v % 10) }
            let text = [digit(y / 1000), digit(y / 100), digit(y / 10), digit(y), 0x2D, digit(m / 10), digit(m), 0x2D, digit(d / 10), digit(d)]
            date = text.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt16.self)) }
            day = days
        }
        var w = JSONWriter(out)
        if b[2] == 0, let t = templates.find(b) ?? templates.add(b) {
            w.small(t.base + t.slot.keyCount, t.slot.headEnd - t.slot.keyCount)
            w.number(Double(bitPattern: base.loadUnaligned(fromByteOffset: t.slot.valueAt, as: UInt64.self).littleEndian))
            w.small(t.base + t.slot.headEnd, t.slot.middleEnd - t.slot.headEnd)
            writeDateTime(&w, time, days)
            w.small(t.base + t.slot.middleEnd, t.slot.tailEnd - t.slot.middleEnd)
            return w.p - out
        } else {
            guard let layout = ReadingCodec.Layout(b) else { return 0 }
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
            writeDateTime(&w, time, days)
            w.byte(0x22)
            writeMetadata(&w, b, layout)
            w.byte(0x7D)
            return w.p - out
        }
    }

    @inline(__always)
    private mutating func writeDateTime(_ w: inout JSONWriter, _ time: Int64, _ days: Int64) {
        w.date(date)
        // `THH:MM:` is kept for the last minute written (a batch's readings share it, mostly).
        let ms = UInt32(truncatingIfNeeded: time - days * 86_400_000)
        let minute = ms / 60_000
        if minute != self.minute {
            let hours = minute / 60
            var text: UInt64 = 0
            withUnsafeMutableBytes(of: &text) { t in
                let q = t.baseAddress!.assumingMemoryBound(to: UInt8.self)
                q[0] = 0x54
                JSONWriter.pair(q + 1, hours)
                q[3] = 0x3A
                JSONWriter.pair(q + 4, minute - hours * 60)
                q[6] = 0x3A
            }
            minuteText = text
            self.minute = minute
        }
        w.time(minuteText, millisecondsInMinute: ms - minute * 60_000)
    }
}

/// `"` and the metadata object (if any), as the general path writes them after the time.
private func writeMetadata(_ w: inout JSONWriter, _ b: UnsafeRawBufferPointer, _ layout: ReadingCodec.Layout) {
    guard layout.metadataCount > 0 else { return }
    w.literal(#","metadata":{"#)
    var i = layout.metadataStart
    for n in 0..<layout.metadataCount {
        if n > 0 { w.byte(0x2C) }
        w.byte(0x22); w.copy(b, ReadingCodec.Layout.string(b, &i)!); w.literal(#"":""#)
        w.copy(b, ReadingCodec.Layout.string(b, &i)!); w.byte(0x22)
    }
    w.byte(0x7D)
}

/// The JSON of the last few numeric records' fixed parts (variable, unit, metadata), keyed by
/// the record's bytes other than its time (bytes 3..<11) and value (8 bytes after the variable).
/// Fixed storage, replaced round robin; a record too large for a slot is never cached.
private final class TemplateCache {
    struct Slot {
        var recordCount = 0
        var valueAt = 0
        /// In the slot's bytes: the key, then `{"variable":"…","value":`, then `,"unit":"…","time":"`,
        /// then `"`, the metadata and `}`.
        var keyCount = 0
        var headEnd = 0
        var middleEnd = 0
        var tailEnd = 0
    }

    /// A slot found or added: where its bytes are, and its layout.
    struct Found {
        var base: UnsafeRawPointer
        var slot: Slot
    }

    static let count = 16
    static let slotBytes = 512
    private let slots = UnsafeMutablePointer<Slot>.allocate(capacity: TemplateCache.count)
    private let bytes = UnsafeMutableRawPointer.allocate(byteCount: TemplateCache.count * TemplateCache.slotBytes, alignment: 8)
    private var last = 0
    private var next = 0
    /// Slots filled so far (all of them once the cache has wrapped).
    private var used = 0

    init() { slots.initialize(repeating: Slot(), count: Self.count) }

    deinit {
        slots.deallocate()
        bytes.deallocate()
    }

    /// The slot whose key matches the record, trying the one after the last hit first (sensors'
    /// readings come in the same order round after round), inline; the others apart.
    @inline(__always)
    func find(_ b: UnsafeRawBufferPointer) -> Found? {
        let p = b.baseAddress!
        guard b.count >= 13 else { return nil }
        let valueAt = 13 + Int(p.loadUnaligned(fromByteOffset: 11, as: UInt16.self).littleEndian)
        guard valueAt + 8 <= b.count else { return nil }
        var i = last + 1
        if i >= used { i = 0 }
        if i < used, matches(i, b, valueAt) {
            last = i
            return found(i)
        }
        return search(b, valueAt)
    }

    private func search(_ b: UnsafeRawBufferPointer, _ valueAt: Int) -> Found? {
        for i in 0..<used where matches(i, b, valueAt) {
            last = i
            return found(i)
        }
        return nil
    }

    /// Slot `i` holds the record's key: its bytes other than the time and the value.
    @inline(__always)
    private func matches(_ i: Int, _ b: UnsafeRawBufferPointer, _ valueAt: Int) -> Bool {
        let s = slots + i
        guard s.pointee.recordCount == b.count, s.pointee.valueAt == valueAt else { return false }
        let p = b.baseAddress!
        let key = UnsafeRawPointer(bytes + i * Self.slotBytes)
        let afterValue = valueAt + 8
        return same(key, p, 3) && same(key + 3, p + 11, valueAt - 11) && same(key + (valueAt - 8), p + afterValue, b.count - afterValue)
    }

    @inline(__always)
    private func found(_ i: Int) -> Found { Found(base: UnsafeRawPointer(bytes + i * Self.slotBytes), slot: slots[i]) }

    /// Checks a numeric record fully (as the general path would decode it) and keeps its parts.
    func add(_ b: UnsafeRawBufferPointer) -> Found? {
        guard let layout = ReadingCodec.Layout(b), layout.kind == 0 else { return nil }
        let valueAt = layout.variable.upperBound
        let keyCount = b.count - 8 - 8
        guard keyCount + layout.bound <= Self.slotBytes else { return nil }
        let i = next
        next = (next + 1) % Self.count
        used = max(used, i + 1)
        let base = (bytes + i * Self.slotBytes).assumingMemoryBound(to: UInt8.self)
        base.update(from: b.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 3)
        (base + 3).update(from: (b.baseAddress! + 11).assumingMemoryBound(to: UInt8.self), count: valueAt - 11)
        (base + 3 + valueAt - 11).update(from: (b.baseAddress! + valueAt + 8).assumingMemoryBound(to: UInt8.self), count: b.count - valueAt - 8)
        var w = JSONWriter(base + keyCount)
        w.literal(#"{"variable":""#)
        w.copy(b, layout.variable)
        w.literal(#"","value":"#)
        let headEnd = w.p - base
        if let u = layout.unit {
            w.literal(#","unit":""#); w.copy(b, u); w.byte(0x22)
        }
        w.literal(#","time":""#)
        let middleEnd = w.p - base
        w.byte(0x22)
        writeMetadata(&w, b, layout)
        w.byte(0x7D)
        slots[i] = Slot(recordCount: b.count, valueAt: valueAt, keyCount: keyCount, headEnd: headEnd, middleEnd: middleEnd, tailEnd: w.p - base)
        last = i
        return found(i)
    }
}

/// The `n` bytes at `a` and `b` are equal. Inline: the keys are a few dozen bytes, less than
/// what a call to `memcmp` costs.
@inline(__always)
private func same(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    @inline(__always) func word<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> Bool {
        a.loadUnaligned(fromByteOffset: i, as: T.self) == b.loadUnaligned(fromByteOffset: i, as: T.self)
    }
    if n >= 8 {
        if n <= 24 {  // most keys: two or three words, no loop
            return word(0, UInt64.self) && word(n - 8, UInt64.self) && (n <= 16 || word(8, UInt64.self))
        }
        var i = 0
        while i + 8 < n {
            guard word(i, UInt64.self) else { return false }
            i += 8
        }
        return word(n - 8, UInt64.self)  // the last 8, overlapping what was compared
    }
    if n >= 4 { return word(0, UInt32.self) && word(n - 4, UInt32.self) }
    if n >= 2 { return word(0, UInt16.self) && word(n - 2, UInt16.self) }
    return n == 0 || word(0, UInt8.self)
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

/// `Double.description`'s formatter in the Swift runtime, writing into a buffer of ours instead of
/// a new `String` (which, past 15 bytes, is a heap allocation per number). The symbol is part of
/// the standard library's ABI (`@usableFromInline`); the tests compare its text with
/// `description` for every kind of number.
@_silgen_name("swift_float64ToString")
private func swiftFloat64ToString(_ buffer: UnsafeMutablePointer<UInt8>, _ length: UInt, _ value: Float64, _ debug: Bool) -> UInt64

/// "00" to "99", for writing digits two at a time (constant data: nothing to initialise).
private let twoDigitsText: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

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

    /// `n` bytes from `src`, inline: template parts are a few dozen bytes, less than a call to
    /// `memcpy` costs. Overlapping loads and stores, never outside `src..<src+n` or past `n` here.
    @inline(__always) mutating func small(_ src: UnsafeRawPointer, _ n: Int) {
        let d = UnsafeMutableRawPointer(p)
        if n >= 16 {
            if n > 32 {
                var i = 16
                while i + 16 < n {
                    d.storeBytes(of: src.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self), toByteOffset: i, as: SIMD16<UInt8>.self)
                    i += 16
                }
            }
            let first = src.loadUnaligned(as: SIMD16<UInt8>.self), last = src.loadUnaligned(fromByteOffset: n - 16, as: SIMD16<UInt8>.self)
            d.storeBytes(of: first, as: SIMD16<UInt8>.self)
            d.storeBytes(of: last, toByteOffset: n - 16, as: SIMD16<UInt8>.self)
        } else if n >= 8 {
            let a = src.loadUnaligned(as: UInt64.self), b = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            d.storeBytes(of: a, as: UInt64.self)
            d.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 {
            let a = src.loadUnaligned(as: UInt32.self), b = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            d.storeBytes(of: a, as: UInt32.self)
            d.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
        } else if n > 0 {
            let a = src.load(as: UInt8.self), m = src.load(fromByteOffset: n / 2, as: UInt8.self), b = src.load(fromByteOffset: n - 1, as: UInt8.self)
            d.storeBytes(of: a, as: UInt8.self)
            d.storeBytes(of: m, toByteOffset: n / 2, as: UInt8.self)
            d.storeBytes(of: b, toByteOffset: n - 1, as: UInt8.self)
        }
        p += n
    }

    /// The ten bytes of a date as `ReadingJSONTranscoder` keeps them.
    @inline(__always) mutating func date(_ d: (UInt64, UInt16)) {
        UnsafeMutableRawPointer(p).storeBytes(of: d.0, as: UInt64.self)
        UnsafeMutableRawPointer(p).storeBytes(of: d.1, toByteOffset: 8, as: UInt16.self)
        p += 10
    }

    @inline(__always) mutating func copy(_ b: UnsafeRawBufferPointer) {
        guard let base = b.baseAddress else { return }
        UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: b.count)
        p += b.count
    }

    /// A number as `JSONValue.format` writes it: whole numbers below 1e15 as integers, anything
    /// not finite as `null`, others as Swift's shortest round-trip text. Decimals with up to nine
    /// fraction digits in [0.001, 1e15) (the agent keeps seven significant digits) are written
    /// here directly, with the fewest fraction digits `d` for which `round(n·10^d) / 10^d == n`
    /// (both operands exact, so the division is the correctly rounded parse): the shortest text
    /// that round-trips, which is what Swift prints. Below 2,000,000 one product by 1e9 finds
    /// them all at once (below); above, `other` tries each `d` in turn, where a `d` that
    /// round-trips leaves `n·10^d` within a small fraction of an integer. The rest go through the
    /// standard library's own formatter, straight into the output.
    @inline(__always)
    mutating func number(_ n: Double) {
        let a = abs(n)
        if a >= 0.001 && a < 2_000_000 {  // false for NaN
            // Below 2^51 / 1e9 the one candidate for every length at once: a value that some
            // decimal with at most nine fraction digits parses back to is, scaled by 1e9,
            // within a quarter of that decimal's digits (one rounding in the parse, one in the
            // product), so the rounded product is those digits, and the one division tests them
            // exactly. The shortest such decimal is the same digits with their trailing zeros
            // cut (none left: a whole number). Nothing with nine digits or fewer: the formatter.
            let m = Int64(a * 1e9 + 0.5)  // exact: below 2^52 the half is representable
            if Double(m) / 1e9 == a {
                if n < 0 { byte(0x2D) }
                fraction(UInt64(truncatingIfNeeded: m))
                return
            }
        }
        other(n)
    }

    /// `number` for the rest: not finite, zero and below 0.001, from 2,000,000 on, more than
    /// nine decimals.
    private mutating func other(_ n: Double) {
        let a = abs(n)
        guard n.isFinite else { literal("null"); return }
        if a < 1e15 {
            let whole = UInt64(a)
            if Double(whole) == a {
                if n < 0 { byte(0x2D) }
                integer(whole)
                return
            }
            if a >= 2_000_000 {
                var scale = 1.0
                for d in 1...9 {
                    scale *= 10
                    let scaled = a * scale
                    guard scaled < 1e15 else { break }
                    let t = UInt64(scaled)  // truncates; below 2^53 both are exact
                    let m = scaled - Double(t) >= 0.5 ? t + 1 : t
                    // A match has `scaled` within a few units in the last place of `m`; the
                    // division, the exact test, runs only for a candidate.
                    let off = scaled - Double(m)
                    guard off <= scaled * 0x1p-40, -off <= scaled * 0x1p-40, Double(m) / scale == a else { continue }
                    if n < 0 { byte(0x2D) }
                    decimal(m, fractionDigits: d)
                    return
                }
            }
        }
        // Swift 6.2's formatter writes the leading zero of `0.x` only by leaving a buffer that
        // `description` filled with "0" as it was: fill it the same way.
        p.initialize(repeating: 0x30, count: 32)
        p += Int(swiftFloat64ToString(p, 32, n, false))
    }

    /// `m / 10^9` with the fewest fraction digits that hold it (none for a whole number): the
    /// whole part, the nine fraction digits (in pairs from a table), the trailing zeros taken back.
    @inline(__always) mutating func fraction(_ m: UInt64) {
        let whole = m / 1_000_000_000
        if whole < 10 {
            byte(UInt8(truncatingIfNeeded: 48 &+ whole))
        } else if whole < 100 {
            Self.pair(p, UInt32(truncatingIfNeeded: whole))
            p += 2
        } else {
            integer(whole)
        }
        var f = UInt32(truncatingIfNeeded: m &- whole &* 1_000_000_000)
        guard f != 0 else { return }
        p[0] = 0x2E
        if f % 1_000_000 == 0 {
            // Three decimals at most, as most sensor values have: only those digits.
            let g = f / 1_000_000
            let hundreds = g / 100
            p[1] = UInt8(truncatingIfNeeded: 48 &+ hundreds)
            Self.pair(p + 2, g &- hundreds &* 100)
            p += g % 100 != 0 ? (g % 10 != 0 ? 4 : 3) : 2
            return
        }
        p[9] = UInt8(truncatingIfNeeded: 48 &+ f % 10)
        f /= 10
        Self.pair(p + 7, f % 100); f /= 100
        Self.pair(p + 5, f % 100); f /= 100
        Self.pair(p + 3, f % 100); f /= 100
        Self.pair(p + 1, f)
        if p[9] != 0x30 {
            p += 10
        } else {
            // The last digit other than 0 among the first eight, found at once: the bytes that
            // differ from "0" are the non-zero ones.
            let digits = UInt64(littleEndian: UnsafeRawPointer(p + 1).loadUnaligned(as: UInt64.self)) ^ 0x3030_3030_3030_3030
            p += 2 + (63 - digits.leadingZeroBitCount) >> 3
        }
    }

    /// The two digits of `v` (below 100) at `q`.
    @inline(__always) static func pair(_ q: UnsafeMutablePointer<UInt8>, _ v: UInt32) {
        let i = Int(v &* 2)
        q[0] = twoDigitsText.utf8Start[i]
        q[1] = twoDigitsText.utf8Start[i &+ 1]
    }

    /// `m / 10^d` with exactly `d` fraction digits (and a `0` before the point when `m < 10^d`),
    /// from `m`'s digits alone: no division by a variable.
    @inline(__always) mutating func decimal(_ m: UInt64, fractionDigits d: Int) {
        var digits = 1
        var x = m
        while x >= 10 { x /= 10; digits += 1 }
        var q = p + max(digits - d, 1) + 1 + d
        p = q
        var v = m
        for _ in 0..<d {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        }
        q -= 1
        q.pointee = 0x2E
        repeat {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: 48 + v % 10)
            v /= 10
        } while v > 0
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

    /// `THH:MM:SS.fffZ` of `Timestamp.iso8601`: the minute's `THH:MM:` as the transcoder keeps
    /// it, then the seconds and milliseconds.
    @inline(__always)
    mutating func time(_ minute: UInt64, millisecondsInMinute ms: UInt32) {
        UnsafeMutableRawPointer(p).storeBytes(of: minute, as: UInt64.self)
        let seconds = ms / 1000, f = ms - seconds * 1000
        JSONWriter.pair(p + 7, seconds)
        p[9] = 0x2E
        let hundreds = f / 100
        p[10] = UInt8(truncatingIfNeeded: 48 + hundreds)
        JSONWriter.pair(p + 11, f - hundreds * 100)
        p[13] = 0x5A
        p += 14
    }
}
