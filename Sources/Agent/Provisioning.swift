#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit

/// Requests per minute per route for provisioning, from TagoIO's plans (`PlanLimits`, TagoKit).
public struct AccountRateLimits: Sendable {
    public var perMinute: [String: Int]

    public static func plan(_ name: String) -> AccountRateLimits? {
        guard let p = PlanLimits.named(name) else { return nil }
        var routes: [String: Int] = [:]
        for r in [PlanLimits.Route.createDevice, .listDevices, .createToken] { routes[r.rawValue] = p[r] }
        // Other account routes (tags, params, dashboards): TagoIO documents no limit; keep a calm pace.
        routes["other"] = ["free": 60, "starter": 250, "scale": 1_000][name]
        return AccountRateLimits(perMinute: routes)
    }
}

/// Spaces calls to each route evenly within its per-minute limit, and waits out 429s.
final class RouteLimiter {
    private var next: [String: UInt64] = [:]
    private let limits: AccountRateLimits
    private let clock: MonotonicClock
    /// The window the per-minute limits count over (a minute; shorter in tests, to run a plan's pace faster).
    private let windowNanoseconds: UInt64
    /// 429s waited out.
    private(set) var throttled = 0

    init(_ limits: AccountRateLimits, clock: MonotonicClock, windowMilliseconds: Int64 = 60_000) {
        self.limits = limits
        self.clock = clock
        windowNanoseconds = UInt64(max(windowMilliseconds, 1)) * 1_000_000
    }

    /// Runs `body` when the route allows it; on 429 waits as told and tries again (up to 20 times).
    func call<T>(_ route: String, _ body: () throws(TagoError) -> T) throws(TagoError) -> T {
        let perWindow = limits.perMinute[route] ?? limits.perMinute["other"] ?? 60
        let spacing = windowNanoseconds / UInt64(max(perWindow, 1))
        var attempts = 0
        while true {
            let now = clock.nanoseconds()
            if let due = next[route], due > now { clock.sleep(microseconds: (due - now) / 1000) }
            next[route] = clock.nanoseconds() + spacing
            do {
                return try body()
            } catch where error.kind == .rateLimited && attempts < 20 {
                attempts += 1
                throttled += 1
                let window = Double(windowNanoseconds) / 1e9
                clock.sleep(microseconds: UInt64(min(error.retryAfterSeconds ?? window, max(window, 1)) * 1_000_000))
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
    /// Devices by their `serial` tag, from one paged listing (`prefetch`), so a large fleet costs
    /// a few `GET /device` calls instead of one per gateway.
    private var known: [String: [JSONValue]]?

    /// 429s waited out so far.
    public var throttled: Int { limiter.throttled }

    public init(account: TagoAccount, endpoint: TagoEndpoint, http: HTTPClient, limits: AccountRateLimits, out: String, dryRun: Bool,
                rateWindowMilliseconds: Int64 = 60_000, readTemplate: @escaping (String) throws -> String) {
        self.account = account
        self.endpoint = endpoint
        self.http = http
        limiter = RouteLimiter(limits, clock: SystemClock(), windowMilliseconds: rateWindowMilliseconds)
        self.out = out
        self.dryRun = dryRun
        self.readTemplate = readTemplate
    }

    /// Lists every device of the account once, 100 a page, and remembers those with a `serial` tag.
    /// A page that fails for a passing reason (5xx, a lost connection) is asked again, up to five
    /// times; if the listing still fails, gateways are looked up one by one instead.
    public func prefetch() throws(TagoError) {
        var map: [String: [JSONValue]] = [:]
        var page = 1
        while true {
            var attempt = 0
            let batch: [JSONValue]
            while true {
                do {
                    batch = try limiter.call("GET /device") { () throws(TagoError) in
                        try account.devices(page: page, amount: 100, fields: ["id", "name", "tags"], orderBy: "created_at,asc")
                    }
                    break
                } catch {
                    attempt += 1
                    var passing = false
                    switch error.kind {
                    case .server, .transport: passing = true
                    default: break
                    }
                    guard passing, attempt < 5 else { throw error }
                    SystemClock().sleep(microseconds: UInt64(250_000 << attempt))
                }
            }
            for d in batch {
                for t in d["tags"]?.arrayValue ?? [] where t["key"]?.stringValue == "serial" {
                    if let serial = t["value"]?.stringValue { map[serial, default: []].append(d) }
                }
            }
            if batch.count < 100 { break }
            page += 1
        }
        known = map
    }

    private func lookup(_ serial: String) throws(TagoError) -> [JSONValue] {
        if let known { return known[serial] ?? [] }
        return try limiter.call("GET /device") { () throws(TagoError) in try account.devices(fields: ["id", "name", "tags"], tags: [("serial", serial)]) }
    }

    public func provision(_ g: GatewaySpec) -> ProvisionOutcome {
        let dir = joinPath(out, g.serial)
        // Known before anything is made in TagoIO: a bundle that cannot be written would leave a
        // device with a live token nobody holds.
        if let problem = bundleProblem(dir) {
            return ProvisionOutcome(serial: g.serial, status: .failed, deviceID: nil,
                                    detail: "cannot write the bundle in \(dir): \(problem); nothing was made in TagoIO for it")
        }
        // A token this run made and has not yet handed out in a bundle: revoked if the run fails.
        var madeToken: String?
        do {
            let wantedTags = [(key: "serial", value: g.serial)] + g.tags.filter { $0.key != "serial" }
            let found = try lookup(g.serial)
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
                if !g.params.isEmpty {
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
                }
            } else {
                guard !dryRun else { return ProvisionOutcome(serial: g.serial, status: .planned, deviceID: nil, detail: "would create the device") }
                var device = NewDevice(name: g.name)
                device.type = g.type
                device.network = g.network
                device.connector = g.connector
                device.tags = wantedTags
                device.serialNumber = g.serial
                device.params = g.params.map { ConfigParam(key: $0.key, value: $0.value) }
                let created = try limiter.call("POST /device") { () throws(TagoError) in try account.createDevice(device) }
                id = created.id
                known?[g.serial] = [.object([("id", .string(id)), ("name", .string(g.name))])]
                status = .created
                if g.tokenPermission == "full" && g.tokenExpire == "never" {
                    token = created.token
                    madeToken = created.token
                } else {
                    let first = created.token
                    // The token made with the device is full and never expires: replace it with the manifest's.
                    token = try limiter.call("POST /device/token") { () throws(TagoError) in
                        try account.createToken(deviceID: id, name: "tagoedge-\(g.serial)", permission: g.tokenPermission, expire: g.tokenExpire)
                    }
                    madeToken = token
                    try? limiter.call("DELETE /device/token") { () throws(TagoError) in try account.deleteToken(first) }
                }
            }
            guard !dryRun else { return ProvisionOutcome(serial: g.serial, status: status == .present ? .present : .planned, deviceID: id, detail: notes.joined(separator: "; ")) }
            if token == nil, let kept = try? readTextFile(dir + "/token").trimmingWhitespace(), !kept.isEmpty {
                if tokenBelongs(kept, to: id) { token = kept } else { notes.append("the bundle's token was refused; a new one was made") }
            }
            if token == nil {
                token = try limiter.call("POST /device/token") { () throws(TagoError) in
                    try account.createToken(deviceID: id, name: "tagoedge-\(g.serial)", permission: g.tokenPermission, expire: g.tokenExpire)
                }
                madeToken = token
                if status == .present { notes.append("token created") }
            }
            try writeBundle(g, directory: dir, token: token ?? "")
            madeToken = nil
            let dashboardID = try g.dashboard.flatMap { name throws in try ensureDashboard(g, template: name, deviceID: id, notes: &notes) }
            if let rule = g.accessRule { try ensureAccessRule(g, template: rule, deviceID: id, dashboardID: dashboardID, notes: &notes) }
            return ProvisionOutcome(serial: g.serial, status: status, deviceID: id, detail: notes.joined(separator: "; "))
        } catch {
            var detail = "\(error)"
            if let made = madeToken {
                do {
                    try limiter.call("DELETE /device/token") { () throws(TagoError) in try account.deleteToken(made) }
                    detail += "; the token made for it was revoked"
                } catch let revoke {
                    detail += "; the token made for it could not be revoked (\(revoke)): delete it in TagoIO"
                }
            }
            return ProvisionOutcome(serial: g.serial, status: .failed, deviceID: nil, detail: detail)
        }
    }

    /// Why the bundle folder `dir` cannot take the bundle, or nil. A run makes it (and the folders
    /// above it, 0700) and proves it writable with a probe file; a dry run makes nothing and checks
    /// that it, or the nearest folder above it that exists, is a folder this user may write in.
    func bundleProblem(_ dir: String) -> String? {
        guard !dryRun else {
            var path = dir
            while true {
                var st = stat()
                if stat(path, &st) == 0 {
                    guard (st.st_mode & S_IFMT) == S_IFDIR else { return "\(path) is not a folder" }
                    return access(path, W_OK | X_OK) == 0 ? nil : "\(path) is not writable (\(String(cString: strerror(errno))))"
                }
                guard let slash = path.lastIndex(of: "/") else { path = "."; continue }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        do {
            try makeDirectories(dir, mode: 0o700)
        } catch {
            return "\(error)"
        }
        chmod(dir, 0o700)
        let probe = dir + "/.tagoedge-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "cannot create a file there (\(String(cString: strerror(errno))))" }
        close(fd)
        unlink(probe)
        return nil
    }

    /// `{serial}`, `{name}`, `{device_id}`, `{dashboard_id}`, `{tag:KEY}` in every string of `v`.
    func fill(_ v: JSONValue, _ g: GatewaySpec, deviceID: String, dashboardID: String?) -> JSONValue {
        switch v {
        case .string(var s):
            s = s.replacingOccurrences("{serial}", with: g.serial).replacingOccurrences("{name}", with: g.name)
                .replacingOccurrences("{device_id}", with: deviceID).replacingOccurrences("{dashboard_id}", with: dashboardID ?? "")
            for t in g.tags { s = s.replacingOccurrences("{tag:\(t.key)}", with: t.value) }
            return .string(s)
        case .array(let items): return .array(items.map { fill($0, g, deviceID: deviceID, dashboardID: dashboardID) })
        case .object(let members): return .object(members.map { ($0.0, fill($0.1, g, deviceID: deviceID, dashboardID: dashboardID)) })
        default: return v
        }
    }

    private func template(_ name: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(try readTemplate(name))
        } catch {
            throw TokenError(description: "template \(name): \(error)")
        }
    }

    /// The gateway's dashboard (found by its `serial` tag), made from the template when missing:
    /// `{"label": …, "widgets": [{"label", "type", "variables": [...]}]}`, each widget showing the
    /// gateway's device.
    private func ensureDashboard(_ g: GatewaySpec, template name: String, deviceID: String, notes: inout [String]) throws -> String? {
        let tag = [(key: "serial", value: g.serial)]
        let found = try limiter.call("GET /dashboard") { () throws(TagoError) in try account.dashboards.list(fields: ["id", "label", "tags"], tags: tag) }
        if let id = found.first?["id"]?.stringValue { return id }
        guard !dryRun else { notes.append("would create its dashboard"); return nil }
        let t = fill(try template(name), g, deviceID: deviceID, dashboardID: nil)
        var dashboard = NewDashboard(label: t["label"]?.stringValue ?? g.name)
        dashboard.tags = tag + [(key: "provisioned_by", value: "tagoedge")]
        let id = try limiter.call("POST /dashboard") { () throws(TagoError) in try account.createDashboard(dashboard) }
        for w in t["widgets"]?.arrayValue ?? [] {
            var widget = NewWidget(label: w["label"]?.stringValue ?? "", type: w["type"]?.stringValue ?? "display")
            widget.data = [(origin: deviceID, variables: (w["variables"]?.arrayValue ?? []).compactMap(\.stringValue))]
            if let display = w["display"] { widget.display = display }
            _ = try limiter.call("POST /dashboard/widget") { () throws(TagoError) in try account.createWidget(dashboard: id, widget) }
        }
        notes.append("dashboard created")
        return id
    }

    /// The gateway's access rule (found by its `serial` tag), made from the template when missing:
    /// `{"name", "targets", "permissions"}`.
    private func ensureAccessRule(_ g: GatewaySpec, template name: String, deviceID: String, dashboardID: String?, notes: inout [String]) throws {
        let tag = [(key: "serial", value: g.serial)]
        let found = try limiter.call("GET /am") { () throws(TagoError) in try account.accessRules.list(fields: ["id", "name", "tags"], tags: tag) }
        guard found.isEmpty else { return }
        guard !dryRun else { notes.append("would create its access rule"); return }
        let t = fill(try template(name), g, deviceID: deviceID, dashboardID: dashboardID)
        var rule = NewAccessRule(name: t["name"]?.stringValue ?? "\(g.serial) access", targets: t["targets"] ?? .array([]), permissions: t["permissions"] ?? .array([]))
        rule.tags = tag + [(key: "provisioned_by", value: "tagoedge")]
        _ = try limiter.call("POST /am") { () throws(TagoError) in try account.createAccessRule(rule) }
        notes.append("access rule created")
    }

    /// Whether TagoIO still accepts `token` for device `id`: `GET /info` answers with the device;
    /// a write-only token may not read it (403), so then the device's token list must hold it.
    private func tokenBelongs(_ token: String, to id: String) -> Bool {
        do {
            return try TagoDevice(token: token, endpoint: endpoint, http: http).info()["id"]?.stringValue == id
        } catch where error.kind == .forbidden {
            let list = try? limiter.call("GET /device/token") { () throws(TagoError) in try account.tokens(deviceID: id) }
            return list?.contains { $0["token"]?.stringValue == token } == true
        } catch {
            return false
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

/// The progress bar a terminal shows while provisioning: `[#######.............]  70/200  35%  12.0/min  ETA 10m50s`.
public func provisioningProgressBar(done: Int, total: Int, elapsedSeconds: Double, width: Int = 24) -> String {
    let total = max(total, 1)
    let fraction = min(max(Double(done) / Double(total), 0), 1)
    let filled = Int((fraction * Double(width)).rounded(.down))
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    let perMinute = elapsedSeconds > 0 ? Double(done) / elapsedSeconds * 60 : 0
    let eta: String
    if done >= total {
        eta = "done in \(formatDuration(Int64(elapsedSeconds.rounded()) * 1000))"
    } else if done == 0 || perMinute <= 0 {
        eta = "ETA --"
    } else {
        let seconds = Double(total - done) / (perMinute / 60)
        eta = "ETA \(formatDuration(Int64(seconds.rounded(.up)) * 1000))"
    }
    let tenths = Int((perMinute * 10).rounded())
    return "[\(bar)] \(done)/\(total)  \(Int((fraction * 100).rounded(.down)))%  \(tenths / 10).\(tenths % 10)/min  \(eta)"
}
