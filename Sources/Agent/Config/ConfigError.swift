import EdgeCore

/// A problem in a configuration file, naming the file, the line, the key and what would be valid:
/// `config/bench.toml:14: sensor[2].address: 0x99 is not a 7-bit I2C address; use 0x03 to 0x77`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, key: String?, _ message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        out += ": "
        if let key { out += "\(key): " }
        return out + message
    }
}

/// Every problem found in one file (the loader does not stop at the first).
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Reads the keys of one table, remembering which were used so unknown keys (typos) are errors.
struct TableReader {
    let table: TOMLTable
    /// The table's name in messages: `spool`, `sensor[2]`, `sensor[2].simulate`.
    let path: String
    let file: String
    private(set) var used: Set<String> = []
    /// Every key asked for, present or not, in order: the keys valid here.
    private(set) var asked: [String] = []
    var errors: [ConfigError] = []

    init(_ table: TOMLTable, path: String, file: String) {
        self.table = table
        self.path = path
        self.file = file
    }

    func keyName(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func fail(_ key: String, _ message: String, line: Int? = nil) {
        errors.append(ConfigError(file: file, line: line ?? table[key]?.line ?? table.line, key: keyName(key), message))
    }

    mutating func node(_ key: String) -> TOMLNode? {
        used.insert(key)
        if !asked.contains(key) { asked.append(key) }
        return table[key]
    }

    mutating func string(_ key: String) -> String? {
        guard let n = node(key) else { return nil }
        guard case .string(let s) = n.value else { fail(key, "expected a string in quotes, found \(n.value.typeName)"); return nil }
        return s
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let n = node(key) else { return nil }
        guard case .bool(let v) = n.value else { fail(key, "expected true or false, found \(n.value.typeName)"); return nil }
        return v
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int64>, hint: String? = nil) -> Int64? {
        guard let n = node(key) else { return nil }
        guard case .integer(let v) = n.value else { fail(key, "expected an integer, found \(n.value.typeName)\(hint.map { "; \($0)" } ?? "")"); return nil }
        guard range.contains(v) else { fail(key, "\(v) is out of range; use \(range.lowerBound) to \(range.upperBound)\(hint.map { "; \($0)" } ?? "")"); return nil }
        return v
    }

    mutating func number(_ key: String) -> Double? {
        guard let n = node(key) else { return nil }
        switch n.value {
        case .integer(let v): return Double(v)
        case .float(let v): return v
        default: fail(key, "expected a number, found \(n.value.typeName)"); return nil
        }
    }

    /// One of `choices`, with the valid ones named on error.
    mutating func choice(_ key: String, _ choices: [String]) -> String? {
        guard let s = string(key) else { return nil }
        guard choices.contains(s) else {
            let near = choices.min { editDistance($0, s) < editDistance($1, s) }.flatMap { editDistance($0, s) <= 2 ? $0 : nil }
            fail(key, "'\(s)' is not valid\(near.map { " (did you mean \"\($0)\"?)" } ?? ""); use one of: \(choices.map { "\"\($0)\"" }.joined(separator: ", "))")
            return nil
        }
        return s
    }

    /// A duration (`500ms`, `10s`, `5m`) of at least `minimum` milliseconds.
    mutating func duration(_ key: String, minimum: Int64) -> Int64? {
        guard let n = node(key) else { return nil }
        guard case .string(let s) = n.value else {
            fail(key, "expected a duration in quotes such as \"10s\" or \"500ms\", found \(n.value.typeName)")
            return nil
        }
        guard let ms = parseDuration(s) else { fail(key, "'\(s)' is not a duration; write e.g. \"500ms\", \"10s\", \"5m\" or \"1h\""); return nil }
        guard ms >= minimum else { fail(key, "\(s) is below the minimum of \(formatDuration(minimum))"); return nil }
        return ms
    }

    /// Whether the table has `key` (without reading it).
    func has(_ key: String) -> Bool { table[key] != nil }

    mutating func subtable(_ key: String) -> TOMLTable? {
        guard let n = node(key) else { return nil }
        guard case .table(let t) = n.value else { fail(key, "expected a table ([\(keyName(key))]), found \(n.value.typeName)"); return nil }
        return t
    }

    /// Unknown keys are errors: a typo must not be silently ignored.
    mutating func rejectUnknown(valid: [String]) {
        // Keys not read but valid here (a table whose other problems stopped it being read) are
        // not unknown: reporting them would bury the real error under wrong suggestions.
        for (key, n) in table.entries where !used.contains(key) && !valid.contains(key) {
            let suggestion = valid.min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 2 ? $0 : nil }
            let list = valid.joined(separator: ", ")
            errors.append(ConfigError(file: file, line: n.line, key: keyName(key),
                                      "unknown key\(suggestion.map { " (did you mean '\($0)'?)" } ?? ""); valid keys here: \(list)"))
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var row = Array(0...y.count)
    for i in 1...x.count {
        var previous = row[0]
        row[0] = i
        for j in 1...y.count {
            let old = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
            previous = old
        }
    }
    return row[y.count]
}
