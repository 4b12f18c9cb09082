/// The value of one reading: TagoIO accepts numbers, strings and booleans.
public enum ReadingValue: Sendable, Equatable {
    case number(Double)
    case bool(Bool)
    case string(String)

    /// The value as people read it: numbers as JSON writes them, `true`/`false`, strings as they are.
    public var display: String {
        switch self {
        case .number(let v): JSONValue.format(v)
        case .bool(let b): b ? "true" : "false"
        case .string(let s): s
        }
    }

    /// The number this value holds, if it is one.
    public var number: Double? {
        if case .number(let v) = self { return v }
        return nil
    }
}

/// What a driver returns for one quantity of one read, before it is named and stamped.
public struct Measurement: Sendable, Equatable {
    /// The quantity's name, part of the variable name: `temperature`, `humidity`, `ain0` …
    public var quantity: String
    public var value: ReadingValue
    /// TagoIO unit text (`°C`, `%`, `hPa`, `lx`, `V`), or nil for unitless values.
    public var unit: String?
    /// Optional extra facts (a DS18B20's ROM id, an ADC channel) sent as TagoIO metadata.
    public var metadata: [String: String]

    public init(_ quantity: String, _ value: Double, unit: String?, metadata: [String: String] = [:]) {
        self.quantity = quantity
        self.value = .number(value)
        self.unit = unit
        self.metadata = metadata
    }

    public init(_ quantity: String, value: ReadingValue, unit: String?, metadata: [String: String] = [:]) {
        self.quantity = quantity
        self.value = value
        self.unit = unit
        self.metadata = metadata
    }
}

/// One named, time-stamped reading: the unit the spool stores and the uplinks send, shaped like a
/// TagoIO data object.
public struct Reading: Sendable, Equatable {
    public var variable: String
    public var value: ReadingValue
    public var unit: String?
    public var time: Timestamp
    public var metadata: [String: String]

    public init(variable: String, value: ReadingValue, unit: String? = nil, time: Timestamp,
                metadata: [String: String] = [:]) {
        self.variable = variable
        self.value = value
        self.unit = unit
        self.time = time
        self.metadata = metadata
    }

    /// Appends this reading's TagoIO data object as compact JSON, byte for byte what
    /// `dataObject.serialized` gives, without building the intermediate values (the uplink's hot path).
    public func appendDataObjectJSON(to out: inout [UInt8]) {
        out.appendLiteral(#"{"variable":"#)
        JSONValue.appendString(variable, to: &out)
        out.appendLiteral(#","value":"#)
        switch value {
        case .number(let v): JSONValue.appendNumber(v, to: &out)
        case .bool(let v): out.appendLiteral(v ? "true" : "false")
        case .string(let v): JSONValue.appendString(v, to: &out)
        }
        if let unit {
            out.appendLiteral(#","unit":"#)
            JSONValue.appendString(unit, to: &out)
        }
        out.appendLiteral(#","time":""#)
        time.appendISO8601(to: &out)
        out.append(UInt8(ascii: "\""))
        if !metadata.isEmpty {
            out.appendLiteral(#","metadata":{"#)
            for (i, (k, v)) in metadata.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.appendString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONValue.appendString(v, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The TagoIO data object for this reading (`variable`, `value`, `unit`, `time`, `metadata`).
    public var dataObject: JSONValue {
        var object: [(String, JSONValue)] = [("variable", .string(variable))]
        switch value {
        case .number(let v): object.append(("value", .number(v)))
        case .bool(let v): object.append(("value", .bool(v)))
        case .string(let v): object.append(("value", .string(v)))
        }
        if let unit { object.append(("unit", .string(unit))) }
        object.append(("time", .string(time.iso8601)))
        if !metadata.isEmpty {
            object.append(("metadata", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        return .object(object)
    }
}

/// A point in UTC time with millisecond precision (TagoIO's resolution).
public struct Timestamp: Sendable, Equatable, Comparable, Hashable {
    public var millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) {
        self.millisecondsSince1970 = millisecondsSince1970
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        a.millisecondsSince1970 < b.millisecondsSince1970
    }

    /// ISO 8601 in UTC with milliseconds and a `Z`, e.g. `2026-11-29T01:02:03.456Z`.
    public var iso8601: String {
        let ms = millisecondsSince1970
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = Timestamp.civil(fromDays: days)
        let h = msOfDay / 3_600_000, mi = (msOfDay / 60_000) % 60, s = (msOfDay / 1000) % 60, f = msOfDay % 1000
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(f, 3))Z"
    }

    /// Appends `iso8601` as bytes, without intermediate strings.
    public func appendISO8601(to out: inout [UInt8]) {
        let ms = millisecondsSince1970
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = Timestamp.civil(fromDays: days)
        func digits(_ v: Int64, _ width: Int) {
            var x = v < 0 ? 0 : v
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(truncatingIfNeeded: 48 + (x / divisor) % 10))
                x %= divisor
                divisor /= 10
            }
        }
        guard (0...9999).contains(y) else {
            out.append(contentsOf: iso8601.utf8)
            return
        }
        digits(y, 4); out.append(45); digits(m, 2); out.append(45); digits(d, 2); out.append(84)
        digits(msOfDay / 3_600_000, 2); out.append(58); digits((msOfDay / 60_000) % 60, 2); out.append(58)
        digits((msOfDay / 1000) % 60, 2); out.append(46); digits(msOfDay % 1000, 3); out.append(90)
    }

    /// Parses the ISO 8601 forms TagoIO uses: `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
    public init?(iso8601 text: String) {
        let b = Array(text.utf8)
        func num(_ at: Int, _ len: Int) -> Int64? {
            guard at + len <= b.count else { return nil }
            var v: Int64 = 0
            for i in at..<(at + len) {
                guard b[i] >= 48, b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 19, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 32, b[13] == 58, b[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
              let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { frac = frac * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { frac *= 10 }
        }
        var offset: Int64 = 0
        if i < b.count {
            if b[i] == 90 || b[i] == 122 {  // Z or z
                i += 1
            } else if b[i] == 43 || b[i] == 45 {  // + or -
                let sign: Int64 = b[i] == 45 ? -1 : 1
                guard let oh = num(i + 1, 2) else { return nil }
                var om: Int64 = 0
                if i + 3 < b.count, b[i + 3] == 58 {
                    guard let m2 = num(i + 4, 2) else { return nil }
                    om = m2
                    i += 6
                } else if let m2 = num(i + 3, 2) {
                    om = m2
                    i += 5
                } else {
                    i += 3
                }
                offset = sign * (oh * 60 + om) * 60_000
            } else {
                return nil
            }
        }
        guard i == b.count else { return nil }
        let days = Timestamp.days(fromCivil: y, mo, d)
        millisecondsSince1970 = days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + frac - offset
    }

    /// The HTTP date form (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
    public var httpDate: String {
        let ms = millisecondsSince1970
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let (y, m, d) = Timestamp.civil(fromDays: days)
        let secondOfDay = (ms - days * 86_400_000) / 1000
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        return "\(weekday), \(pad(d, 2)) \(months[Int(m) - 1]) \(pad(y, 4)) \(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)) GMT"
    }

    /// Parses an HTTP date (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
    public init?(httpDate text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT", parts[1].utf8.count == 2, parts[3].utf8.count == 4,
              let d = Int64(parts[1]), let mo = months.firstIndex(of: String(parts[2])), let y = Int64(parts[3]), (1...31).contains(d)
        else { return nil }
        let hms = parts[4].split(separator: ":")
        guard hms.count == 3, hms.allSatisfy({ $0.utf8.count == 2 }), let h = Int64(hms[0]), let mi = Int64(hms[1]), let sec = Int64(hms[2]),
              (0..<24).contains(h), (0..<60).contains(mi), (0..<61).contains(sec)
        else { return nil }
        millisecondsSince1970 = Timestamp.days(fromCivil: y, Int64(mo) + 1, d) * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000
    }

    // Howard Hinnant's civil calendar algorithms (proleptic Gregorian).
    /// (year, month, day) of a day number since 1970-01-01.
    public static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

@inline(__always)
private func pad(_ v: Int64, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

extension Array where Element == UInt8 {
    /// Appends a literal's UTF-8 bytes without going through String.
    @inline(__always)
    public mutating func appendLiteral(_ s: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
