import EdgeCore

/// TagoTiP, TagoIO's text payload for MQTT (`$tip/{serial}/push`):
/// `!42|[temperature:=25.5#°C@1694567890000; door?=true; status=ok]`.
/// `:=` number, `=` string, `?=` boolean; `#unit`, `@epoch-ms`, `{k=v}` metadata.
public enum TagoTiP {
    /// Most bytes and variables TagoIO takes in one payload.
    public static let maxBytes = 16_384
    public static let maxVariables = 100

    /// One reading as a TagoTiP item.
    public static func item(_ r: Reading) -> String {
        var s = r.variable
        switch r.value {
        case .number(let v): s += ":=" + JSONValue.format(v)
        case .bool(let b): s += "?=" + (b ? "true" : "false")
        case .string(let v): s += "=" + escape(v)
        }
        if let unit = r.unit { s += "#" + escape(unit) }
        s += "@" + String(r.time.millisecondsSince1970)
        if !r.metadata.isEmpty {
            s += "{" + r.metadata.sorted { $0.key < $1.key }.map { escape($0.key) + "=" + escape($0.value) }.joined(separator: ",") + "}"
        }
        return s
    }

    /// A payload with the sequence counter.
    public static func payload(sequence: UInt64, items: [String]) -> String {
        "!\(sequence)|[" + items.joined(separator: "; ") + "]"
    }

    /// Characters that structure the format are escaped with a backslash.
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ";[]{}#@^=,|\\".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }

    /// An `$tip/{serial}/ack` reply: `OK|N`, `ERR|reason`, or `CMD|command`.
    public enum Reply: Sendable, Equatable {
        case ok(UInt64?)
        case error(String)
        case command(String)
        case unknown(String)

        public init(_ text: String) {
            let parts = text.split(separator: "|", maxSplits: 1).map(String.init)
            switch parts.first {
            case "OK": self = .ok(parts.count > 1 ? UInt64(parts[1]) : nil)
            case "ERR": self = .error(parts.count > 1 ? parts[1] : "")
            case "CMD": self = .command(parts.count > 1 ? parts[1] : "")
            default: self = .unknown(text)
            }
        }
    }
}
