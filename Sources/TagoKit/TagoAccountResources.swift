import EdgeCore

/// One kind of account resource (buckets, actions, analyses, dashboards, widgets, access rules,
/// run users), with the calls they all have. Creation takes the kind's typed description.
public struct TagoResource: Sendable {
    let caller: TagoCaller
    /// `bucket`, `action`, `dashboard/{id}/widget` …
    public let path: String

    /// One page of the resources: `fields` of each, optionally those whose name matches `name`
    /// (`*` is a wildcard).
    public func list(page: Int = 1, amount: Int = 20, fields: [String] = ["id", "name"], name: String? = nil,
                     tags: [(key: String, value: String)] = []) throws(TagoError) -> [JSONValue] {
        try caller.call("GET", "/\(path)", query: listQuery(page: page, amount: amount, fields: fields, name: name, tags: tags)).arrayValue ?? []
    }

    /// Every item, page after page (`amount` a page) until a short page: the seed's `all`. With a
    /// `budget`, each page waits for the plan's per-minute limit of `route` (`GET /device` …); a
    /// 429 is waited out as TagoIO says, up to 10 times a page.
    public func listAll(pageSize: Int = 100, fields: [String] = ["id", "name"], name: String? = nil, tags: [(key: String, value: String)] = [],
                        budget: RequestBudget? = nil, route: String? = nil, clock: MonotonicClock = SystemClock()) throws(TagoError) -> [JSONValue] {
        var all: [JSONValue] = []
        let amount = min(max(pageSize, 1), 10_000)
        for page in 1...100_000 {
            var attempts = 0
            var items: [JSONValue] = []
            while true {
                if let budget, let route {
                    let wait = budget.waitMilliseconds(route)
                    if wait > 0 { clock.sleep(microseconds: UInt64(wait) * 1000) }
                    budget.take(route)
                }
                do {
                    items = try list(page: page, amount: amount, fields: fields, name: name, tags: tags)
                    break
                } catch where error.kind == .rateLimited && attempts < 10 {
                    attempts += 1
                    let wait = error.retryAfterSeconds.flatMap { $0.isFinite ? $0 : nil } ?? 5
                    clock.sleep(microseconds: UInt64(max(0, min(wait, 60)) * 1_000_000))
                }
            }
            all += items
            if items.count < amount { break }
        }
        return all
    }

    public func info(_ id: String) throws(TagoError) -> JSONValue { try caller.call("GET", "/\(path)/\(percentEncode(id))") }

    /// A partial edit: only the given fields change.
    public func edit(_ id: String, _ changes: JSONValue) throws(TagoError) { _ = try caller.call("PUT", "/\(path)/\(percentEncode(id))", body: changes) }

    public func delete(_ id: String) throws(TagoError) { _ = try caller.call("DELETE", "/\(path)/\(percentEncode(id))") }

    /// Creates one and returns its id (TagoIO names it `id`, or after the kind: `action`,
    /// `dashboard`, `am_id` for an access rule …).
    func create(_ body: JSONValue, idKey: String) throws(TagoError) -> String {
        let r = try caller.call("POST", "/\(path)", body: body, once: true)
        guard let id = r[idKey]?.stringValue ?? r["\(idKey)_id"]?.stringValue ?? r["id"]?.stringValue else {
            throw TagoError(.invalidResponse, operation: "POST /\(path)", message: "the result has no \(idKey)")
        }
        return id
    }
}

/// The query of a list call: a page, the fields wanted, a name pattern (`*` wildcards), tags.
func listQuery(page: Int, amount: Int, fields: [String], name: String?, tags: [(key: String, value: String)]) -> [(String, String)] {
    var q: [(String, String)] = [("page", String(page)), ("amount", String(amount))]
    for f in fields { q.append(("fields[]", f)) }
    if let name { q.append(("filter[name]", name)) }
    for (i, t) in tags.enumerated() {
        q.append(("filter[tags][\(i)][key]", t.key))
        q.append(("filter[tags][\(i)][value]", t.value))
    }
    return q
}

/// `key`/`value` pairs, as TagoIO writes tags and environment variables.
func pairs(_ list: [(key: String, value: String)]) -> JSONValue {
    .array(list.map { .object([("key", .string($0.key)), ("value", .string($0.value))]) })
}

public struct NewBucket: Sendable {
    public var name: String
    public var description: String?
    public var visible = true
    public var tags: [(key: String, value: String)] = []
    public init(name: String) { self.name = name }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("name", .string(name)), ("visible", .bool(visible)), ("tags", pairs(tags))]
        if let description { m.append(("description", .string(description))) }
        return .object(m)
    }
}

/// What starts an action.
public enum ActionTrigger: Sendable, Equatable {
    /// A variable of a device meeting a condition: `is` one of `<`, `>`, `=`, `!`, `><` (between
    /// `value` and `secondValue`), `*` (any); `unlock` re-arms a locked trigger.
    case condition(device: String, variable: String, is: String, value: String = "", secondValue: String? = nil,
                   valueType: String = "number", unlock: Bool = false)
    /// Every interval, such as `"5 minutes"`.
    case interval(String)
    /// A cron schedule in a time zone.
    case schedule(cron: String, timezone: String = "UTC")
    /// A message on an MQTT topic.
    case mqttTopic(String)
    /// Any other trigger, as TagoIO's JSON.
    case raw(JSONValue)

    var json: JSONValue {
        switch self {
        case let .condition(device, variable, op, value, second, type, unlock):
            var m: [(String, JSONValue)] = [("device", .string(device)), ("variable", .string(variable)), ("is", .string(op)),
                                            ("value", .string(value)), ("value_type", .string(type)), ("unlock", .bool(unlock))]
            if let second { m.append(("second_value", .string(second))) }
            return .object(m)
        case .interval(let every): return .object([("interval", .string(every))])
        case let .schedule(cron, timezone): return .object([("cron", .string(cron)), ("timezone", .string(timezone))])
        case .mqttTopic(let topic): return .object([("topic", .string(topic))])
        case .raw(let v): return v
        }
    }

    /// The action's `type` in TagoIO's current model: what kind of trigger starts it.
    var actionType: String {
        switch self {
        case .condition: "condition"
        case .interval: "interval"
        case .schedule: "schedule"
        case .mqttTopic: "mqtt_topic"
        case .raw(let v): v["interval"] != nil ? "interval" : v["cron"] != nil ? "schedule" : v["resource"] != nil ? "resource"
            : v["service_or_resource"] != nil ? "usage_alert" : v["topic"] != nil ? "mqtt_topic" : "condition"
        }
    }
}

/// What an action does, with the fields that type needs.
public enum ActionKind: Sendable, Equatable {
    case notification(subject: String, message: String)
    case notificationRun(runUsers: [String], subject: String, message: String)
    case email(to: [String], subject: String, message: String)
    case emailRun(runUsers: [String], subject: String, message: String)
    case sms(to: [String], message: String)
    /// Runs analyses (their ids).
    case script([String])
    case post(url: String, headers: [(key: String, value: String)] = [], fallbackToken: String? = nil)
    case mqtt(topic: String, payload: String, device: String? = nil)
    case insertBucket
    case tagoio(JSONValue)

    public static func == (a: ActionKind, b: ActionKind) -> Bool { a.type == b.type && a.fields.serialized == b.fields.serialized }

    var type: String {
        switch self {
        case .notification: "notification"
        case .notificationRun: "notification_run"
        case .email: "email"
        case .emailRun: "email_run"
        case .sms: "sms"
        case .script: "script"
        case .post: "post"
        case .mqtt: "mqtt"
        case .insertBucket: "insert_bucket"
        case .tagoio: "tagoio"
        }
    }

    var fields: JSONValue {
        func strings(_ list: [String]) -> JSONValue { .array(list.map(JSONValue.string)) }
        switch self {
        case let .notification(subject, message): return .object([("subject", .string(subject)), ("message", .string(message))])
        case let .notificationRun(users, subject, message):
            return .object([("run_user", users.count == 1 ? .string(users[0]) : strings(users)), ("subject", .string(subject)), ("message", .string(message))])
        case let .email(to, subject, message): return .object([("to", .string(to.joined(separator: ","))), ("subject", .string(subject)), ("message", .string(message))])
        case let .emailRun(users, subject, message):
            return .object([("run_user", strings(users)), ("subject", .string(subject)), ("message", .string(message))])
        case let .sms(to, message): return .object([("to", .string(to.joined(separator: ","))), ("message", .string(message))])
        case .script(let analyses): return .object([("script", strings(analyses))])
        case let .post(url, headers, fallback):
            var m: [(String, JSONValue)] = [("url", .string(url)), ("headers", .object(headers.map { ($0.key, .string($0.value)) }))]
            if let fallback { m.append(("fallback_token", .string(fallback))) }
            return .object(m)
        case let .mqtt(topic, payload, device):
            var m: [(String, JSONValue)] = [("topic", .string(topic)), ("payload", .string(payload))]
            if let device { m.append(("bucket", .string(device))) }
            return .object(m)
        case .insertBucket: return .object([])
        case .tagoio(let v): return v
        }
    }
}

public struct NewAction: Sendable {
    public var name: String
    public var kind: ActionKind
    public var triggers: [ActionTrigger]
    public var active = true
    public var lock = false
    public var tags: [(key: String, value: String)] = []

    public init(name: String, kind: ActionKind, triggers: [ActionTrigger]) {
        self.name = name
        self.kind = kind
        self.triggers = triggers
    }

    /// TagoIO's current model: `type` says what starts the action (the kind of its triggers),
    /// `action: {type, …}` what it does (the seed put the latter's type and fields at the top).
    var json: JSONValue {
        var action: [(String, JSONValue)] = [("type", .string(kind.type))]
        if case .object(let fields) = kind.fields { action += fields.map { ($0.0, $0.1) } }
        return .object([("name", .string(name)), ("type", .string(triggers.first?.actionType ?? "condition")), ("active", .bool(active)),
                        ("lock", .bool(lock)), ("trigger", .array(triggers.map(\.json))), ("action", .object(action)), ("tags", pairs(tags))])
    }
}

public struct NewAnalysis: Sendable {
    public enum Runtime: String, Sendable { case node, python, deno }
    public var name: String
    public var runtime = Runtime.node
    public var active = true
    /// Environment variables the analysis reads from its context.
    public var variables: [(key: String, value: String)] = []
    public var tags: [(key: String, value: String)] = []
    public init(name: String) { self.name = name }

    var json: JSONValue {
        .object([("name", .string(name)), ("runtime", .string(runtime.rawValue)), ("active", .bool(active)),
                 ("variables", pairs(variables)), ("tags", pairs(tags))])
    }
}

public struct NewDashboard: Sendable {
    public var label: String
    public var tags: [(key: String, value: String)] = []
    /// Where the widgets go (TagoIO's `arrangement`), if given.
    public var arrangement: JSONValue?
    public init(label: String) { self.label = label }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("label", .string(label)), ("tags", pairs(tags))]
        if let arrangement { m.append(("arrangement", arrangement)) }
        return .object(m)
    }
}

public struct NewWidget: Sendable {
    public var label: String
    /// `display`, `line`, `gauge`, `map`, `table` …
    public var type: String
    /// What it shows: `[{origin: deviceID, variables: [...]}]`.
    public var data: [(origin: String, variables: [String])] = []
    public var display: JSONValue = .object([])
    public init(label: String, type: String) {
        self.label = label
        self.type = type
    }

    var json: JSONValue {
        .object([("label", .string(label)), ("type", .string(type)),
                 ("data", .array(data.map { .object([("origin", .string($0.origin)), ("variables", .array($0.variables.map(JSONValue.string)))]) })),
                 ("display", display)])
    }
}

public struct NewAccessRule: Sendable {
    public var name: String
    /// Who: e.g. `[["run_user", "tag", {"key": "role", "value": "technician"}]]`.
    public var targets: JSONValue
    /// What: e.g. `[{"effect": "allow", "action": ["access"], "resource": ["dashboard", "id", "…"]}]`.
    public var permissions: JSONValue
    public var active = true
    public var tags: [(key: String, value: String)] = []

    public init(name: String, targets: JSONValue, permissions: JSONValue) {
        self.name = name
        self.targets = targets
        self.permissions = permissions
    }

    var json: JSONValue {
        .object([("name", .string(name)), ("targets", targets), ("permissions", permissions), ("active", .bool(active)), ("tags", pairs(tags))])
    }
}

public struct NewRunUser: Sendable {
    public var name: String
    public var email: String
    public var timezone: String
    public var password: String?
    public var active = true
    public var tags: [(key: String, value: String)] = []

    public init(name: String, email: String, timezone: String = "UTC") {
        self.name = name
        self.email = email
        self.timezone = timezone
    }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("name", .string(name)), ("email", .string(email)), ("timezone", .string(timezone)),
                                        ("active", .bool(active)), ("tags", pairs(tags))]
        if let password { m.append(("password", .string(password))) }
        return .object(m)
    }
}

extension TagoAccount {
    /// A device's data storage: TagoIO reaches buckets through `/device` now (`/bucket` is gone);
    /// records held: `dataAmount(device:)`.
    public var buckets: TagoResource { TagoResource(caller: caller, path: "device") }
    public var actions: TagoResource { TagoResource(caller: caller, path: "action") }
    public var analyses: TagoResource { TagoResource(caller: caller, path: "analysis") }
    public var dashboards: TagoResource { TagoResource(caller: caller, path: "dashboard") }
    public var accessRules: TagoResource { TagoResource(caller: caller, path: "am") }
    public var runUsers: TagoResource { TagoResource(caller: caller, path: "run/users") }
    public func widgets(dashboard: String) -> TagoResource { TagoResource(caller: caller, path: "dashboard/\(percentEncode(dashboard))/widget") }

    public func createAction(_ a: NewAction) throws(TagoError) -> String { try actions.create(a.json, idKey: "action") }
    /// The new analysis's id and its token.
    public func createAnalysis(_ a: NewAnalysis) throws(TagoError) -> (id: String, token: String?) {
        let r = try caller.call("POST", "/analysis", body: a.json, once: true)
        guard let id = r["id"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /analysis", message: "the result has no id") }
        return (id, r["token"]?.stringValue)
    }
    /// Runs an analysis in TagoIO with a scope (the readings it is about).
    public func runAnalysis(_ id: String, scope: [JSONValue] = []) throws(TagoError) {
        _ = try caller.call("POST", "/analysis/\(percentEncode(id))/run", body: .object([("scope", .array(scope))]))
    }
    public func createDashboard(_ d: NewDashboard) throws(TagoError) -> String { try dashboards.create(d.json, idKey: "dashboard") }
    public func createWidget(dashboard: String, _ w: NewWidget) throws(TagoError) -> String { try widgets(dashboard: dashboard).create(w.json, idKey: "widget") }
    /// The new rule's id (`am_id` in TagoIO's answer).
    public func createAccessRule(_ r: NewAccessRule) throws(TagoError) -> String { try accessRules.create(r.json, idKey: "am_id") }
    public func createRunUser(_ u: NewRunUser) throws(TagoError) -> String { try runUsers.create(u.json, idKey: "user") }

    /// The account: id, name, e-mail, plan.
    public func info() throws(TagoError) -> JSONValue { try caller.call("GET", "/account") }

    public func profiles() throws(TagoError) -> [JSONValue] { try caller.call("GET", "/profile").arrayValue ?? [] }
    public func profileTokens(profile: String) throws(TagoError) -> [JSONValue] { try caller.call("GET", "/profile/\(percentEncode(profile))/token").arrayValue ?? [] }
    /// A new profile token (`full`, `write` or `read`; expiring `never`, after a span such as `"1 year"`, or at a date).
    public func createProfileToken(profile: String, name: String, permission: String = "full", expire: String = "never") throws(TagoError) -> String {
        let r = try caller.call("POST", "/profile/\(percentEncode(profile))/token", body: .object([
            ("name", .string(name)), ("permission", .string(permission)), ("expire_time", .string(expire)),
        ]), once: true)
        guard let token = r["token"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /profile/token", message: "the result has no token") }
        return token
    }
    public func deleteProfileToken(profile: String, token: String) throws(TagoError) {
        _ = try caller.call("DELETE", "/profile/\(percentEncode(profile))/token/\(percentEncode(token))")
    }

    /// The account's notifications (shared resources to accept, limits reached …).
    public func notifications() throws(TagoError) -> [JSONValue] { try caller.call("GET", "/notification").arrayValue ?? [] }
    public func markNotificationsRead(_ ids: [String]) throws(TagoError) {
        _ = try caller.call("PUT", "/notification/read", body: .object([("notification_ids", .array(ids.map(JSONValue.string)))]))
    }
    public func markAllNotificationsRead() throws(TagoError) { _ = try caller.call("PUT", "/notification/markallread") }
    /// Presses one of a notification's buttons (`PUT /notification/{id}/{button}`): a shared
    /// resource's notification has `accept` and `refuse`.
    public func pressNotificationButton(_ id: String, button: String) throws(TagoError) {
        _ = try caller.call("PUT", "/notification/\(percentEncode(id))/\(percentEncode(button))")
    }
    /// The seed's accept and refuse: the buttons of the same names.
    public func acceptNotification(_ id: String) throws(TagoError) { try pressNotificationButton(id, button: "accept") }
    public func refuseNotification(_ id: String) throws(TagoError) { try pressNotificationButton(id, button: "refuse") }
    /// A notification in the profile's own inbox; returns its id.
    public func createNotification(title: String, message: String) throws(TagoError) -> String {
        let r = try caller.call("POST", "/notification", body: .object([("title", .string(title)), ("message", .string(message))]), once: true)
        guard let id = r["id"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /notification", message: "the result has no id") }
        return id
    }
    public func deleteNotification(_ id: String) throws(TagoError) { _ = try caller.call("DELETE", "/notification/\(percentEncode(id))") }

    /// TagoRUN's settings (the end-user application: name, URL, colours, sign-up …).
    public func runInfo() throws(TagoError) -> JSONValue { try caller.call("GET", "/run") }
    public func editRun(_ changes: JSONValue) throws(TagoError) { _ = try caller.call("PUT", "/run", body: changes) }

    /// A run user's push notifications.
    public func runNotifications(user: String) throws(TagoError) -> [JSONValue] { try caller.call("GET", "/run/notification/\(percentEncode(user))").arrayValue ?? [] }
    public func createRunNotification(user: String, title: String, message: String) throws(TagoError) -> String {
        let r = try caller.call("POST", "/run/notification", body: .object([("run_user", .string(user)), ("title", .string(title)), ("message", .string(message))]), once: true)
        guard let id = r["id"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /run/notification", message: "the result has no id") }
        return id
    }
    public func editRunNotification(_ id: String, _ changes: JSONValue) throws(TagoError) { _ = try caller.call("PUT", "/run/notification/\(percentEncode(id))", body: changes) }
    public func deleteRunNotification(_ id: String) throws(TagoError) { _ = try caller.call("DELETE", "/run/notification/\(percentEncode(id))") }
}
