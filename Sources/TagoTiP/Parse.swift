/// Parsing, strict: what the grammar of §14 does not produce is refused with the byte where it
/// went wrong. Stricter than the reference codec where the codec lets things through (an
/// unknown escape, an empty list item, a control character in a value, bytes after `]`), so a
/// payload this parser accepts is one every TagoTiP server accepts. One deliberate allowance:
/// body-level `^group` and `@timestamp` are accepted in either order, because the spec's ABNF
/// writes `^group @ts` and the reference codec (since February 2026) `@ts ^group`.
extension Tip {
    /// A raw-binding uplink frame (`PUSH|…`, `PULL|…`, `PING|…`). One trailing LF is allowed.
    public static func parseFrame(_ bytes: [UInt8]) throws(TipError) -> TipFrame {
        let text = try prepare(bytes)
        let fields = splitFields(text)
        guard let method = TipMethod(rawValue: string(fields[0])) else {
            throw TipError(.grammar, "'\(string(fields[0]).prefix(16))' is not a TagoTiP method (PUSH, PULL, PING)", at: fields[0].startIndex)
        }
        var i = 1
        var counter: UInt32?
        if fields.count > 1, fields[1].first == UInt8(ascii: "!") {
            counter = try parseCounter(fields[1])
            i = 2
        }
        let wanted = i + (method == .ping ? 2 : 3)
        guard fields.count == wanted else {
            throw TipError(.grammar, "a \(method.rawValue) frame has \(wanted) fields separated by '|', this one \(fields.count)", at: fields.last?.startIndex ?? 0)
        }
        let auth = fields[i]
        guard auth.count == 16, auth.allSatisfy(isHexByte) else { throw TipError(.grammar, "the Authorization Hash must be 16 hex characters", at: auth.startIndex) }
        let serial = fields[i + 1]
        guard !serial.isEmpty, serial.count <= maxNameBytes, serial.allSatisfy(isSerialByte) else {
            throw TipError(.grammar, "the serial must be 1 to 100 of [A-Za-z0-9_-]", at: serial.startIndex)
        }
        var frame = TipFrame(method: method, counter: counter, auth: string(auth), serial: string(serial))
        switch method {
        case .push: frame.push = try parseBody(fields[i + 2])
        case .pull: frame.pull = try parsePullList(fields[i + 2])
        case .ping: break
        }
        return frame
    }

    /// A PUSH body by itself, as an HTTP `POST /v1/tip/{serial}` carries it.
    public static func parsePushBody(_ bytes: [UInt8]) throws(TipError) -> TipPushBody {
        try parseBody(try prepare(bytes))
    }

    /// An MQTT `$tip/{serial}/push` payload: `[!N|]BODY`.
    public static func parseMQTTPush(_ bytes: [UInt8]) throws(TipError) -> (counter: UInt32?, body: TipPushBody) {
        let text = try prepare(bytes)
        let fields = splitFields(text)
        if fields[0].first == UInt8(ascii: "!") {
            guard fields.count == 2 else { throw TipError(.grammar, "an MQTT push payload is '!N|BODY'", at: fields.last?.startIndex ?? 0) }
            return (try parseCounter(fields[0]), try parseBody(fields[1]))
        }
        guard fields.count == 1 else { throw TipError(.grammar, "an unescaped '|' in the body", at: fields[1].startIndex - 1) }
        return (nil, try parseBody(fields[0]))
    }

    /// An answer: `ACK|[!N|]STATUS[|DETAIL]` (raw binding) or `[!N|]STATUS[|DETAIL]` (MQTT `/ack`,
    /// and the TagoTiP/S inner frame).
    public static func parseAck(_ bytes: [UInt8], raw: Bool) throws(TipError) -> TipAck {
        let text = try prepare(bytes)
        var fields = splitFields(text)[...]
        if raw {
            guard fields.first.map(string) == "ACK" else { throw TipError(.grammar, "an answer starts with 'ACK|'") }
            fields = fields.dropFirst()
        }
        var counter: UInt32?
        if let first = fields.first, first.first == UInt8(ascii: "!") {
            counter = try parseCounter(first)
            fields = fields.dropFirst()
        }
        guard let statusField = fields.first, let status = TipAck.Status(rawValue: string(statusField)) else {
            throw TipError(.grammar, "the status must be OK, PONG, CMD or ERR", at: fields.first?.startIndex ?? 0)
        }
        fields = fields.dropFirst()
        guard fields.count <= 1 else { throw TipError(.grammar, "an answer has at most one detail after its status", at: fields.last!.startIndex) }
        guard let detail = fields.first else { return TipAck(counter: counter, status: status) }
        guard !detail.isEmpty else { throw TipError(.grammar, "an empty detail", at: detail.startIndex) }
        if status == .ok, detail.first == UInt8(ascii: "[") {
            _ = try parseStructured(detail)  // a PULL answer: a variable list
        } else if status == .ok {
            guard detail.allSatisfy(isDigit) else { throw TipError(.grammar, "OK's detail is a count or a variable list", at: detail.startIndex) }
        } else if let bad = detail.firstIndex(where: { $0 < 0x21 || $0 > 0x7E }) {
            throw TipError(.grammar, "\(describe(detail[bad])) in a detail (printable ASCII without spaces)", at: bad)
        }
        return TipAck(counter: counter, status: status, detail: string(detail))
    }

    // MARK: - pieces

    /// The text without its optional trailing LF, refused if too large, not UTF-8, or holding NUL
    /// or a LF.
    static func prepare(_ bytes: [UInt8]) throws(TipError) -> ArraySlice<UInt8> {
        var text = bytes[...]
        if text.last == 0x0A { text = text.dropLast() }
        try checkSize(text.count)
        guard !text.isEmpty else { throw TipError(.grammar, "an empty frame") }
        if let bad = text.firstIndex(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D }) {
            throw TipError(.grammar, "\(describe(text[bad])) inside a frame", at: bad)
        }
        if let bad = firstInvalidUTF8(text) { throw TipError(.grammar, "bytes that are not UTF-8", at: bad) }
        return text
    }

    /// Splits on `|` that no backslash escapes.
    static func splitFields(_ text: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var start = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0x5C {
                i += 2
                continue
            }
            if text[i] == pipe {
                fields.append(text[start..<i])
                start = i + 1
            }
            i += 1
        }
        fields.append(text[start..<text.endIndex])
        return fields
    }

    /// Splits on `separator` outside escapes, every part non-empty.
    static func splitList(_ text: ArraySlice<UInt8>, on separator: UInt8, what: String) throws(TipError) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = text.startIndex
        var i = text.startIndex
        while i <= text.endIndex {
            if i < text.endIndex && text[i] == 0x5C {
                i += 2
                continue
            }
            if i >= text.endIndex || text[i] == separator {
                let end = min(i, text.endIndex)
                guard start < end else { throw TipError(.grammar, "an empty \(what)", at: start) }
                parts.append(text[start..<end])
                start = end + 1
            }
            i += 1
        }
        return parts
    }

    static func parseCounter(_ field: ArraySlice<UInt8>) throws(TipError) -> UInt32 {
        let digits = field.dropFirst()
        guard !digits.isEmpty, digits.allSatisfy(isDigit), digits.count == 1 || digits.first != 0x30, digits.count <= 10,
              let n = UInt32(string(digits)) else {
            throw TipError(.grammar, "the counter is '!' and a decimal of 32 bits without leading zeros", at: field.startIndex)
        }
        return n
    }

    static func parseBody(_ body: ArraySlice<UInt8>) throws(TipError) -> TipPushBody {
        guard !body.isEmpty else { throw TipError(.grammar, "an empty body", at: body.startIndex) }
        if body.first == UInt8(ascii: ">") {
            let flag = body.dropFirst().first
            let data = body.dropFirst(2)
            if flag == UInt8(ascii: "x") {
                guard !data.isEmpty, data.count % 2 == 0, data.allSatisfy(isHexByte) else {
                    throw TipError(.grammar, "a >x passthrough is pairs of hex digits", at: data.startIndex)
                }
                return .hex(string(data))
            }
            if flag == UInt8(ascii: "b") {
                guard !data.isEmpty, data.allSatisfy(isBase64Byte) else { throw TipError(.grammar, "a >b passthrough is base64", at: data.startIndex) }
                return .base64(string(data))
            }
            throw TipError(.grammar, "a passthrough is '>x' or '>b'", at: body.startIndex)
        }
        return .structured(try parseStructured(body))
    }

    /// `[^group][@ts][{meta}][var;var;…]` (group and timestamp in either order).
    static func parseStructured(_ body: ArraySlice<UInt8>) throws(TipError) -> TipStructuredBody {
        guard let open = firstUnescaped(UInt8(ascii: "["), in: body) else { throw TipError(.grammar, "no '[' opens the variables", at: body.startIndex) }
        var result = TipStructuredBody(variables: [])
        var mods = body[body.startIndex..<open]
        var seenGroup = false, seenTime = false
        while let b = mods.first, b == UInt8(ascii: "^") || b == UInt8(ascii: "@") {
            let end = mods.dropFirst().firstIndex { $0 == UInt8(ascii: "^") || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "{") } ?? mods.endIndex
            let value = mods[(mods.startIndex + 1)..<end]
            if b == UInt8(ascii: "^") {
                guard !seenGroup else { throw TipError(.grammar, "a second body-level group", at: mods.startIndex) }
                seenGroup = true
                result.group = try name(value, what: "group")
            } else {
                guard !seenTime else { throw TipError(.grammar, "a second body-level timestamp", at: mods.startIndex) }
                seenTime = true
                result.timestamp = try timestamp(value)
            }
            mods = mods[end...]
        }
        if mods.first == UInt8(ascii: "{") {
            guard mods.last == UInt8(ascii: "}"), mods.count >= 2 else { throw TipError(.grammar, "body metadata is '{…}' just before '['", at: mods.startIndex) }
            result.metadata = try metadata(mods.dropFirst().dropLast())
            mods = mods[mods.endIndex...]
        }
        guard mods.isEmpty else { throw TipError(.grammar, "before '[' only ^group, @timestamp and {metadata} may come", at: mods.startIndex) }
        let list = body[(open + 1)...]
        guard let close = firstUnescaped(UInt8(ascii: "]"), in: list) else { throw TipError(.grammar, "no ']' closes the variables", at: body.endIndex) }
        guard close == body.endIndex - 1 else { throw TipError(.grammar, "bytes after the closing ']'", at: close + 1) }
        let items = try splitList(list[list.startIndex..<close], on: semicolon, what: "variable (two ';' in a row, or one at an end)")
        guard items.count <= maxVariables else { throw TipError(.limit, "\(items.count) variables (at most \(maxVariables))", at: open) }
        for item in items { result.variables.append(try variable(item)) }
        return result
    }

    static func parsePullList(_ body: ArraySlice<UInt8>) throws(TipError) -> [String] {
        guard body.first == UInt8(ascii: "["), body.last == UInt8(ascii: "]"), body.count >= 2 else {
            throw TipError(.grammar, "a PULL body is '[name;name;…]'", at: body.startIndex)
        }
        let items = try splitList(body.dropFirst().dropLast(), on: semicolon, what: "name")
        guard items.count <= maxVariables else { throw TipError(.limit, "\(items.count) names (at most \(maxVariables))", at: body.startIndex) }
        var names: [String] = []
        for item in items { names.append(try name(item, what: "variable name")) }
        return names
    }

    static func variable(_ s: ArraySlice<UInt8>) throws(TipError) -> TipVariable {
        var i = s.startIndex
        while i < s.endIndex && isNameByte(s[i]) { i += 1 }
        let nameBytes = s[s.startIndex..<i]
        guard i < s.endIndex else { throw TipError(.grammar, "a variable without an operator (:=, =, ?=, @=)", at: s.startIndex) }
        enum Op { case number, string, bool, location }
        let op: Op
        let b = s[i]
        let next = i + 1 < s.endIndex ? s[i + 1] : 0
        if b == UInt8(ascii: "=") {
            op = .string
            i += 1
        } else if next == UInt8(ascii: "=") && b == UInt8(ascii: ":") {
            op = .number
            i += 2
        } else if next == UInt8(ascii: "=") && b == UInt8(ascii: "?") {
            op = .bool
            i += 2
        } else if next == UInt8(ascii: "=") && b == UInt8(ascii: "@") {
            op = .location
            i += 2
        } else {
            throw TipError(.grammar, "\(describe(b)) in a variable name ([a-z0-9_], then :=, =, ?= or @=)", at: i)
        }
        let varName = try name(nameBytes, what: "variable name")
        // The value runs to the first unescaped suffix mark.
        let valueStart = i
        while i < s.endIndex {
            let c = s[i]
            if c == 0x5C && op == .string {
                guard i + 1 < s.endIndex, isEscapable(s[i + 1]) else { throw TipError(.grammar, "an unknown escape in a value", at: i) }
                i += 2
                continue
            }
            if c == UInt8(ascii: "#") || c == UInt8(ascii: "@") || c == UInt8(ascii: "^") || c == UInt8(ascii: "{") { break }
            i += 1
        }
        let raw = s[valueStart..<i]
        var v: TipVariable
        switch op {
        case .number:
            guard isNumber(raw) else { throw TipError(.grammar, "'\(string(raw).prefix(40))' is not a number (-?(0|[1-9][0-9]*)(.[0-9]+)?)", at: valueStart) }
            v = TipVariable(name: varName, value: .number(string(raw)))
        case .string:
            v = TipVariable(name: varName, value: .string(try unescape(raw, allowComma: true, what: "value")))
        case .bool:
            guard raw.elementsEqual("true".utf8) || raw.elementsEqual("false".utf8) else { throw TipError(.grammar, "a boolean is true or false", at: valueStart) }
            v = TipVariable(name: varName, value: .bool(raw.first == UInt8(ascii: "t")))
        case .location:
            let parts = raw.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard parts.count == 2 || parts.count == 3, parts.allSatisfy({ isNumber($0) }) else {
                throw TipError(.grammar, "a location is lat,lng or lat,lng,alt in numbers", at: valueStart)
            }
            v = TipVariable(name: varName, value: .location(lat: string(parts[0]), lng: string(parts[1]), alt: parts.count == 3 ? string(parts[2]) : nil))
        }
        if i < s.endIndex && s[i] == UInt8(ascii: "#") {
            guard op != .location else { throw TipError(.grammar, "a location cannot have a unit", at: i) }
            let end = s[(i + 1)...].firstIndex { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "^") || $0 == UInt8(ascii: "{") } ?? s.endIndex
            let unit = s[(i + 1)..<end]
            guard !unit.isEmpty, unit.count <= maxUnitBytes else { throw TipError(.grammar, "a unit is 1 to \(maxUnitBytes) bytes", at: i + 1) }
            if let bad = unit.firstIndex(where: { !isUnitByte($0) }) { throw TipError(.grammar, "\(describe(unit[bad])) in a unit", at: bad) }
            v.unit = string(unit)
            i = end
        }
        if i < s.endIndex && s[i] == UInt8(ascii: "@") {
            let end = s[(i + 1)...].firstIndex { $0 == UInt8(ascii: "^") || $0 == UInt8(ascii: "{") } ?? s.endIndex
            v.timestamp = try timestamp(s[(i + 1)..<end])
            i = end
        }
        if i < s.endIndex && s[i] == UInt8(ascii: "^") {
            let end = s[(i + 1)...].firstIndex { $0 == UInt8(ascii: "{") } ?? s.endIndex
            v.group = try name(s[(i + 1)..<end], what: "group")
            i = end
        }
        if i < s.endIndex && s[i] == UInt8(ascii: "{") {
            let inner = s[(i + 1)...]
            guard let close = firstUnescaped(UInt8(ascii: "}"), in: inner) else { throw TipError(.grammar, "no '}' closes the metadata", at: i) }
            v.metadata = try metadata(inner[inner.startIndex..<close])
            i = close + 1
        }
        guard i == s.endIndex else { throw TipError(.grammar, "\(describe(s[i])) out of place after a variable's value (order: #unit @time ^group {meta})", at: i) }
        return v
    }

    static func metadata(_ s: ArraySlice<UInt8>) throws(TipError) -> [TipPair] {
        let pairs = try splitList(s, on: UInt8(ascii: ","), what: "metadata pair")
        guard pairs.count <= maxMetadataPairs else { throw TipError(.limit, "\(pairs.count) metadata pairs (at most \(maxMetadataPairs))", at: s.startIndex) }
        var out: [TipPair] = []
        for pair in pairs {
            guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { throw TipError(.grammar, "a metadata pair is key=value", at: pair.startIndex) }
            let key = try name(pair[pair.startIndex..<eq], what: "metadata key")
            out.append(TipPair(key, try unescape(pair[(eq + 1)...], allowComma: false, what: "metadata value")))
        }
        return out
    }

    static func name(_ s: ArraySlice<UInt8>, what: String) throws(TipError) -> String {
        guard !s.isEmpty, s.count <= maxNameBytes else { throw TipError(.grammar, "a \(what) is 1 to \(maxNameBytes) bytes", at: s.startIndex) }
        if let bad = s.firstIndex(where: { !isNameByte($0) }) { throw TipError(.grammar, "\(describe(s[bad])) in a \(what) ([a-z0-9_])", at: bad) }
        return string(s)
    }

    static func timestamp(_ s: ArraySlice<UInt8>) throws(TipError) -> UInt64 {
        guard !s.isEmpty, s.allSatisfy(isDigit) else { throw TipError(.grammar, "a timestamp is digits (UNIX milliseconds)", at: s.startIndex) }
        guard let t = UInt64(string(s)) else { throw TipError(.grammar, "a timestamp beyond 64 bits", at: s.startIndex) }
        return t
    }

    /// VALCHAR / METAVALCHAR with the escapes of §4.4 decoded.
    static func unescape(_ s: ArraySlice<UInt8>, allowComma: Bool, what: String) throws(TipError) -> String {
        guard !s.isEmpty else { throw TipError(.grammar, "an empty \(what)", at: s.startIndex) }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        while i < s.endIndex {
            let b = s[i]
            if b == 0x5C {
                guard i + 1 < s.endIndex, isEscapable(s[i + 1]) else { throw TipError(.grammar, "an unknown escape in a \(what)", at: i) }
                out.append(s[i + 1] == 0x6E ? 0x0A : s[i + 1])
                i += 2
                continue
            }
            if b < 0x20 || b == 0x7F || isStructural(b) || (b == 0x2C && !allowComma) {
                throw TipError(.grammar, "\(describe(b)) unescaped in a \(what)", at: i)
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func firstUnescaped(_ target: UInt8, in s: ArraySlice<UInt8>) -> Int? {
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == 0x5C {
                i += 2
                continue
            }
            if s[i] == target { return i }
            i += 1
        }
        return nil
    }

    static func string(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }

    /// Where `s` stops being well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF).
    static func firstInvalidUTF8(_ s: ArraySlice<UInt8>) -> Int? {
        var i = s.startIndex
        while i < s.endIndex {
            let b = s[i]
            if b < 0x80 {
                i += 1
                continue
            }
            let n: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: n = 1
            case 0xE0: n = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: n = 2
            case 0xED: n = 2; hi = 0x9F
            case 0xF0: n = 3; lo = 0x90
            case 0xF1...0xF3: n = 3
            case 0xF4: n = 3; hi = 0x8F
            default: return i
            }
            for k in 1...n {
                guard i + k < s.endIndex else { return i }
                let c = s[i + k]
                if k == 1 {
                    guard c >= lo && c <= hi else { return i }
                } else {
                    guard c >= 0x80 && c <= 0xBF else { return i }
                }
            }
            i += n + 1
        }
        return nil
    }
}
