/// A TOML document parser that keeps the line of every key, so configuration errors can say
/// where they are. Covers TOML 1.0 except dates and times (which the configuration never uses;
/// they are reported as such).
public enum TOMLValue: Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case array([TOMLNode])
    case table(TOMLTable)

    /// How the value's type is named in error messages.
    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A value and the line it was written on.
public struct TOMLNode: Sendable {
    public var value: TOMLValue
    public var line: Int
}

/// A table: keys in the order written, each with its line.
public final class TOMLTable: @unchecked Sendable {
    public private(set) var entries: [(key: String, node: TOMLNode)] = []
    public let line: Int
    /// Created implicitly by a dotted header or key (may still be defined explicitly once).
    var implicit: Bool
    /// Defined by an inline table or a static array: closed to later additions.
    var sealed = false

    init(line: Int, implicit: Bool = false) {
        self.line = line
        self.implicit = implicit
    }

    public subscript(key: String) -> TOMLNode? { entries.first { $0.key == key }?.node }

    func set(_ key: String, _ node: TOMLNode) { entries.append((key, node)) }

    func replace(_ key: String, _ node: TOMLNode) {
        if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].node = node } else { set(key, node) }
    }
}

/// Why a TOML text could not be parsed, and where.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "line \(line), column \(column): \(message)" }
}

public enum TOML {
    /// Parses a whole document into its root table.
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var p = TOMLParser(Array(text.utf8))
        return try p.document()
    }
}

struct TOMLParser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var lineStart = 0

    init(_ bytes: [UInt8]) {
        b = bytes
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3; lineStart = 3 }  // UTF-8 byte order mark
    }

    func error(_ message: String) -> TOMLError {
        TOMLError(line: line, column: i - lineStart + 1, message: message)
    }

    var peek: UInt8? { i < b.count ? b[i] : nil }

    mutating func skipBlank() {
        while let c = peek, c == 32 || c == 9 { i += 1 }
    }

    mutating func skipComment() throws(TOMLError) {
        guard peek == UInt8(ascii: "#") else { return }
        while let c = peek, c != 10 {
            if c < 0x20 && c != 9 && c != 13 { throw error("control character in comment") }
            i += 1
        }
    }

    mutating func newline() -> Bool {
        if peek == 13, i + 1 < b.count, b[i + 1] == 10 { i += 2; line += 1; lineStart = i; return true }
        if peek == 10 { i += 1; line += 1; lineStart = i; return true }
        return false
    }

    /// After a key/value pair or a header: only blanks and a comment before the newline.
    mutating func endOfLine() throws(TOMLError) {
        skipBlank()
        try skipComment()
        if i >= b.count { return }
        guard newline() else { throw error("expected the end of the line, found '\(Character(Unicode.Scalar(b[i])))'") }
    }

    /// Whitespace, newlines and comments inside arrays.
    mutating func skipArraySpace() throws(TOMLError) {
        while true {
            skipBlank()
            try skipComment()
            if !newline() { return }
        }
    }

    mutating func document() throws(TOMLError) -> TOMLTable {
        let root = TOMLTable(line: 1)
        var current = root
        while true {
            skipBlank()
            try skipComment()
            if newline() { continue }
            guard let c = peek else { return root }
            if c == UInt8(ascii: "[") {
                let headerLine = line
                i += 1
                let isArray = peek == UInt8(ascii: "[")
                if isArray { i += 1 }
                skipBlank()
                let path = try keyPath()
                skipBlank()
                guard peek == UInt8(ascii: "]") else { throw error("expected ']' to close the table header") }
                i += 1
                if isArray {
                    guard peek == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header") }
                    i += 1
                }
                try endOfLine()
                if isArray {
                    current = try appendArrayTable(root, path, line: headerLine)
                } else {
                    current = try table(root, path, line: headerLine, explicit: true)
                }
                continue
            }
            try keyValue(into: current)
            try endOfLine()
        }
    }

    /// Walks (creating) the tables along `path`, entering the last element of arrays of tables.
    mutating func table(_ root: TOMLTable, _ path: [String], line: Int, explicit: Bool) throws(TOMLError) -> TOMLTable {
        var t = root
        for (k, key) in path.enumerated() {
            let last = k == path.count - 1
            if let existing = t[key] {
                switch existing.value {
                case .table(let sub):
                    if sub.sealed { throw TOMLError(line: line, column: 1, message: "'\(key)' was defined inline at line \(existing.line) and cannot be extended") }
                    if last && explicit {
                        guard sub.implicit else { throw TOMLError(line: line, column: 1, message: "table '\(path.joined(separator: "."))' is already defined at line \(existing.line)") }
                        sub.implicit = false
                    }
                    t = sub
                case .array(let items):
                    guard case .table(let sub)? = items.last?.value, !last || !explicit else {
                        throw TOMLError(line: line, column: 1, message: "'\(key)' is already \(existing.value.typeName) (line \(existing.line)), not a table")
                    }
                    if sub.sealed { throw TOMLError(line: line, column: 1, message: "'\(key)' is a static array and cannot be extended") }
                    t = sub
                default:
                    throw TOMLError(line: line, column: 1, message: "'\(key)' is already \(existing.value.typeName) (line \(existing.line)), not a table")
                }
            } else {
                let sub = TOMLTable(line: line, implicit: !(last && explicit))
                t.set(key, TOMLNode(value: .table(sub), line: line))
                t = sub
            }
        }
        return t
    }

    mutating func appendArrayTable(_ root: TOMLTable, _ path: [String], line: Int) throws(TOMLError) -> TOMLTable {
        let parent = try table(root, Array(path.dropLast()), line: line, explicit: false)
        let key = path[path.count - 1]
        let fresh = TOMLTable(line: line)
        let node = TOMLNode(value: .table(fresh), line: line)
        if let existing = parent[key] {
            guard case .array(var items) = existing.value, items.allSatisfy({ if case .table(let t) = $0.value { return !t.sealed } else { return false } }) else {
                throw TOMLError(line: line, column: 1, message: "'\(path.joined(separator: "."))' is already \(existing.value.typeName) (line \(existing.line)), not an array of tables")
            }
            items.append(node)
            parent.replace(key, TOMLNode(value: .array(items), line: existing.line))
        } else {
            parent.set(key, TOMLNode(value: .array([node]), line: line))
        }
        return fresh
    }

    mutating func keyValue(into table: TOMLTable) throws(TOMLError) {
        let keyLine = line
        let path = try keyPath()
        skipBlank()
        guard peek == UInt8(ascii: "=") else { throw error("expected '=' after the key '\(path.joined(separator: "."))'") }
        i += 1
        skipBlank()
        let value = try self.value()
        var target = table
        for key in path.dropLast() {
            if let existing = target[key] {
                guard case .table(let sub) = existing.value, !sub.sealed else {
                    throw TOMLError(line: keyLine, column: 1, message: "'\(key)' is already \(existing.value.typeName) (line \(existing.line))")
                }
                target = sub
            } else {
                let sub = TOMLTable(line: keyLine, implicit: true)
                target.set(key, TOMLNode(value: .table(sub), line: keyLine))
                target = sub
            }
        }
        let key = path[path.count - 1]
        if let existing = target[key] {
            throw TOMLError(line: keyLine, column: 1, message: "key '\(path.joined(separator: "."))' is defined twice (first at line \(existing.line))")
        }
        target.set(key, TOMLNode(value: value, line: keyLine))
    }

    mutating func keyPath() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipBlank()
            parts.append(try simpleKey())
            skipBlank()
            if peek == UInt8(ascii: ".") { i += 1; continue }
            return parts
        }
    }

    mutating func simpleKey() throws(TOMLError) -> String {
        guard let c = peek else { throw error("expected a key") }
        if c == UInt8(ascii: "\"") { i += 1; return try basicString() }
        if c == UInt8(ascii: "'") { i += 1; return try literalString() }
        let start = i
        while let c = peek, (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45 { i += 1 }
        guard i > start else { throw error("expected a key (letters, digits, '_' or '-'), found '\(Character(Unicode.Scalar(c)))'") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        guard let c = peek else { throw error("expected a value after '='") }
        switch c {
        case UInt8(ascii: "\""):
            if b[i...].starts(with: [34, 34, 34]) { i += 3; return .string(try multilineBasic()) }
            i += 1
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if b[i...].starts(with: [39, 39, 39]) { i += 3; return .string(try multilineLiteral()) }
            i += 1
            return .string(try literalString())
        case UInt8(ascii: "["):
            let startLine = line
            i += 1
            var items: [TOMLNode] = []
            while true {
                try skipArraySpace()
                if peek == UInt8(ascii: "]") { i += 1; break }
                let itemLine = line
                items.append(TOMLNode(value: try value(), line: itemLine))
                try skipArraySpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "]") { i += 1; break }
                throw error(i >= b.count ? "array opened at line \(startLine) is not closed" : "expected ',' or ']' in the array")
            }
            return .array(items)
        case UInt8(ascii: "{"):
            i += 1
            let table = TOMLTable(line: line)
            skipBlank()
            if peek == UInt8(ascii: "}") { i += 1; table.sealed = true; return .table(table) }
            while true {
                skipBlank()
                try keyValue(into: table)
                skipBlank()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; break }
                throw error("expected ',' or '}' in the inline table (inline tables stay on one line)")
            }
            table.sealed = true
            return .table(table)
        case UInt8(ascii: "t"):
            if b[i...].starts(with: Array("true".utf8)) { i += 4; return .bool(true) }
        case UInt8(ascii: "f"):
            if b[i...].starts(with: Array("false".utf8)) { i += 5; return .bool(false) }
        default:
            break
        }
        return try number()
    }

    mutating func number() throws(TOMLError) -> TOMLValue {
        let start = i
        while let c = peek, !(c == 32 || c == 9 || c == 10 || c == 13 || c == 44 || c == 93 || c == 125 || c == 35) { i += 1 }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if text.isEmpty { throw error("expected a value") }
        if text.count >= 10, text.dropFirst(4).first == "-", text.prefix(4).allSatisfy(\.isNumber) {
            throw TOMLError(line: line, column: start - lineStart + 1, message: "dates and times are not supported here; write '\(text)' as a string")
        }
        let bad = TOMLError(line: line, column: start - lineStart + 1, message: "'\(text)' is not a valid value (strings need quotes)")
        var body = Substring(text)
        var negative = false
        if body.first == "+" || body.first == "-" { negative = body.first == "-"; body = body.dropFirst() }
        switch body {
        case "inf": return .float(negative ? -.infinity : .infinity)
        case "nan": return .float(.nan)
        default: break
        }
        func digitsOK(_ s: Substring, _ valid: (Character) -> Bool) -> Bool {
            !s.isEmpty && s.first != "_" && s.last != "_" && !s.contains("__") && s.allSatisfy { $0 == "_" || valid($0) }
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            let digits = body.dropFirst(2)
            guard text.first != "+" && text.first != "-", digitsOK(digits, { $0.isHexDigit && Int(String($0), radix: radix) != nil }),
                  let v = Int64(digits.filter { $0 != "_" }, radix: radix) else { throw bad }
            return .integer(v)
        }
        let isFloat = body.contains(".") || body.contains("e") || body.contains("E")
        let cleaned = String(text.filter { $0 != "_" })
        guard digitsOK(body, { $0.isNumber || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" || $0 == "-" }) else { throw bad }
        if isFloat {
            guard let v = Double(cleaned), body.first?.isNumber == true else { throw bad }
            return .float(v)
        }
        guard let v = Int64(cleaned), !(body.count > 1 && body.first == "0") else { throw bad }
        return .integer(v)
    }

    mutating func escape() throws(TOMLError) -> [UInt8] {
        guard let e = peek else { throw error("unterminated escape") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): return [8]
        case UInt8(ascii: "t"): return [9]
        case UInt8(ascii: "n"): return [10]
        case UInt8(ascii: "f"): return [12]
        case UInt8(ascii: "r"): return [13]
        case UInt8(ascii: "\""): return [34]
        case UInt8(ascii: "\\"): return [92]
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<(i + n)], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(v) else { throw error("invalid \\\(Character(Unicode.Scalar(e))) escape") }
            i += n
            return Array(String(Character(scalar)).utf8)
        default:
            throw error("unknown escape '\\\(Character(Unicode.Scalar(e)))' (valid: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX)")
        }
    }

    mutating func basicString() throws(TOMLError) -> String {
        var out: [UInt8] = []
        while true {
            guard let c = peek, c != 10 else { throw error("string is not closed on this line") }
            i += 1
            if c == 34 { return String(decoding: out, as: UTF8.self) }
            if c == 92 { out += try escape(); continue }
            if c < 0x20 && c != 9 { throw error("control character in string") }
            out.append(c)
        }
    }

    mutating func literalString() throws(TOMLError) -> String {
        let start = i
        while let c = peek, c != 39 {
            if c == 10 { throw error("string is not closed on this line") }
            i += 1
        }
        guard peek == 39 else { throw error("string is not closed") }
        defer { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    mutating func multilineBasic() throws(TOMLError) -> String {
        var out: [UInt8] = []
        _ = newline()
        while true {
            guard let c = peek else { throw error("multi-line string is not closed") }
            if b[i...].starts(with: [34, 34, 34]) {
                i += 3
                var extra = 0
                while peek == 34, extra < 2 { out.append(34); i += 1; extra += 1 }  // up to two quotes may end the content
                return String(decoding: out, as: UTF8.self)
            }
            if c == 92 {
                i += 1
                // A line-ending backslash trims the newline and the whitespace that follows.
                var j = i
                while j < b.count, b[j] == 32 || b[j] == 9 { j += 1 }
                if j < b.count, b[j] == 10 || b[j] == 13 {
                    i = j
                    while true { skipBlank(); if !newline() { break } }
                    continue
                }
                out += try escape()
                continue
            }
            if newline() { out.append(10); continue }
            out.append(c)
            i += 1
        }
    }

    mutating func multilineLiteral() throws(TOMLError) -> String {
        var out: [UInt8] = []
        _ = newline()
        while true {
            guard let c = peek else { throw error("multi-line string is not closed") }
            if b[i...].starts(with: [39, 39, 39]) { i += 3; return String(decoding: out, as: UTF8.self) }
            if newline() { out.append(10); continue }
            out.append(c)
            i += 1
        }
    }
}
