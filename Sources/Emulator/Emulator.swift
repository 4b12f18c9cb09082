#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore
import TagoTiP
import TagoKit

/// A local TagoIO: the Device API and the Account API subset fleets use, with TagoIO's documented
/// validation, limits, envelopes and token headers, per-minute rate limits, optional persistence,
/// and faults on demand. Thread safe; every request takes one lock.
public final class Emulator: @unchecked Sendable {
    public struct Options: Sendable {
        public var profileTokens: [String] = []
        public var deviceTokens: [String] = []
        /// Per-minute limits by route (`"POST /data": 15000`); empty for none.
        public var rateLimits: [String: Int] = Emulator.scalePlanLimits
        /// The window the limits count over: TagoIO's minute, or less to run a plan's pace faster in tests.
        public var rateWindowMilliseconds: Int64 = 60_000
        public var dataDirectory: String?
        public var faults = EmulatorFaults()
        /// TagoTiP: the profiles' Authorization Tokens (`at` + 32 hex) the server knows.
        public var tipAuthorizationTokens: [String] = []
        /// TagoTiP: device serials, each with the device token of the device it names.
        public var tipDevices: [String: String] = [:]
        /// TagoTiP/S: device Encryption Keys (16 bytes, AES-128-CCM), by serial.
        public var tipKeys: [String: [UInt8]] = [:]
        /// Records a mutable device holds (TagoIO: 50,000).
        public var mutableRecordLimit = 50_000
        public init() {}
    }

    /// TagoIO's Scale plan limits per minute (TagoIO's plans: docs/provisioning.md).
    public static let scalePlanLimits: [String: Int] = [
        "POST /data": 15_000, "GET /data": 15_000, "GET /device/params": 5_000, "GET /info": 10_000,
        "POST /device": 5_000, "GET /device": 500, "POST /device/token": 2_000,
    ]

    /// TagoIO's Free plan limits per minute on the Account API routes provisioning uses (TagoIO's plans: docs/provisioning.md).
    public static let freePlanAccountLimits: [String: Int] = [
        "POST /device": 10, "GET /device": 50, "POST /device/token": 50,
    ]

    public let options: Options
    let lock = Lock()
    var devices: [String: EmuDevice] = [:]
    var deviceOrder: [String] = []
    var tokens: [String: EmuToken] = [:]
    var faults: EmulatorFaults
    let tip = TipServerState()
    var minute: Int64 = 0
    var routeCounts: [String: Int] = [:]
    var stats: [String: Int] = [:]
    var dirty = false
    lazy var resources = AccountResources(newID: { [unowned self] in newID() }, now: { SystemClock().now() })
    var idCounter: UInt64 = 0
    var rng: UInt64
    var server: HTTPServer?
    /// Analyses run externally, listening on TagoIO's `analysis_trigger` channel: the analysis
    /// each stream is for, and its queue.
    var triggerStreams: [(analysis: String, events: EventQueue)] = []
    /// When each interval action last started its analyses (by action id).
    var intervalRuns: [String: Int64] = [:]

    public init(options: Options) throws {
        self.options = options
        faults = options.faults
        rng = UInt64.random(in: 1...UInt64.max)  // faults differ from run to run
        if let dir = options.dataDirectory { try load(dir) }
        for token in options.deviceTokens where tokens[token] == nil {
            let device = makeDevice(name: "bench-\(deviceOrder.count + 1)", type: "mutable")
            tokens[token] = EmuToken(token: token, name: "default", permission: "full", deviceID: device.id, expire: "never", createdAt: now())
        }
        tip.hashes = Set(options.tipAuthorizationTokens.map { Tip.authorizationHash(token: $0) })
        tip.keys = options.tipKeys
        for (serial, token) in options.tipDevices.sorted(by: { $0.key < $1.key }) {
            if tokens[token] == nil {
                let device = makeDevice(name: serial, type: "mutable")
                tokens[token] = EmuToken(token: token, name: "default", permission: "full", deviceID: device.id, expire: "never", createdAt: now())
            }
            devices[tokens[token]!.deviceID]?.serial = serial
        }
        dirty = true
        save()
    }

    /// Serves on `host:port` (0 picks a free port; see `port`).
    public func start(host: String = "127.0.0.1", port: UInt16 = 0) throws -> UInt16 {
        let server = try HTTPServer(host: host, port: port) { [self] request in handle(request) }
        lock.withLock { self.server = server }
        server.start()
        if options.dataDirectory != nil {
            startThread { [weak self] in
                while let self, self.isRunning {
                    usleep(300_000)
                    self.save()
                }
            }
        }
        return server.port
    }

    public func stop() {
        let running = lock.withLock { () -> HTTPServer? in
            defer { server = nil }
            return server
        }
        running?.stop()
        save()
    }

    /// Whether the server is running (the MQTT ingest thread stops with it).
    var isRunning: Bool { lock.withLock { server != nil } }

    func countMQTT(_ key: String) { lock.withLock { count(key) } }

    /// A token of the device with this id.
    func tokenForDevice(id: String) -> String? { lock.withLock { tokens.values.first { $0.deviceID == id }?.token } }

    /// The device id a device token belongs to.
    public func deviceID(forToken token: String) -> String? { lock.withLock { tokens[token]?.deviceID } }

    /// Replaces the faults (tests and `POST /_emulator/faults`).
    public func setFaults(_ f: EmulatorFaults) { lock.withLock { faults = f } }

    /// Puts a notification in the account's inbox (TagoIO sends these: a shared resource to accept,
    /// a limit reached); returns its id.
    public func addAccountNotification(title: String, message: String, acceptable: Bool = false) -> String {
        lock.withLock { resources.addNotification(title: title, message: message, acceptable: acceptable) }
    }

    /// Analyses run through the Account API, with the scope each was given.
    public var analysisRuns: [(analysis: String, scope: JSONValue)] { lock.withLock { resources.runs } }
    /// What analyses sent through the services: `console` lines, `sms`, `email` …
    public var serviceOutbox: [(service: String, analysis: String, message: JSONValue)] { lock.withLock { resources.outbox } }
    /// What the emulator counted: requests, responses by status, faults …
    public var counters: [String: Int] { lock.withLock { stats } }
    /// Event streams opened on the analysis_trigger channel and still open.
    public var openTriggerStreams: Int { lock.withLock { triggerStreams.filter { !$0.events.isClosed }.count } }

    /// What analyses sent through the services: the service, the analysis id, the request.
    public var servicesOutbox: [(service: String, analysis: String, message: JSONValue)] { lock.withLock { resources.outbox } }

    /// The account's profile id (`GET /profile`).
    public var profileID: String { lock.withLock { resources.profileID } }

    /// Stores data objects into a device as the MQTT "Insert to Device" action would.
    public func ingest(deviceToken: String, _ objects: [JSONValue]) -> String? {
        lock.withLock {
            guard let t = tokens[deviceToken], let d = devices[t.deviceID] else { return "unknown device token" }
            switch insert(objects, into: d) {
            case .success: return nil
            case .failure(let e): return e.message
            }
        }
    }

    // MARK: helpers

    func now() -> Int64 { SystemClock().now().millisecondsSince1970 }

    func newID() -> String {
        idCounter += 1
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        let a = String(UInt64(now() / 1000), radix: 16), b = String(rng & 0xFFFF_FFFF_FFFF, radix: 16), c = String(idCounter, radix: 16)
        return String((a + String(repeating: "0", count: max(0, 8 - a.count))).prefix(8) + String((b + "000000000000").prefix(10)) + String(("000000" + c).suffix(6)))
    }

    func newToken() -> String {
        var out = ""
        for _ in 0..<4 {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            out += String(("00000000" + String(rng & 0xFFFF_FFFF, radix: 16)).suffix(8))
        }
        return String(out.prefix(8)) + "-" + String(out.dropFirst(8).prefix(4)) + "-" + String(out.dropFirst(12).prefix(4)) + "-" + String(out.dropFirst(16).prefix(4)) + "-" + String(out.dropFirst(20).prefix(12))
    }

    @discardableResult
    func makeDevice(name: String, type: String) -> EmuDevice {
        let d = EmuDevice(id: newID(), name: name, type: type, createdAt: now())
        d.profile = resources.profileID
        devices[d.id] = d
        deviceOrder.append(d.id)
        dirty = true
        return d
    }

    func count(_ key: String, _ by: Int = 1) { stats[key, default: 0] += by }

    /// Sends a trigger to every stream listening for `analysis`, as TagoIO does:
    /// `data: {"payload": {"analysis_id", "token", "environment": [{key, value}], "data": scope}}`.
    func triggerAnalysis(_ analysis: String, scope: [JSONValue]) {
        guard let payload = resources.triggerPayload(analysis, scope: scope) else { return }
        let line = Array(("data: " + JSONValue.object([("payload", payload)]).serialized + "\n\n").utf8)
        triggerStreams.removeAll { $0.events.isClosed }
        for s in triggerStreams where s.analysis == analysis { s.events.push(line) }
        count("analysis_triggers")
    }

    /// About once a second while a stream is open: interval actions that are due start their analyses.
    func tick() {
        lock.withLock {
            let t = now()
            for (id, every, analyses) in resources.intervalActions() where t - (intervalRuns[id] ?? 0) >= every {
                intervalRuns[id] = t
                for a in analyses { triggerAnalysis(a, scope: []) }
            }
        }
    }

    struct Failure: Error {
        var status: Int
        var message: String
    }

    func ok(_ result: JSONValue, status: Int = 200) -> ServerAction {
        count("responses_\(status)")
        return .respond(status: status, headers: [("Content-Type", "application/json")],
                        body: Array(JSONValue.object([("status", .bool(true)), ("result", result)]).serialized.utf8))
    }

    func fail(_ status: Int, _ message: String, headers: [(String, String)] = []) -> ServerAction {
        count("responses_\(status)")
        return .respond(status: status, headers: [("Content-Type", "application/json")] + headers,
                        body: Array(JSONValue.object([("status", .bool(false)), ("message", .string(message))]).serialized.utf8))
    }

    // MARK: dispatch

    func handle(_ r: ServerRequest) -> ServerAction {
        if r.path.hasPrefix("/_emulator") { return control(r) }
        let (action, latency) = lock.withLock { () -> (ServerAction?, Int) in
            count("requests")
            let t = now()
            if t < faults.blackHoleUntil { count("faults_blackholed"); return (.blackHole, 0) }
            if t < faults.notFoundUntil {
                count("faults_not_found")
                return (.respond(status: 404, headers: [("Content-Type", "text/html")], body: Array("<html><body>404 Not Found</body></html>".utf8)), 0)
            }
            if t < faults.garbageUntil {
                count("faults_garbage")
                return (.respond(status: 200, headers: [("Content-Type", "text/html")], body: Array("<html><body>Welcome! Accept the terms to continue.</body></html>".utf8)), 0)
            }
            if faults.resetRate > 0, random() < faults.resetRate { count("faults_reset"); return (.reset, 0) }
            if t < faults.throttleUntil {
                count("faults_throttled")
                let wait = Int((faults.throttleUntil - t + 999) / 1000)
                return (fail(429, "Too many requests (Retry-After: \(wait))", headers: [("Retry-After", String(wait))]), faults.latencyMilliseconds)
            }
            if faults.errorRate > 0, random() < faults.errorRate {
                count("faults_errors")
                return (fail(503, "Service temporarily unavailable (emulated)"), faults.latencyMilliseconds)
            }
            return (nil, faults.latencyMilliseconds)
        }
        if latency > 0 { SystemClock().sleep(microseconds: UInt64(latency) * 1000) }  // (at most 10 minutes: EmulatorFaults)
        if let action { return action }
        if r.path.hasPrefix("/v1/tip/") { return tipHTTP(r) }
        if r.path == "/v1/tips", r.method == "POST" { return tipSecureHTTP(r) }
        return lock.withLock {
            let answer = route(r)
            if faults.dropResponseRate > 0, random() < faults.dropResponseRate {
                count("faults_dropped_responses")
                return .reset
            }
            return answer
        }
    }

    func random() -> Double {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        return Double(rng >> 11) / Double(1 << 53)
    }

    /// The route name used for rate limits and stats: `GET /device/params`.
    func routeName(_ r: ServerRequest) -> String {
        let parts = r.path.split(separator: "/")
        if parts.first == "device", parts.count >= 2, parts[1] != "params", parts[1] != "token" {
            return "\(r.method) /device/{id}" + (parts.count > 2 ? "/" + parts[2...].joined(separator: "/").replacingIDs() : "")
        }
        if parts.count >= 3, parts[0] == "device" { return "\(r.method) /\(parts[0])/\(parts[1])/{id}" }
        return "\(r.method) \(r.path)"
    }

    func rateLimited(_ route: String) -> ServerAction? {
        guard let limit = options.rateLimits[route] else { return nil }
        let window = max(options.rateWindowMilliseconds, 1)
        let m = now() / window
        if m != minute {
            minute = m
            routeCounts.removeAll()
        }
        routeCounts[route, default: 0] += 1
        guard routeCounts[route]! > limit else { return nil }
        count("rate_limited")
        let wait = Int(((m + 1) * window - now() + 999) / 1000)
        return fail(429, "Too many requests (Retry-After: \(wait))", headers: [("Retry-After", String(wait))])
    }

    func route(_ r: ServerRequest) -> ServerAction {
        let route = routeName(r)
        count("route \(route)")
        if let limited = rateLimited(route) { return limited }
        let parts = r.path.split(separator: "/").map(String.init)
        // Services, with an analysis token.
        if r.path.hasPrefix("/analysis/services/") {
            var json: JSONValue?
            if !r.body.isEmpty, case .success(let v) = body(r) { json = v }
            let answer = resources.service(parts, token: r.header("device-token") ?? r.header("authorization") ?? r.header("token"), body: json)
            if let message = answer.message { return fail(answer.status, message) }
            return ok(answer.result ?? .null, status: answer.status)
        }
        // Device API (device token).
        if r.path == "/info" || r.path == "/data" || r.path.hasPrefix("/device/params") {
            guard let token = r.header("device-token") ?? r.header("authorization") ?? r.header("token"),
                  let t = tokens[token], let device = devices[t.deviceID] else {
                return fail(401, "Authorization denied")
            }
            if let end = t.expiresAt, now() >= end { return fail(401, "Authorization denied: the token expired") }
            let writes = r.method != "GET"
            if (writes && t.permission == "read") || (!writes && t.permission == "write") {
                return fail(403, "Authorization denied: the token's permission is \(t.permission)")
            }
            switch (r.method, parts.count) {
            case ("GET", _) where r.path == "/info": return ok(device.json)
            case ("POST", _) where r.path == "/data": return postData(r, device)
            case ("GET", _) where r.path == "/data": return getData(r, device)
            case ("PUT", _) where r.path == "/data": return putData(r, device)
            case ("DELETE", _) where r.path == "/data": return deleteData(r, device)
            case ("GET", 2): 
                let unread = r.queryValue("sent_status") == "false"
                return ok(.array(device.params.filter { !unread || !$0.sent }.map(\.json)))
            case ("PUT", 3):
                guard let i = device.params.firstIndex(where: { $0.id == parts[2] }) else { return fail(404, "Param not found") }
                device.params[i].sent = true
                dirty = true
                return ok(.string("Params Successfully Updated"))
            default: return fail(405, "\(r.method) \(r.path) is not part of the Device API")
            }
        }
        // TagoIO's event stream (server-sent events) for an analysis run externally.
        if r.method == "GET" && r.path == "/events" {
            let channels = (r.queryValue("channels") ?? "").split(separator: ",").map(String.init)
            guard let token = r.queryValue("token") ?? r.header("token"), let analysis = resources.analysisID(token: token) else {
                return fail(401, "Authorization denied")
            }
            guard channels.contains("analysis_trigger") else { return fail(400, "channels must include analysis_trigger") }
            let events = EventQueue()
            triggerStreams.removeAll { $0.events.isClosed }
            triggerStreams.append((analysis, events))
            count("sse_streams")
            return .stream(headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")], events: events, keepAliveSeconds: 15) { [weak self] in
                self?.tick()
            }
        }
        // An analysis token asking who it is (the current SDKs do before listening).
        if r.method == "GET" && r.path == "/info", let token = r.header("token") ?? r.header("device-token") ?? r.header("authorization"),
           tokens[token] == nil, let analysis = resources.analysisID(token: token) {
            return ok(resources.analysisInfo(analysis))
        }
        // A profile token from e-mail and password: the one Account API route without a token.
        if r.method == "POST" && r.path == "/account/profile/token" {
            guard case .success(let json) = body(r) else { return fail(400, "the body is not JSON") }
            let answer = resources.handle(method: r.method, parts: parts, query: r.query, body: json)!
            if answer.status < 300 { dirty = true }
            if let message = answer.message { return fail(answer.status, message) }
            return ok(answer.result ?? .null, status: answer.status)
        }
        // Account API (profile token).
        guard let token = r.header("profile-token") ?? r.header("account-token") ?? r.header("token") ?? r.header("authorization"),
              options.profileTokens.contains(token) || resources.acceptsToken(token) else {
            return fail(401, "Authorization denied")
        }
        if let problem = resources.tokenProblem(token, method: r.method, now: now()) { return fail(problem.status, problem.message) }
        if parts.first != "device" {
            var json: JSONValue?
            var query = r.query
            if !r.body.isEmpty {
                if case .success(let v) = body(r) {
                    json = v
                } else if r.method == "GET" {
                    // The SDK sends a list's parameters as a form in the body of its GET.
                    for pair in String(decoding: r.body, as: UTF8.self).split(separator: "&") {
                        let kv = pair.split(separator: "=", maxSplits: 1)
                        query.append((percentDecode(kv[0]), kv.count > 1 ? percentDecode(kv[1]) : ""))
                    }
                } else if r.path.hasSuffix("/run") {
                    json = .string(String(decoding: r.body, as: UTF8.self))  // the SDK form-encodes a run's scope
                } else {
                    return fail(400, "the body is not JSON")
                }
            }
            guard let answer = resources.handle(method: r.method, parts: parts, query: query, body: json) else {
                return fail(404, "\(r.path) is not emulated")
            }
            // A run of an analysis that runs externally reaches it over its event stream.
            if r.method == "POST", parts.count == 3, parts[0] == "analysis", parts[2] == "run", answer.status < 300 {
                triggerAnalysis(parts[1], scope: json?["scope"]?.arrayValue ?? json?.arrayValue ?? [])
            }
            if answer.status < 300, r.method != "GET" { dirty = true }
            if let message = answer.message { return fail(answer.status, message) }
            return ok(answer.result ?? .null, status: answer.status)
        }
        return account(r, parts)
    }

    // MARK: Device API

    func control(_ r: ServerRequest) -> ServerAction {
        switch (r.method, r.path) {
        case ("GET", "/_emulator/stats"):
            return lock.withLock {
                let records = devices.values.reduce(0) { $0 + $1.records.count }
                var m: [(String, JSONValue)] = [("devices", .number(Double(devices.count))), ("records", .number(Double(records)))]
                for (k, v) in stats.sorted(by: { $0.key < $1.key }) { m.append((k, .number(Double(v)))) }
                return ok(.object(m))
            }
        case ("POST", "/_emulator/faults"):
            let spec = String(decoding: r.body, as: UTF8.self)
            do {
                let f = try EmulatorFaults(spec: spec, now: now())
                setFaults(f)
                return lock.withLock { ok(.string("faults set")) }
            } catch {
                return lock.withLock { fail(400, error.description) }
            }
        case ("POST", "/_emulator/tagotip/cmd"):
            guard let serial = r.queryValue("serial"), Tip.isValidSerial(serial), !r.body.isEmpty, r.body.count <= 4096 else {
                return lock.withLock { fail(400, "POST /_emulator/tagotip/cmd?serial=SERIAL with the command as the body (at most 4 KiB)") }
            }
            queueTipCommand(serial: serial, String(decoding: r.body, as: UTF8.self))
            return lock.withLock { ok(.string("queued")) }
        default:
            return lock.withLock { fail(404, "GET /_emulator/stats, POST /_emulator/faults or POST /_emulator/tagotip/cmd") }
        }
    }

    func load(_ dir: String) throws {
        _ = mkdir(dir, 0o700)
        guard let text = try? readTextFile(dir + "/state.json", limit: 1 << 30), let state = try? JSONValue.parse(text) else { return }
        for entry in state["devices"]?.arrayValue ?? [] {
            guard let (device, deviceTokens) = EmuDevice.restore(entry) else { continue }
            devices[device.id] = device
            deviceOrder.append(device.id)
            for t in deviceTokens { tokens[t.token] = t }
        }
    }

    /// Writes the state to `<data-dir>/state.json` (atomically) if anything changed.
    func save() {
        guard let dir = options.dataDirectory else { return }
        let text: String? = lock.withLock {
            guard dirty else { return nil }
            dirty = false
            let list = deviceOrder.compactMap { devices[$0] }.map { d in d.snapshot(tokens: tokens.values.filter { $0.deviceID == d.id }) }
            return JSONValue.object([("version", .number(1)), ("devices", .array(list))]).serialized
        }
        guard let text else { return }
        writeFileAtomically(dir + "/state.json", Array(text.utf8), sync: true)
    }
}

/// `*` matches any run of characters.
func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
    guard pattern.contains("*") else { return pattern == text }
    let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
    var rest = Substring(text)
    for (i, part) in parts.enumerated() {
        if part.isEmpty { continue }
        if i == 0 {
            guard rest.hasPrefix(part) else { return false }
            rest = rest.dropFirst(part.count)
        } else if let r = rest.firstRange(of: part) {
            rest = rest[r.upperBound...]
        } else {
            return false
        }
    }
    return parts.last?.isEmpty == true || rest.isEmpty || text.hasSuffix(parts.last!)
}

extension String {
    /// `params/64ab…` → `params/{id}` for route names.
    func replacingIDs() -> String {
        split(separator: "/").map { $0.count >= 16 ? "{id}" : String($0) }.joined(separator: "/")
    }
}
