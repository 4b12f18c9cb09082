/// Parses a duration as people write it in config files: `250ms`, `10s`, `5m`, `1h`, `1d`,
/// or combinations such as `1m30s`. Returns milliseconds, or nil when the text is not a duration.
public func parseDuration(_ text: String) -> Int64? {
    let b = Array(text.utf8)
    guard !b.isEmpty, b.count <= 64 else { return nil }
    var i = 0
    var total = 0.0
    while i < b.count {
        var whole = 0.0
        var digits = 0
        while i < b.count, (48...57).contains(b[i]) {
            whole = whole * 10 + Double(b[i] - 48)
            i += 1
            digits += 1
        }
        var fraction = 0.0, scale = 0.1
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, (48...57).contains(b[i]) { fraction += Double(b[i] - 48) * scale; scale /= 10; i += 1; digits += 1 }
        }
        guard digits > 0 else { return nil }
        var unit = ""
        while i < b.count, !(48...57).contains(b[i]), b[i] != UInt8(ascii: ".") {
            unit.unicodeScalars.append(Unicode.Scalar(b[i]))
            i += 1
        }
        let factor: Double
        switch unit {
        case "ms": factor = 1
        case "s": factor = 1000
        case "m": factor = 60_000
        case "h": factor = 3_600_000
        case "d": factor = 86_400_000
        default: return nil
        }
        total += (whole + fraction) * factor
        // Checked in floating point, so no digit string can overflow the integer below.
        guard total <= Double(maxDurationMilliseconds) else { return nil }
    }
    return Int64(total)
}

/// The longest duration any setting takes: one year. Longer ones are refused where they are
/// parsed, so no schedule arithmetic downstream can overflow.
public let maxDurationMilliseconds: Int64 = 366 * 86_400_000

/// A duration (`30s`, `5m`) or a bare number of seconds, as configuration_params may give it.
public func parseDurationOrSeconds(_ text: String) -> Int64? {
    if let ms = parseDuration(text) { return ms }
    guard let seconds = Int64(text), seconds >= 0, seconds <= maxDurationMilliseconds / 1000 else { return nil }
    return seconds * 1000
}

/// Formats milliseconds compactly: `500ms`, `10s`, `1m30s`.
public func formatDuration(_ ms: Int64) -> String {
    if ms < 1000 || ms % 1000 != 0 { return "\(ms)ms" }
    var s = ms / 1000
    var out = ""
    if s >= 3600 { out += "\(s / 3600)h"; s %= 3600 }
    if s >= 60 { out += "\(s / 60)m"; s %= 60 }
    if s > 0 || out.isEmpty { out += "\(s)s" }
    return out
}

/// Parses a size: `64MiB`, `512KiB`, `1GiB`, `100MB`, `4096` (bytes). Returns bytes or nil.
public func parseByteSize(_ text: String) -> Int64? {
    let trimmed = text.replacingSpaces()
    var digits = ""
    var unit = ""
    for ch in trimmed {
        if unit.isEmpty, ch.isASCII, ch.isNumber || ch == "." { digits.append(ch) } else { unit.append(ch) }
    }
    // Any size the conversion below holds exactly (8 PiB); the caller bounds it further.
    guard digits.utf8.count <= 32, let value = Double(digits), value >= 0, value.isFinite else { return nil }
    let factor: Double
    switch unit.lowercased() {
    case "", "b": factor = 1
    case "k", "kb": factor = 1000
    case "kib": factor = 1024
    case "m", "mb": factor = 1_000_000
    case "mib": factor = 1_048_576
    case "g", "gb": factor = 1_000_000_000
    case "gib": factor = 1_073_741_824
    default: return nil
    }
    let bytes = value * factor
    guard bytes <= Double(1 << 53) else { return nil }
    return Int64(bytes)
}

extension String {
    fileprivate func replacingSpaces() -> String { String(filter { $0 != " " }) }
}

extension String {
    /// FNV-1a: a hash that is the same in every run (Swift's `hashValue` is seeded per process).
    public var stableHash: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}

/// Formats a byte count for people: `512 B`, `64.0 MiB`, `1.5 GiB`.
public func formatByteSize(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var i = 0
    while abs(value) >= 1024, i < units.count - 1 {
        value /= 1024
        i += 1
    }
    if i == 0 { return "\(bytes) B" }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10)) \(units[i])"
}

extension String {
    /// Every occurrence of `target` replaced (what Foundation's method of the same name does).
    public func replacingOccurrences(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension String {
    /// Without leading and trailing blanks: spaces, tabs, CR and LF.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == "\r\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}

/// No chip the agent reads resolves more than 7 significant digits; rounding keeps the payload
/// short. Whole numbers (counters) are kept exactly.
public func roundToSignificantDigits(_ v: Double, _ digits: Int) -> Double {
    guard v.isFinite, v != 0, v != v.rounded() else { return v }
    let magnitude = Int((abs(v)).log10Floor)
    let scale = pow10(digits - 1 - magnitude)
    return (v * scale).rounded() / scale
}

private extension Double {
    var log10Floor: Double {
        var m = 0.0
        var x = self
        while x >= 10 { x /= 10; m += 1 }
        while x < 1 { x *= 10; m -= 1 }
        return m
    }
}

private func pow10(_ n: Int) -> Double {
    var r = 1.0
    if n >= 0 { for _ in 0..<n { r *= 10 } } else { for _ in 0..<(-n) { r /= 10 } }
    return r
}
