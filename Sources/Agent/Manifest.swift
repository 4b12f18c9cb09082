#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit

/// One gateway of a provisioning manifest.
public struct GatewaySpec: Sendable, Equatable {
    public var serial: String
    public var name: String
    public var tags: [(key: String, value: String)] = []
    public var params: [(key: String, value: String)] = []
    public var template: String?
    /// `mutable` or `immutable` (TagoIO's device data storage).
    public var type = "mutable"
    /// TagoIO's generic HTTPS network and connector unless the manifest names others.
    public var network = GatewaySpec.genericNetwork
    public var connector = GatewaySpec.genericConnector
    /// The device token's permission (`full`, `write`, `read`) and expiry (`never`, `1 year`, an ISO date).
    public var tokenPermission = "full"
    public var tokenExpire = "never"
    /// A dashboard template (JSON in the templates folder) made for the gateway, and an access
    /// rule template; `{serial}`, `{name}`, `{device_id}`, `{dashboard_id}` and `{tag:KEY}` in
    /// their strings are filled in.
    public var dashboard: String?
    public var accessRule: String?
    /// Where the manifest defines it.
    public var line = 0

    /// TagoIO's "Custom HTTPS" network and connector: the ones its own analysis examples create
    /// devices with (`network: "5bbd0d144051a50034cd19fb"`, `connector: "5f5a8f3351d4db99c40dece5"`).
    public static let genericNetwork = "5bbd0d144051a50034cd19fb"
    public static let genericConnector = "5f5a8f3351d4db99c40dece5"

    public init(serial: String, name: String, tags: [(key: String, value: String)] = [], params: [(key: String, value: String)] = [],
                template: String? = nil) {
        self.serial = serial
        self.name = name
        self.tags = tags
        self.params = params
        self.template = template
    }

    public static func == (a: GatewaySpec, b: GatewaySpec) -> Bool {
        a.serial == b.serial && a.name == b.name && a.template == b.template && a.type == b.type && a.network == b.network
            && a.connector == b.connector && a.tokenPermission == b.tokenPermission && a.tokenExpire == b.tokenExpire
            && a.dashboard == b.dashboard && a.accessRule == b.accessRule
            && a.tags.map { "\($0.key)=\($0.value)" } == b.tags.map { "\($0.key)=\($0.value)" }
            && a.params.map { "\($0.key)=\($0.value)" } == b.params.map { "\($0.key)=\($0.value)" }
    }
}

/// A provisioning manifest, CSV or TOML, checked whole before any API call: every problem is
/// reported with its line.
///
/// CSV: a header row naming the columns (`serial` and `name` required; `tags` and `params` as
/// `key=value;key=value`; `template`, `type`, `network`, `connector`, `token_permission`,
/// `token_expire` optional), one gateway a row.
///
/// TOML (a name ending in `.toml`): an optional `[defaults]` table (`template`, `type`, `network`,
/// `connector`, `token_permission`, `token_expire`, `tags`, `params`) and one `[[gateway]]` table
/// per gateway with `serial`, `name` and any of the same keys; tags and params are tables of
/// strings (`tags = { site = "north" }`), a gateway's merged over the defaults'.
public enum Manifest {
    static let optionalKeys = ["template", "type", "network", "connector", "token_permission", "token_expire", "dashboard", "access_rule"]

    /// - Parameter templateExists: whether a `template` name can be read (checked here, with its line).
    public static func parse(_ text: String, file: String, templateExists: (String) -> Bool = { _ in true }) throws(ConfigErrors) -> [GatewaySpec] {
        var (specs, errors) = file.lowercased().hasSuffix(".toml") ? try parseTOML(text, file: file) : try parseCSV(text, file: file)
        var seen: [String: Int] = [:]
        for g in specs {
            if let first = seen[g.serial] { errors.append(ConfigError(file: file, line: g.line, key: "serial", "'\(g.serial)' also on line \(first)")) } else { seen[g.serial] = g.line }
            if let problem = serialProblem(g.serial) { errors.append(ConfigError(file: file, line: g.line, key: "serial", problem)) }
            for t in g.tags {
                if let problem = tagProblem(t) { errors.append(ConfigError(file: file, line: g.line, key: "tags", problem)) }
            }
            for p in g.params where p.key.isEmpty { errors.append(ConfigError(file: file, line: g.line, key: "params", "a parameter has no key (\(p.key)=\(p.value))")) }
            if !["mutable", "immutable"].contains(g.type) { errors.append(ConfigError(file: file, line: g.line, key: "type", "'\(g.type)' is not valid; use \"mutable\" or \"immutable\"")) }
            if !["full", "write", "read"].contains(g.tokenPermission) {
                errors.append(ConfigError(file: file, line: g.line, key: "token_permission", "'\(g.tokenPermission)' is not valid; use \"full\", \"write\" or \"read\""))
            }
            if !validExpiry(g.tokenExpire) {
                errors.append(ConfigError(file: file, line: g.line, key: "token_expire", "'\(g.tokenExpire)' is not valid; use \"never\", a span such as \"1 year\" or \"90 days\", or a date (2027-12-31)"))
            }
            for (key, id) in [("network", g.network), ("connector", g.connector)] where id.isEmpty || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                errors.append(ConfigError(file: file, line: g.line, key: key, "'\(id)' is not a TagoIO id (letters and digits)"))
            }
            for (key, name) in [("template", g.template), ("dashboard", g.dashboard), ("access_rule", g.accessRule)] {
                if let name, !templateExists(name) { errors.append(ConfigError(file: file, line: g.line, key: key, "no template '\(name)' (looked up in the templates folder)")) }
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors.sorted { ($0.line ?? 0) < ($1.line ?? 0) }) }
        guard !specs.isEmpty else { throw ConfigErrors(errors: [ConfigError(file: file, line: nil, key: nil, "the manifest lists no gateway")]) }
        return specs
    }

    static func serialProblem(_ serial: String) -> String? {
        if serial.contains(where: { $0 == "/" || $0 == "\\" || $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) || serial == "." || serial == ".." {
            return "'\(serial)' cannot name a folder (no slashes, spaces or control characters)"
        }
        return nil
    }

    static func tagProblem(_ t: (key: String, value: String)) -> String? {
        if t.key.isEmpty { return "a tag has no key (=\(t.value))" }
        if t.key == "serial" { return "the serial tag comes from the serial column; do not set it in tags" }
        if t.key.count > 100 || t.value.count > 100 { return "tag '\(t.key.prefix(40))' is longer than 100 characters" }
        if (t.key + t.value).contains(where: { $0.asciiValue.map { $0 < 0x20 } == true }) { return "tag '\(t.key)' holds a control character" }
        return nil
    }

    /// `never`, `N unit(s)` (minute, hour, day, week, month, year), or an ISO date or time.
    static func validExpiry(_ text: String) -> Bool {
        if text == "never" { return true }
        if Timestamp(iso8601: text) != nil || Timestamp(iso8601: text + "T00:00:00Z") != nil { return true }
        let parts = text.split(separator: " ")
        guard parts.count == 2, let n = Int(parts[0]), n > 0 else { return false }
        let unit = parts[1].hasSuffix("s") ? String(parts[1].dropLast()) : String(parts[1])
        return ["minute", "hour", "day", "week", "month", "quarter", "year"].contains(unit)
    }

    static func parseCSV(_ text: String, file: String) throws(ConfigErrors) -> ([GatewaySpec], [ConfigError]) {
        var errors: [ConfigError] = []
        var rows = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { ($0.offset + 1, String($0.element)) }
        rows = rows.filter { !$0.1.trimmingWhitespace().isEmpty && !$0.1.hasPrefix("#") }
        guard let header = rows.first else { throw ConfigErrors(errors: [ConfigError(file: file, line: nil, key: nil, "the manifest is empty")]) }
        let columns = splitCSV(header.1).map { $0.lowercased() }
        let valid = ["serial", "name", "tags", "params"] + optionalKeys
        for required in ["serial", "name"] where !columns.contains(required) {
            errors.append(ConfigError(file: file, line: header.0, key: nil, "the header has no '\(required)' column (columns: \(columns.joined(separator: ", ")))"))
        }
        for unknown in columns where !valid.contains(unknown) {
            errors.append(ConfigError(file: file, line: header.0, key: unknown, "unknown column; valid: \(valid.joined(separator: ", "))"))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        var specs: [GatewaySpec] = []
        for (line, text) in rows.dropFirst() {
            let cells = splitCSV(text)
            func cell(_ name: String) -> String { columns.firstIndex(of: name).flatMap { $0 < cells.count ? cells[$0] : nil } ?? "" }
            let serial = cell("serial"), name = cell("name")
            if serial.isEmpty || name.isEmpty { errors.append(ConfigError(file: file, line: line, key: nil, "serial and name are required")); continue }
            func pairs(_ column: String) -> [(key: String, value: String)]? {
                var out: [(key: String, value: String)] = []
                for part in cell(column).split(separator: ";") where !String(part).trimmingWhitespace().isEmpty {
                    let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).trimmingWhitespace() }
                    guard kv.count == 2 else {
                        errors.append(ConfigError(file: file, line: line, key: column, "'\(part)' is not key=value (separate pairs with ';')"))
                        return nil
                    }
                    out.append((kv[0], kv[1]))
                }
                return out
            }
            guard let tags = pairs("tags"), let params = pairs("params") else { continue }
            var g = GatewaySpec(serial: serial, name: name, tags: tags, params: params)
            g.line = line
            let template = cell("template")
            if !template.isEmpty { g.template = template }
            if !cell("type").isEmpty { g.type = cell("type") }
            if !cell("network").isEmpty { g.network = cell("network") }
            if !cell("connector").isEmpty { g.connector = cell("connector") }
            if !cell("token_permission").isEmpty { g.tokenPermission = cell("token_permission") }
            if !cell("token_expire").isEmpty { g.tokenExpire = cell("token_expire") }
            if !cell("dashboard").isEmpty { g.dashboard = cell("dashboard") }
            if !cell("access_rule").isEmpty { g.accessRule = cell("access_rule") }
            specs.append(g)
        }
        return (specs, errors)
    }

    static func parseTOML(_ text: String, file: String) throws(ConfigErrors) -> ([GatewaySpec], [ConfigError]) {
        let root: TOMLTable
        do {
            root = try TOML.parse(text)
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: file, line: error.line, key: nil, error.message)])
        }
        var errors: [ConfigError] = []
        var top = TableReader(root, path: "", file: file)
        var defaults = GatewaySpec(serial: "", name: "")
        func read(_ r: inout TableReader, into g: inout GatewaySpec) {
            if let v = r.string("template") { g.template = v }
            if let v = r.string("type") { g.type = v }
            if let v = r.string("network") { g.network = v }
            if let v = r.string("connector") { g.connector = v }
            if let v = r.string("token_permission") { g.tokenPermission = v }
            if let v = r.string("token_expire") { g.tokenExpire = v }
            if let v = r.string("dashboard") { g.dashboard = v }
            if let v = r.string("access_rule") { g.accessRule = v }
            for key in ["tags", "params"] {
                guard let t = r.subtable(key) else { continue }
                var merged = key == "tags" ? g.tags : g.params
                for (k, node) in t.entries {
                    let value: String
                    switch node.value {
                    case .string(let s): value = s
                    case .integer(let i): value = String(i)
                    case .float(let d): value = JSONValue.format(d)
                    case .bool(let b): value = b ? "true" : "false"
                    default:
                        r.fail(key, "\(k): expected a string, found \(node.value.typeName)", line: node.line)
                        continue
                    }
                    merged.removeAll { $0.key == k }
                    merged.append((k, value))
                }
                if key == "tags" { g.tags = merged } else { g.params = merged }
            }
        }
        if let d = top.subtable("defaults") {
            var r = TableReader(d, path: "defaults", file: file)
            read(&r, into: &defaults)
            r.rejectUnknown(valid: optionalKeys + ["tags", "params"])
            errors += r.errors
        }
        var specs: [GatewaySpec] = []
        if let n = top.node("gateway") {
            guard case .array(let items) = n.value else {
                throw ConfigErrors(errors: errors + [ConfigError(file: file, line: n.line, key: "gateway", "expected [[gateway]] tables, found \(n.value.typeName)")])
            }
            for (i, item) in items.enumerated() {
                guard case .table(let t) = item.value else {
                    errors.append(ConfigError(file: file, line: item.line, key: "gateway[\(i + 1)]", "expected a table, found \(item.value.typeName)"))
                    continue
                }
                var r = TableReader(t, path: "gateway[\(i + 1)]", file: file)
                var g = defaults
                g.line = t.line
                g.serial = r.string("serial") ?? ""
                g.name = r.string("name") ?? ""
                if g.serial.isEmpty || g.name.isEmpty { r.fail("serial", "serial and name are required", line: t.line) }
                read(&r, into: &g)
                r.rejectUnknown(valid: ["serial", "name", "tags", "params"] + optionalKeys)
                errors += r.errors
                if !g.serial.isEmpty && !g.name.isEmpty { specs.append(g) }
            }
        }
        top.rejectUnknown(valid: ["defaults", "gateway"])
        errors += top.errors
        return (specs, errors)
    }

    /// Comma-separated cells; double quotes around a cell allow commas and `""` inside.
    static func splitCSV(_ line: String) -> [String] {
        var cells: [String] = []
        var current = ""
        var quoted = false
        var chars = Array(line.hasSuffix("\r") ? String(line.dropLast()) : line)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { current.append("\""); chars = chars.dropFirst() } else { quoted = false }
                } else { current.append(c) }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                cells.append(current.trimmingWhitespace())
                current = ""
            } else {
                current.append(c)
            }
        }
        cells.append(current.trimmingWhitespace())
        return cells
    }
}
