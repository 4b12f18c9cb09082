import EdgeCore

/// TagoIO's documented rules for a data object, checked before sending so that one bad reading is
/// caught at the gateway (and by the emulator, as the cloud would). Returns nil if valid.
public func tagoDataObjectProblem(_ v: JSONValue) -> String? {
    guard case .object(let members) = v else { return "a data object must be a JSON object" }
    guard let variable = v["variable"]?.stringValue else { return "'variable' is required and must be a string" }
    if let problem = tagoVariableNameProblem(variable) { return "variable '\(variable)' \(problem)" }
    for (key, value) in members {
        switch key {
        case "variable", "id": continue
        case "value":
            switch value {
            case .number, .bool, .null: break
            case .string(let s): if s.utf8.count > 6_000 { return "'value' of '\(variable)' is \(s.utf8.count) bytes; TagoIO allows 6 kB" }
            default: return "'value' of '\(variable)' must be a number, a string or a boolean"
            }
        case "unit":
            guard let u = value.stringValue else { return "'unit' of '\(variable)' must be a string" }
            if u.count > 25 { return "'unit' of '\(variable)' is \(u.count) characters; TagoIO allows 25" }
        case "group", "serie":
            guard let g = value.stringValue else { return "'\(key)' of '\(variable)' must be a string" }
            if g.count > 100 { return "'\(key)' of '\(variable)' is longer than 100 characters" }
        case "time":
            guard let t = value.stringValue, Timestamp(iso8601: t) != nil else { return "'time' of '\(variable)' must be an ISO 8601 time" }
        case "metadata":
            guard case .object = value else { return "'metadata' of '\(variable)' must be an object" }
            if value.serialized.utf8.count > 10_000 { return "'metadata' of '\(variable)' is larger than TagoIO's 10 kB" }
        case "location":
            if let lat = value["lat"]?.numberValue, let lng = value["lng"]?.numberValue {
                if !(-90...90).contains(lat) || !(-180...180).contains(lng) { return "'location' of '\(variable)' is outside the globe" }
            } else if value["type"]?.stringValue == "Point", let c = value["coordinates"]?.arrayValue, c.count == 2, c.allSatisfy({ $0.numberValue != nil }) {
                break
            } else {
                return "'location' of '\(variable)' must be {\"lat\",\"lng\"} or a GeoJSON Point"
            }
        default:
            return "'\(key)' is not a field of a TagoIO data object (variable '\(variable)')"
        }
    }
    return nil
}

/// Maximum body of one insert request (TagoIO: 200 kB).
public let tagoMaxRequestBytes = 200_000

/// The same rules for a reading the agent made (no JSON built): variable name, value size, unit.
public func tagoReadingProblem(_ r: Reading) -> String? {
    if let problem = tagoVariableNameProblem(r.variable) { return "variable '\(r.variable)' \(problem)" }
    if case .string(let s) = r.value, s.utf8.count > 6_000 { return "'value' of '\(r.variable)' is \(s.utf8.count) bytes; TagoIO allows 6 kB" }
    if case .number(let n) = r.value, !n.isFinite { return "'value' of '\(r.variable)' is \(n), which JSON cannot carry" }
    if let u = r.unit, u.count > 25 { return "'unit' of '\(r.variable)' is \(u.count) characters; TagoIO allows 25" }
    if !r.metadata.isEmpty, r.metadata.reduce(0, { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 }) > 10_000 {
        return "'metadata' of '\(r.variable)' is larger than TagoIO's 10 kB"
    }
    return nil
}

/// TagoIO's rules for a variable name: 1 to 100 characters, no spaces and none of `* ? ! < > . - = $`.
/// Returns nil if valid, or why not. (TagoIO stores names lowercased.)
public func tagoVariableNameProblem(_ name: String) -> String? {
    var count = 0
    for b in name.utf8 {
        switch b {
        case UInt8(ascii: " "), UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "="), UInt8(ascii: "$"):
            return "contains '\(Character(Unicode.Scalar(b)))', which TagoIO does not allow in variable names (no spaces or * ? ! < > . - = $)"
        default:
            if b & 0xC0 != 0x80 { count += 1 }  // count characters, not bytes
        }
    }
    if count == 0 { return "is empty" }
    if count > 100 { return "is \(count) characters long; TagoIO allows at most 100" }
    return nil
}
