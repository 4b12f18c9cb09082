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

    public static func == (a: GatewaySpec, b: GatewaySpec) -> Bool {
        a.serial == b.serial && a.name == b.name && a.template == b.template
            && a.tags.map { "\($0.key)=\($0.value)" } == b.tags.map { "\($0.key)=\($0.value)" }
            && a.params.map { "\($0.key)=\($0.value)" } == b.params.map { "\($0.key)=\($0.value)" }
    }
}

/// A CSV manifest: a header row naming the columns (`serial` and `name` required; `tags` and
/// `params` as `key=value;key=value`; `template` a config file to render), one gateway a row.
public enum Manifest {
    public static func parse(_ text: String, file: String) throws(ConfigErrors) -> [GatewaySpec] {
        var errors: [ConfigError] = []
        var rows = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { ($0.offset + 1, String($0.element)) }
        rows = rows.filter { !$0.1.trimmingWhitespace().isEmpty && !$0.1.hasPrefix("#") }
        guard let header = rows.first else { throw ConfigErrors(errors: [ConfigError(file: file, line: nil, key: nil, "the manifest is empty")]) }
        let columns = splitCSV(header.1).map { $0.lowercased() }
        for required in ["serial", "name"] where !columns.contains(required) {
            errors.append(ConfigError(file: file, line: header.0, key: nil, "the header has no '\(required)' column (columns: \(columns.joined(separator: ", ")))"))
        }
        for unknown in columns where !["serial", "name", "tags", "params", "template"].contains(unknown) {
            errors.append(ConfigError(file: file, line: header.0, key: unknown, "unknown column; valid: serial, name, tags, params, template"))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        var specs: [GatewaySpec] = []
        var seen: [String: Int] = [:]
        for (line, text) in rows.dropFirst() {
            let cells = splitCSV(text)
            func cell(_ name: String) -> String { columns.firstIndex(of: name).flatMap { $0 < cells.count ? cells[$0] : nil } ?? "" }
            let serial = cell("serial"), name = cell("name")
            if serial.isEmpty || name.isEmpty { errors.append(ConfigError(file: file, line: line, key: nil, "serial and name are required")); continue }
            if let first = seen[serial] { errors.append(ConfigError(file: file, line: line, key: "serial", "'\(serial)' also on line \(first)")); continue }
            seen[serial] = line
            func pairs(_ column: String) -> [(key: String, value: String)]? {
                var out: [(key: String, value: String)] = []
                for part in cell(column).split(separator: ";") where !String(part).trimmingWhitespace().isEmpty {
                    let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
                    guard kv.count == 2, !kv[0].isEmpty else {
                        errors.append(ConfigError(file: file, line: line, key: column, "'\(part)' is not key=value (separate pairs with ';')"))
                        return nil
                    }
                    out.append((kv[0], kv[1]))
                }
                return out
            }
            guard let tags = pairs("tags"), let params = pairs("params") else { continue }
            let template = cell("template")
            specs.append(GatewaySpec(serial: serial, name: name, tags: tags, params: params, template: template.isEmpty ? nil : template))
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        return specs
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

/// Requests per minute per route, from TagoIO's plans (TAGO_API.md).
public struct AccountRateLimits: Sendable {
    public var perMinute: [String: Int]

    public static func plan(_ name: String) -> AccountRateLimits? {
        switch name {
        case "free": AccountRateLimits(perMinute: ["POST /device": 10, "GET /device": 50, "POST /device/token": 50, "other": 60])
        case "starter": AccountRateLimits(perMinute: ["POST /device": 250, "GET /device": 100, "POST /device/token": 250, "other": 250])
        case "scale": AccountRateLimits(perMinute: ["POST /device": 5_000, "GET /device": 500, "POST /device/token": 2_000, "other": 1_000])
        default: nil
        }
    }
}

/// Spaces calls to each route evenly within its per-minute limit, and waits out 429s.
final class RouteLimiter {
    private var next: [String: UInt64] = [:]
    private let limits: AccountRateLimits
    private let clock: SystemClock

    init(_ limits: AccountRateLimits, clock: SystemClock) {
        self.limits = limits
        self.clock = clock
    }

    /// Runs `body` when the route allows it; on 429 waits as told and tries again (up to 20 times).
    func call<T>(_ route: String, _ body: () throws(TagoError) -> T) throws(TagoError) -> T {
        let perMinute = limits.perMinute[route] ?? limits.perMinute["other"] ?? 60
        let spacing = 60_000_000_000 / UInt64(max(perMinute, 1))
        var attempts = 0
        while true {
            let now = clock.nanoseconds()
            if let due = next[route], due > now { clock.sleep(microseconds: (due - now) / 1000) }
            next[route] = clock.nanoseconds() + spacing
            do {
                return try body()
            } catch where error.kind == .rateLimited && attempts < 20 {
                attempts += 1
                clock.sleep(microseconds: UInt64((error.retryAfterSeconds ?? 60) * 1_000_000))
            }
        }
    }
}

/// What happened to one gateway.
public struct ProvisionOutcome: Sendable {
    public enum Status: String, Sendable { case created, present, updated, failed, planned }
    public var serial: String
    public var status: Status
    public var deviceID: String?
    public var detail: String

    public var json: JSONValue {
        .object([("serial", .string(serial)), ("status", .string(status.rawValue)), ("device_id", deviceID.map { .string($0) } ?? .null),
                 ("detail", .string(detail))])
    }
}

/// Creates or brings up to date one TagoIO device per gateway (found by its `serial` tag, so a
/// second run creates nothing twice), makes sure it has a working token, and writes its bundle:
/// `<out>/<serial>/tagoedge.toml` and `token` (both 0600) and `tagoedge.service`.
public final class Provisioner {
    let account: TagoAccount
    let endpoint: TagoEndpoint
    let http: HTTPClient
    let limiter: RouteLimiter
    let out: String
    let dryRun: Bool
    let readTemplate: (String) throws -> String

    public init(account: TagoAccount, endpoint: TagoEndpoint, http: HTTPClient, limits: AccountRateLimits, out: String, dryRun: Bool,
                readTemplate: @escaping (String) throws -> String) {
        self.account = account
        self.endpoint = endpoint
        self.http = http
        limiter = RouteLimiter(limits, clock: SystemClock())
        self.out = out
        self.dryRun = dryRun
        self.readTemplate = readTemplate
    }

    public func provision(_ g: GatewaySpec) -> ProvisionOutcome {
        do {
            let wantedTags = [(key: "serial", value: g.serial)] + g.tags.filter { $0.key != "serial" }
            let found = try limiter.call("GET /device") { () throws(TagoError) in try account.devices(fields: ["id", "name", "tags"], tags: [("serial", g.serial)]) }
            var status = ProvisionOutcome.Status.present
            var notes: [String] = []
            let id: String
            var token: String?
            if let existing = found.first, let existingID = existing["id"]?.stringValue {
                id = existingID
                if found.count > 1 { notes.append("\(found.count) devices carry serial \(g.serial); using the first") }
                let tags = (existing["tags"]?.arrayValue ?? []).compactMap { t in t["key"]?.stringValue.map { ($0, t["value"]?.stringValue ?? "") } }
                let tagsMatch = Set(tags.map { "\($0.0)=\($0.1)" }) == Set(wantedTags.map { "\($0.key)=\($0.value)" })
                if !tagsMatch || existing["name"]?.stringValue != g.name {
                    status = .updated
                    notes.append("name and tags brought to the manifest")
                    if !dryRun {
                        let tagJSON: JSONValue = .array(wantedTags.map { .object([("key", .string($0.key)), ("value", .string($0.value))]) })
                        try limiter.call("PUT /device") { () throws(TagoError) in try account.editDevice(id: id, .object([("name", .string(g.name)), ("tags", tagJSON)])) }
                    }
                }
                let params = try limiter.call("GET /device/params") { () throws(TagoError) in try account.params(deviceID: id) }
                var changes: [ConfigParam] = []
                for p in g.params {
                    if let have = params.first(where: { $0.key == p.key }) {
                        if have.value != p.value { changes.append(ConfigParam(id: have.id, key: p.key, value: p.value, sent: false)) }
                    } else {
                        changes.append(ConfigParam(key: p.key, value: p.value))
                    }
                }
                if !changes.isEmpty {
                    status = .updated
                    notes.append("\(changes.count) param(s) set")
                    if !dryRun { try limiter.call("POST /device/params") { () throws(TagoError) in try account.setParams(deviceID: id, changes) } }
                }
            } else {
                guard !dryRun else { return ProvisionOutcome(serial: g.serial, status: .planned, deviceID: nil, detail: "would create the device") }
                var device = NewDevice(name: g.name)
                device.tags = wantedTags
                device.serialNumber = g.serial
                device.params = g.params.map { ConfigParam(key: $0.key, value: $0.value) }
                let created = try limiter.call("POST /device") { () throws(TagoError) in try account.createDevice(device) }
                id = created.id
                token = created.token
                status = .created
            }
            guard !dryRun else { return ProvisionOutcome(serial: g.serial, status: status == .present ? .present : .planned, deviceID: id, detail: notes.joined(separator: "; ")) }
            let dir = out + "/" + g.serial
            makeDirectories(forFile: dir + "/x")
            if token == nil, let kept = try? readTextFile(dir + "/token").trimmingWhitespace(), !kept.isEmpty {
                // Keep the bundle's token if TagoIO still accepts it for this device.
                let info = try? TagoDevice(token: kept, endpoint: endpoint, http: http).info()
                if info?["id"]?.stringValue == id { token = kept } else { notes.append("the bundle's token was refused; a new one was made") }
            }
            if token == nil {
                token = try limiter.call("POST /device/token") { () throws(TagoError) in try account.createToken(deviceID: id, name: "tagoedge-\(g.serial)") }
                if status == .present { notes.append("token created") }
            }
            try writeBundle(g, directory: dir, token: token ?? "")
            return ProvisionOutcome(serial: g.serial, status: status, deviceID: id, detail: notes.joined(separator: "; "))
        } catch {
            return ProvisionOutcome(serial: g.serial, status: .failed, deviceID: nil, detail: "\(error)")
        }
    }

    /// The bundle: the rendered config (its [device] section pointing at the token file), the
    /// token, and the systemd unit.
    func writeBundle(_ g: GatewaySpec, directory dir: String, token: String) throws {
        let template = try g.template.map(readTemplate) ?? "[[sensor]]\nname = \"board\"\ndriver = \"board\"\ninterval = \"60s\"\n"
        var body: [String] = []
        var inDevice = false
        for line in template.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let t = line.trimmingWhitespace()
            if t.hasPrefix("[") { inDevice = t == "[device]" }
            if inDevice { continue }  // replaced below
            body.append(line)
        }
        let config = """
        # TagoEdge for gateway \(g.serial) (\(g.name)), written by `tagoedge provision`.
        # Copy this folder to the gateway: tagoedge.toml and token to /etc/tagoedge/ (mode 0600),
        # tagoedge.service to /etc/systemd/system/.
        [device]
        token = "file:/etc/tagoedge/token"
        api = "\(endpoint.api)"

        """ + body.joined(separator: "\n")
        guard writeFileAtomically(dir + "/tagoedge.toml", Array(config.utf8), mode: 0o600),
              writeFileAtomically(dir + "/token", Array((token + "\n").utf8), mode: 0o600) else {
            throw TokenError(description: "cannot write the bundle in \(dir)")
        }
        chmod(dir + "/tagoedge.toml", 0o600)
        chmod(dir + "/token", 0o600)
        if let unit = try? readTemplate("tagoedge.service") { writeFileAtomically(dir + "/tagoedge.service", Array(unit.utf8), mode: 0o644) }
    }
}
