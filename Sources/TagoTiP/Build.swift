/// Building: everything written is checked against the grammar first, so a frame is either
/// valid or not written at all (the error says which field and why).
extension Tip {
    /// The Authorization Hash (§2): the first 8 bytes of SHA-256 of the token without its `at`
    /// prefix, as 16 lowercase hex characters. The token itself never goes on the wire.
    public static func authorizationHash(token: String) -> String {
        hexString(TipSecure.authHash(token: token))
    }

    /// The token's secret part, the input of the hash and the key derivation: without `at`.
    static func tokenSecret(_ token: String) -> [UInt8] {
        Array((token.hasPrefix("at") ? token.dropFirst(2) : Substring(token)).utf8)
    }

    /// `[a-z0-9_]`, 1 to 100 bytes: variable names, groups and metadata keys.
    public static func isValidName(_ s: String) -> Bool {
        let u = s.utf8
        return !u.isEmpty && u.count <= maxNameBytes && u.allSatisfy(isNameByte)
    }

    /// `[A-Za-z0-9_-]`, 1 to 100 bytes.
    public static func isValidSerial(_ s: String) -> Bool {
        let u = s.utf8
        return !u.isEmpty && u.count <= maxNameBytes && u.allSatisfy(isSerialByte)
    }

    /// Why `s` cannot be a unit, or nil when it can: 1 to 25 bytes, no structural character and
    /// no control character (units have no escapes).
    public static func unitProblem(_ s: String) -> String? {
        let u = s.utf8
        if u.isEmpty { return "a unit cannot be empty" }
        if u.count > maxUnitBytes { return "the unit '\(s)' has \(u.count) bytes (TagoTiP takes at most \(maxUnitBytes))" }
        if let bad = u.first(where: { !isUnitByte($0) }) { return "the unit '\(s)' holds \(describe(bad)), which TagoTiP units cannot carry" }
        return nil
    }

    /// The number as TagoTiP writes it, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: the shortest decimal that
    /// reads back as the same Double, never in exponent form. Nil for NaN and the infinities.
    public static func formatNumber(_ v: Double) -> String? {
        guard v.isFinite else { return nil }
        if v == 0 { return "0" }
        let text = "\(v)"  // shortest round-trip digits, with an exponent for very small or large
        if !text.utf8.contains(UInt8(ascii: "e")) {
            // The common case: plain digits already; only a trailing ".0" goes.
            return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
        }
        var negative = false
        var mantissa = Substring(text)
        var exponent = 0
        if mantissa.hasPrefix("-") {
            negative = true
            mantissa = mantissa.dropFirst()
        }
        if let e = mantissa.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(mantissa[mantissa.index(after: e)...]) ?? 0
            mantissa = mantissa[..<e]
        }
        var digits = ""
        var pointAt = mantissa.count
        for (i, c) in mantissa.enumerated() {
            if c == "." { pointAt = i } else { digits.append(c) }
        }
        pointAt += exponent
        var integer: String
        var fraction: String
        if pointAt <= 0 {
            integer = "0"
            fraction = String(repeating: "0", count: -pointAt) + digits
        } else if pointAt >= digits.count {
            integer = digits + String(repeating: "0", count: pointAt - digits.count)
            fraction = ""
        } else {
            integer = String(digits.prefix(pointAt))
            fraction = String(digits.dropFirst(pointAt))
        }
        while integer.count > 1 && integer.hasPrefix("0") { integer.removeFirst() }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let body = fraction.isEmpty ? integer : integer + "." + fraction
        return negative && body != "0" ? "-" + body : body
    }

    /// A raw-binding frame (§4.1) without its LF: stream transports add one, message transports may.
    public static func encode(_ frame: TipFrame) throws(TipError) -> [UInt8] {
        var out = Array(frame.method.rawValue.utf8)
        out.append(pipe)
        if let n = frame.counter {
            out.append(UInt8(ascii: "!"))
            out.append(contentsOf: String(n).utf8)
            out.append(pipe)
        }
        guard frame.auth.utf8.count == 16, frame.auth.utf8.allSatisfy(isHexByte) else {
            throw TipError(.grammar, "the Authorization Hash must be 16 hex characters")
        }
        out.append(contentsOf: frame.auth.utf8)
        out.append(pipe)
        guard isValidSerial(frame.serial) else { throw TipError(.grammar, "the serial '\(frame.serial)' is not 1 to 100 of [A-Za-z0-9_-]") }
        out.append(contentsOf: frame.serial.utf8)
        switch frame.method {
        case .push:
            guard let body = frame.push else { throw TipError(.grammar, "a PUSH needs a body") }
            out.append(pipe)
            try body.append(to: &out)
        case .pull:
            guard let names = frame.pull, !names.isEmpty else { throw TipError(.grammar, "a PULL needs at least one variable name") }
            guard names.count <= maxVariables else { throw TipError(.limit, "a PULL asks for \(names.count) variables (at most \(maxVariables))") }
            out.append(pipe)
            out.append(UInt8(ascii: "["))
            for (i, name) in names.enumerated() {
                guard isValidName(name) else { throw TipError(.grammar, "the variable name '\(name)' is not 1 to 100 of [a-z0-9_]") }
                if i > 0 { out.append(semicolon) }
                out.append(contentsOf: name.utf8)
            }
            out.append(UInt8(ascii: "]"))
        case .ping:
            break
        }
        try checkSize(out.count)
        return out
    }

    /// An MQTT `$tip/{serial}/push` payload (TagoTipServers.md §3.3): `[!N|]BODY`.
    public static func mqttPush(counter: UInt32?, body: TipPushBody) throws(TipError) -> [UInt8] {
        var out: [UInt8] = []
        if let counter {
            out.append(UInt8(ascii: "!"))
            out.append(contentsOf: String(counter).utf8)
            out.append(pipe)
        }
        try body.append(to: &out)
        try checkSize(out.count)
        return out
    }

    static func checkSize(_ n: Int) throws(TipError) {
        if n > maxFrameBytes { throw TipError(.tooLarge, "the frame has \(n) bytes (TagoTiP takes at most \(maxFrameBytes))") }
    }

    public static let pipe = UInt8(ascii: "|")
    static let semicolon = UInt8(ascii: ";")

    public static func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func describe(_ b: UInt8) -> String {
        b < 0x20 || b == 0x7F ? "the control character 0x\(hexString([b]))" : "'\(String(decoding: [b], as: UTF8.self))'"
    }

    // Character classes of §14.
    @inline(__always) static func isNameByte(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F }
    @inline(__always) static func isSerialByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D
    }
    @inline(__always) static func isHexByte(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46) }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    /// `# ; @ [ \ ] ^ { | }`: what a value must escape (and a unit cannot hold).
    @inline(__always) static func isStructural(_ b: UInt8) -> Bool {
        switch b {
        case 0x23, 0x3B, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x7B, 0x7C, 0x7D: return true
        default: return false
        }
    }
    /// UNITCHAR, with UTF-8 beyond ASCII (the text is valid UTF-8 already).
    @inline(__always) static func isUnitByte(_ b: UInt8) -> Bool { b >= 0x80 || (b >= 0x20 && b <= 0x7E && !isStructural(b)) }
    /// What may follow a backslash.
    @inline(__always) static func isEscapable(_ b: UInt8) -> Bool { isStructural(b) || b == 0x2C || b == 0x6E }
}

extension TipPushBody {
    /// The body as the PUSH frame, MQTT payload or HTTP body carries it.
    public func encoded() throws(TipError) -> [UInt8] {
        var out: [UInt8] = []
        try append(to: &out)
        return out
    }

    func append(to out: inout [UInt8]) throws(TipError) {
        switch self {
        case .structured(let body): try body.append(to: &out)
        case .hex(let digits):
            guard !digits.isEmpty, digits.utf8.count % 2 == 0, digits.utf8.allSatisfy(Tip.isHexByte) else {
                throw TipError(.grammar, "a >x passthrough needs pairs of hex digits")
            }
            out.append(contentsOf: ">x".utf8)
            out.append(contentsOf: digits.utf8)
        case .base64(let text):
            guard !text.isEmpty, text.utf8.allSatisfy(Tip.isBase64Byte) else { throw TipError(.grammar, "a >b passthrough needs base64 characters") }
            out.append(contentsOf: ">b".utf8)
            out.append(contentsOf: text.utf8)
        }
    }
}

extension Tip {
    @inline(__always) static func isBase64Byte(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || isDigit(b) || b == 0x2B || b == 0x2F || b == 0x3D
    }
}

extension TipStructuredBody {
    public func encoded() throws(TipError) -> [UInt8] {
        var out: [UInt8] = []
        try append(to: &out)
        return out
    }

    /// Body-level modifiers in the order both the spec (`^group @ts`) and the reference codec
    /// (`@ts ^group`, since February 2026) accept: never a group and a timestamp together at
    /// body level. A body group is written on each variable instead when a timestamp is there.
    func append(to out: inout [UInt8]) throws(TipError) {
        guard !variables.isEmpty else { throw TipError(.grammar, "a body needs at least one variable") }
        guard variables.count <= Tip.maxVariables else { throw TipError(.limit, "a body holds \(variables.count) variables (at most \(Tip.maxVariables))") }
        let groupOnVariables = group != nil && timestamp != nil
        if let group, !groupOnVariables {
            guard Tip.isValidName(group) else { throw TipError(.grammar, "the group '\(group)' is not 1 to 100 of [a-z0-9_]") }
            out.append(UInt8(ascii: "^"))
            out.append(contentsOf: group.utf8)
        }
        if let timestamp {
            out.append(UInt8(ascii: "@"))
            out.append(contentsOf: String(timestamp).utf8)
        }
        if !metadata.isEmpty { try Self.appendMetadata(metadata, to: &out) }
        out.append(UInt8(ascii: "["))
        for (i, v) in variables.enumerated() {
            if i > 0 { out.append(Tip.semicolon) }
            var v = v
            if groupOnVariables, v.group == nil { v.group = group }
            try v.append(to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    static func appendMetadata(_ pairs: [TipPair], to out: inout [UInt8]) throws(TipError) {
        guard pairs.count <= Tip.maxMetadataPairs else { throw TipError(.limit, "\(pairs.count) metadata pairs (TagoTiP takes at most \(Tip.maxMetadataPairs))") }
        out.append(UInt8(ascii: "{"))
        for (i, pair) in pairs.enumerated() {
            guard Tip.isValidName(pair.key) else { throw TipError(.grammar, "the metadata key '\(pair.key)' is not 1 to 100 of [a-z0-9_]") }
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: pair.key.utf8)
            out.append(UInt8(ascii: "="))
            try Tip.appendEscaped(pair.value, to: &out, what: "the metadata value of '\(pair.key)'")
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension TipVariable {
    func append(to out: inout [UInt8]) throws(TipError) {
        guard Tip.isValidName(name) else { throw TipError(.grammar, "the variable name '\(name)' is not 1 to 100 of [a-z0-9_]") }
        out.append(contentsOf: name.utf8)
        switch value {
        case .number(let text):
            guard Tip.isNumber(Array(text.utf8)) else { throw TipError(.grammar, "'\(text)' is not a TagoTiP number (\(name))") }
            out.append(contentsOf: ":=".utf8)
            out.append(contentsOf: text.utf8)
        case .string(let text):
            out.append(UInt8(ascii: "="))
            try Tip.appendEscaped(text, to: &out, what: "the value of '\(name)'")
        case .bool(let b):
            out.append(contentsOf: (b ? "?=true" : "?=false").utf8)
        case .location(let lat, let lng, let alt):
            for c in [lat, lng] + (alt.map { [$0] } ?? []) where !Tip.isNumber(Array(c.utf8)) {
                throw TipError(.grammar, "'\(c)' is not a TagoTiP coordinate (\(name))")
            }
            out.append(contentsOf: "@=".utf8)
            out.append(contentsOf: lat.utf8)
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: lng.utf8)
            if let alt { out += [UInt8(ascii: ",")] + Array(alt.utf8) }
        }
        if let unit {
            if case .location = value { throw TipError(.grammar, "a location cannot have a unit (\(name))") }
            if let problem = Tip.unitProblem(unit) { throw TipError(.unrepresentable, "\(problem) (\(name))") }
            out.append(UInt8(ascii: "#"))
            out.append(contentsOf: unit.utf8)
        }
        if let timestamp {
            out.append(UInt8(ascii: "@"))
            out.append(contentsOf: String(timestamp).utf8)
        }
        if let group {
            guard Tip.isValidName(group) else { throw TipError(.grammar, "the group '\(group)' is not 1 to 100 of [a-z0-9_] (\(name))") }
            out.append(UInt8(ascii: "^"))
            out.append(contentsOf: group.utf8)
        }
        if !metadata.isEmpty { try TipStructuredBody.appendMetadata(metadata, to: &out) }
    }
}

extension Tip {
    /// A string or metadata value, escaped (§4.4). Refused: an empty value, and control
    /// characters other than the newline (which is written `\n`): the grammar has no way to
    /// carry them.
    static func appendEscaped(_ text: String, to out: inout [UInt8], what: String) throws(TipError) {
        guard !text.isEmpty else { throw TipError(.unrepresentable, "\(what) is empty, which TagoTiP cannot carry") }
        for b in text.utf8 {
            if b == 0x0A {
                out += [0x5C, 0x6E]
            } else if b < 0x20 || b == 0x7F {
                throw TipError(.unrepresentable, "\(what) holds \(describe(b)), which TagoTiP cannot carry")
            } else if isStructural(b) || b == 0x2C {
                out += [0x5C, b]
            } else {
                out.append(b)
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`
    static func isNumber(_ s: ArraySlice<UInt8>) -> Bool {
        var i = s.startIndex
        if i < s.endIndex && s[i] == 0x2D { i += 1 }
        guard i < s.endIndex, isDigit(s[i]) else { return false }
        if s[i] == 0x30 {
            i += 1
        } else {
            while i < s.endIndex && isDigit(s[i]) { i += 1 }
        }
        if i < s.endIndex && s[i] == 0x2E {
            i += 1
            guard i < s.endIndex, isDigit(s[i]) else { return false }
            while i < s.endIndex && isDigit(s[i]) { i += 1 }
        }
        return i == s.endIndex
    }

    static func isNumber(_ s: [UInt8]) -> Bool { isNumber(s[...]) }
}

extension TipAck {
    /// Raw binding: `ACK|[!N|]STATUS[|DETAIL]`; MQTT binding: without the `ACK|`.
    public func encoded(raw: Bool) -> [UInt8] {
        var out: [UInt8] = raw ? Array("ACK|".utf8) : []
        if let counter { out.append(contentsOf: "!\(counter)|".utf8) }
        out.append(contentsOf: status.rawValue.utf8)
        if let detail { out += [Tip.pipe] + Array(detail.utf8) }
        return out
    }
}

extension TipVariable {
    /// This variable as it appears inside `[…]`, checked against the grammar.
    public func encoded() throws(TipError) -> [UInt8] {
        var out: [UInt8] = []
        try append(to: &out)
        return out
    }
}

/// A structured body assembled from variables encoded one at a time (`TipVariable.encoded()`),
/// so a sender can stop at the limits without encoding the body again for each variable.
public struct TipBodyWriter: Sendable {
    public private(set) var count = 0
    private var bytes: [UInt8] = [UInt8(ascii: "[")]
    /// The body stays at or under this many bytes.
    public let maxBytes: Int

    public init(maxBytes: Int = Tip.maxFrameBytes) {
        self.maxBytes = maxBytes
    }

    /// Adds an encoded variable; false (and nothing added) when the body would hold more than
    /// 100 variables or `maxBytes` bytes.
    public mutating func append(_ variable: [UInt8]) -> Bool {
        let size = bytes.count + (count > 0 ? 1 : 0) + variable.count + 1
        guard count < Tip.maxVariables, size <= maxBytes else { return false }
        if count > 0 { bytes.append(Tip.semicolon) }
        bytes += variable
        count += 1
        return true
    }

    /// `[v;v;…]`; nil while empty (an empty block is not valid).
    public var body: [UInt8]? { count > 0 ? bytes + [UInt8(ascii: "]")] : nil }
}
