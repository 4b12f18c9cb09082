import EdgeCore

/// The Account API's other resources (TagoIO SDK, account side): account and profiles with their
/// tokens, buckets, actions, analyses (with runs), dashboards and their widgets, access
/// management, run users and their notifications, and the account's notifications. Kept in memory,
/// validated as TagoIO validates the fields that matter, answered in its envelope. The emulator
/// calls `handle` with its lock held.
final class AccountResources {
    struct Answer {
        var status: Int
        var result: JSONValue?
        var message: String?

        static func ok(_ result: JSONValue, status: Int = 200) -> Answer { Answer(status: status, result: result) }
        static func fail(_ status: Int, _ message: String) -> Answer { Answer(status: status, message: message) }
    }

    /// What a collection must hold to be created, and what else it refuses.
    struct Kind: Sendable {
        var name: String
        var key: String
        var required: [String]
        var check: @Sendable (JSONValue) -> String? = { _ in nil }
    }

    static let actionTypes = ["notification", "notification_run", "email", "email_run", "sms", "script", "post", "tagoio", "mqtt", "insert_bucket", "queue_sqs",
                              "sms-twilio", "whatsapp-twilio", "email-sendgrid", "email-smtp", "queue-sqs", "interval", "schedule"]
    /// TagoIO's current model: `type` is what starts the action, `action.type` what it does.
    static let triggerTypes = ["condition", "resource", "interval", "schedule", "mqtt_topic", "usage_alert", "condition_geofence"]

    static let kinds: [String: Kind] = [
        "bucket": Kind(name: "bucket", key: "bucket", required: ["name"]),
        "action": Kind(name: "action", key: "action", required: ["name"]) { v in
            if let action = v["action"] {
                // Today's model; the seed's (the action's type at the top) is accepted too.
                guard let type = action["type"]?.stringValue, actionTypes.contains(type) else {
                    return "action.type must be one of: \(actionTypes.joined(separator: ", "))"
                }
                if let t = v["type"]?.stringValue, !triggerTypes.contains(t) { return "type must be one of: \(triggerTypes.joined(separator: ", "))" }
            } else {
                guard let type = v["type"]?.stringValue, actionTypes.contains(type) else {
                    return "action is required: {type, …} with type one of \(actionTypes.joined(separator: ", "))"
                }
            }
            if let trigger = v["trigger"], trigger.arrayValue == nil { return "trigger must be an array of conditions" }
            return nil
        },
        "analysis": Kind(name: "analysis", key: "id", required: ["name"]) { v in
            if let runtime = v["runtime"]?.stringValue, !["node", "python", "deno"].contains(runtime) { return "runtime must be node, python or deno" }
            return nil
        },
        "dashboard": Kind(name: "dashboard", key: "dashboard", required: ["label"]),
        "am": Kind(name: "access rule", key: "am_id", required: ["name", "targets", "permissions"]) { v in
            v["targets"]?.arrayValue == nil || v["permissions"]?.arrayValue == nil ? "targets and permissions must be arrays" : nil
        },
        "run/users": Kind(name: "run user", key: "user", required: ["name", "email", "timezone"]) { v in
            (v["email"]?.stringValue ?? "").contains("@") ? nil : "email is not an e-mail address"
        },
        "widget": Kind(name: "widget", key: "widget", required: ["label", "type"]),
        "run/notification": Kind(name: "notification", key: "id", required: ["run_user", "title", "message"]),
    ]

    private var items: [String: [(id: String, object: JSONValue)]] = [:]  // by collection path
    /// Profile tokens made through the API; they authenticate like the configured ones.
    private(set) var profileTokens: [(profile: String, token: String, name: String, permission: String, expire: String, createdAt: Int64)] = []
    private(set) var notifications: [(id: String, title: String, message: String, read: Bool, status: String?)] = []
    /// Analysis runs: the analysis id and the scope it was given.
    private(set) var runs: [(analysis: String, scope: JSONValue)] = []
    /// What analyses sent through the services (`sms`, `email`, `mqtt`, `notification`, `console`).
    private(set) var outbox: [(service: String, analysis: String, message: JSONValue)] = []
    let profileID: String
    /// TagoRUN: the end-user application's settings.
    private var runSettings: JSONValue = .object([("name", .string("TagoEdge Run")), ("url", .string("tagoedge.run.emulator")),
                                                  ("sidebar_color", .string("#21409a")), ("signup_method", .string("default"))])
    private let newID: () -> String
    private let now: () -> Timestamp

    init(newID: @escaping () -> String, now: @escaping () -> Timestamp) {
        self.newID = newID
        self.now = now
        profileID = newID()
    }

    func acceptsToken(_ token: String) -> Bool { profileTokens.contains { $0.token == token } }

    /// Why a profile token made through the API may not do `method` now: expired (401), or its
    /// permission (`read`: only reads; `write`: no reads), 403. Nil when it may.
    func tokenProblem(_ token: String, method: String, now: Int64) -> (status: Int, message: String)? {
        guard let t = profileTokens.first(where: { $0.token == token }) else { return nil }
        if let end = tokenExpiry(t.expire, createdAt: t.createdAt), now >= end { return (401, "Authorization denied: the token expired") }
        let writes = method != "GET"
        if (writes && t.permission == "read") || (!writes && t.permission == "write") {
            return (403, "Authorization denied: the token's permission is \(t.permission)")
        }
        return nil
    }

    /// An analysis's token: what it authenticates to the services with.
    static func analysisToken(_ id: String) -> String { "a-" + id }

    /// `POST /analysis/services/{sms/send, email/send, mqtt/publish, notification/send, console/send}`
    /// with an analysis token (in `Device-Token`, as the SDK sends it).
    func service(_ parts: [String], token: String?, body: JSONValue?) -> Answer {
        guard let token, let analysis = (items["analysis"] ?? []).first(where: { Self.analysisToken($0.id) == token }) else {
            return .fail(401, "Invalid analysis token")
        }
        guard let body, case .object = body else { return .fail(400, "the body must be a JSON object") }
        func text(_ key: String) -> String? { body[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        let name = parts.dropFirst(2).joined(separator: "/")
        switch name {
        case "sms/send":
            guard text("to") != nil, text("message") != nil else { return .fail(400, "to and message are required") }
        case "email/send":
            guard text("to") != nil, text("subject") != nil, text("message") != nil || text("html") != nil else { return .fail(400, "to, subject and message are required") }
            if let a = body["attachment"], a != .null, a["archive"]?.stringValue == nil || a["filename"]?.stringValue == nil {
                return .fail(400, "attachment needs archive and filename")
            }
        case "mqtt/publish":
            guard text("topic") != nil, body["message"] != nil else { return .fail(400, "topic and message are required") }
            if let qos = body["qos"]?.numberValue, ![0, 1, 2].contains(qos) { return .fail(400, "qos must be 0, 1 or 2") }
        case "notification/send":
            guard text("title") != nil, text("message") != nil else { return .fail(400, "title and message are required") }
        case "console/send":
            guard text("message") != nil else { return .fail(400, "message is required") }
        default:
            return .fail(404, "/\(parts.joined(separator: "/")) is not a service")
        }
        outbox.append((String(name.split(separator: "/").first ?? ""), analysis.id, body))
        if name == "notification/send" { _ = addNotification(title: text("title") ?? "", message: text("message") ?? "", acceptable: false) }
        return .ok(.string(name == "console/send" ? "Console log sent" : "Sent"))
    }

    /// The analysis an analysis token belongs to.
    func analysisID(token: String) -> String? {
        (items["analysis"] ?? []).first { Self.analysisToken($0.id) == token }?.id
    }

    /// `GET /info` with an analysis token.
    func analysisInfo(_ id: String) -> JSONValue {
        let a = items["analysis"]?.first { $0.id == id }?.object ?? .null
        return .object([("id", .string(id)), ("name", a["name"] ?? .string("")), ("active", a["active"] ?? .bool(true)),
                        ("run_on", a["run_on"] ?? .string("external"))])
    }

    /// What a trigger carries: the analysis, its token, its environment variables, the scope.
    func triggerPayload(_ id: String, scope: [JSONValue]) -> JSONValue? {
        guard let a = items["analysis"]?.first(where: { $0.id == id })?.object else { return nil }
        let environment = (a["variables"]?.arrayValue ?? []).filter { $0["key"] != nil }
        return .object([("analysis_id", .string(id)), ("token", .string(Self.analysisToken(id))), ("environment", .array(environment)),
                        ("data", .array(scope))])
    }

    /// Active actions in today's model that run analyses (`action: {type: "script", script: [ids]}`).
    private func scriptActionList() -> [(id: String, action: JSONValue, analyses: [String])] {
        (items["action"] ?? []).compactMap { item in
            let a = item.object
            guard a["active"]?.boolValue != false, a["action"]?["type"]?.stringValue == "script" else { return nil }
            let ids = (a["action"]?["script"]?.arrayValue ?? []).compactMap(\.stringValue)
            return ids.isEmpty ? nil : (item.id, a, ids)
        }
    }

    /// The analyses that condition actions start for data just stored on `device`, each with the
    /// data objects that met its condition.
    func scriptActions(device: String, data: [JSONValue]) -> [(analyses: [String], data: [JSONValue])] {
        var out: [(analyses: [String], data: [JSONValue])] = []
        for (_, a, analyses) in scriptActionList() where a["type"]?.stringValue == "condition" {
            let met = data.filter { d in
                (a["trigger"]?.arrayValue ?? []).contains { t in
                    (t["device"]?.stringValue == nil || t["device"]?.stringValue == device)
                        && t["variable"]?.stringValue?.lowercased() == d["variable"]?.stringValue?.lowercased()
                        && conditionHolds(t["is"]?.stringValue ?? "*", value: d["value"], against: t["value"]?.stringValue, second: t["second_value"]?.stringValue)
                }
            }
            if !met.isEmpty { out.append((analyses, met)) }
        }
        return out
    }

    /// Interval actions that run analyses: id, period in milliseconds, the analyses.
    func intervalActions() -> [(id: String, every: Int64, analyses: [String])] {
        scriptActionList().compactMap { id, a, analyses in
            guard a["type"]?.stringValue == "interval", let text = a["trigger"]?.arrayValue?.first?["interval"]?.stringValue,
                  let every = intervalMilliseconds(text) else { return nil }
            return (id, every, analyses)
        }
    }

    func addNotification(title: String, message: String, acceptable: Bool) -> String {
        let id = newID()
        notifications.append((id, title, message, false, acceptable ? "pending" : nil))
        return id
    }

    /// Answers `method parts` if it is one of these resources, or nil.
    func handle(method: String, parts: [String], query: [(String, String)], body: JSONValue?) -> Answer? {
        switch (method, parts.first) {
        case ("GET", "account") where parts.count == 1:
            return .ok(.object([("id", .string(profileID)), ("name", .string("TagoEdge Emulator")), ("email", .string("emulator@localhost")),
                                ("plan", .string("scale")), ("active", .bool(true)), ("created_at", .string(now().iso8601))]))
        case ("POST", "account") where parts == ["account", "profile", "token"]:
            // A profile token from the account's credentials (what `tokenCreate` in the SDK does).
            guard let name = body?["name"]?.stringValue, !name.isEmpty else { return .fail(400, "name is required") }
            guard body?["profile_id"]?.stringValue == profileID else { return .fail(400, "profile_id does not name a profile of this account") }
            guard body?["email"]?.stringValue == "emulator@localhost", !(body?["password"]?.stringValue ?? "").isEmpty else {
                return .fail(401, "Invalid email or password")
            }
            return profile("POST", ["profile", profileID, "token"], body)
        case (_, "profile"):
            return profile(method, parts, body)
        case (_, "notification"):
            return accountNotification(method, parts, body)
        case ("POST", "analysis") where parts.count == 3 && parts[2] == "run":
            guard find("analysis", parts[1]) != nil else { return .fail(404, "Analysis not found") }
            runs.append((parts[1], body ?? .null))
            return .ok(.string("Analysis trigged"))
        case (_, "dashboard") where parts.count >= 3 && parts[2] == "widget":
            guard find("dashboard", parts[1]) != nil else { return .fail(404, "Dashboard not found") }
            return collection("dashboard/\(parts[1])/widget", kind: Self.kinds["widget"]!, method: method, id: parts.count > 3 ? parts[3] : nil, query: query, body: body)
        case ("GET", "run") where parts.count == 1:
            return .ok(runSettings)
        case ("PUT", "run") where parts.count == 1:
            guard let body, case .object(let changes) = body, case .object(var fields) = runSettings else { return .fail(400, "the body must be a JSON object") }
            for (k, v) in changes where k != "profile" {
                if let j = fields.firstIndex(where: { $0.0 == k }) { fields[j].1 = v } else { fields.append((k, v)) }
            }
            if let url = JSONValue.object(fields)["url"]?.stringValue, url.isEmpty || url.contains(" ") { return .fail(400, "url must be a host name") }
            runSettings = .object(fields)
            return .ok(.string("TagoIO Run Successfully Updated"))
        case ("GET", "run") where parts.count == 3 && parts[1] == "notification":
            let list = (items["run/notification"] ?? []).filter { $0.object["run_user"]?.stringValue == parts[2] }.map(\.object)
            return .ok(.array(list))
        case (_, "run") where parts.count >= 2 && (parts[1] == "users" || parts[1] == "notification"):
            let path = "run/" + parts[1]
            return collection(path, kind: Self.kinds[path]!, method: method, id: parts.count > 2 ? parts[2] : nil, query: query, body: body)
        case (_, let first?) where ["bucket", "action", "analysis", "dashboard", "am"].contains(first) && parts.count <= 2:
            return collection(first, kind: Self.kinds[first]!, method: method, id: parts.count > 1 ? parts[1] : nil, query: query, body: body)
        default:
            return nil
        }
    }

    private func find(_ path: String, _ id: String) -> Int? { items[path]?.firstIndex { $0.id == id } }

    private func collection(_ path: String, kind: Kind, method: String, id: String?, query: [(String, String)], body: JSONValue?) -> Answer {
        let notFound = Answer.fail(404, "\(kind.name.prefix(1).uppercased() + kind.name.dropFirst()) not found")
        switch (method, id) {
        case ("GET", nil):
            return list(path, query: query)
        case ("POST", nil):
            guard let body, case .object(var fields) = body else { return .fail(400, "the body must be a JSON object") }
            let missing = kind.required.filter { body[$0] == nil || body[$0] == .null || body[$0]?.stringValue == "" }
            guard missing.isEmpty else { return .fail(400, "\(missing.joined(separator: ", ")) is required") }
            if let problem = kind.check(body) { return .fail(400, problem) }
            let newID = newID()
            fields.removeAll { $0.0 == "id" || $0.0 == "created_at" || $0.0 == "updated_at" }
            let stamp = JSONValue.string(now().iso8601)
            items[path, default: []].append((newID, .object([("id", .string(newID))] + fields + [("created_at", stamp), ("updated_at", stamp)])))
            // Only the key TagoIO answers with (`am_id`, `action`, `dashboard` …): a client that
            // reads another would fail against TagoIO, so it fails here too.
            var result: [(String, JSONValue)] = [(kind.key, .string(newID))]
            if path == "analysis" { result.append(("token", .string(Self.analysisToken(newID)))) }
            return .ok(.object(result), status: 201)
        case ("GET", let id?):
            guard let i = find(path, id) else { return notFound }
            return .ok(items[path]![i].object)
        case ("PUT", let id?):
            guard let i = find(path, id) else { return notFound }
            guard let body, case .object(let changes) = body, case .object(var fields) = items[path]![i].object else { return .fail(400, "the body must be a JSON object") }
            for (k, v) in changes where k != "id" && k != "created_at" {
                if let j = fields.firstIndex(where: { $0.0 == k }) { fields[j].1 = v } else { fields.append((k, v)) }
            }
            let merged = JSONValue.object(fields)
            for key in kind.required where merged[key] == .null || merged[key]?.stringValue == "" { return .fail(400, "\(key) cannot be empty") }
            if let problem = kind.check(merged) { return .fail(400, problem) }
            if let j = fields.firstIndex(where: { $0.0 == "updated_at" }) { fields[j].1 = .string(now().iso8601) }
            items[path]![i].object = .object(fields)
            return .ok(.string("\(kind.name.prefix(1).uppercased() + kind.name.dropFirst()) Successfully Updated"))
        case ("DELETE", let id?):
            guard let i = find(path, id) else { return notFound }
            items[path]!.remove(at: i)
            if path == "dashboard" { items["dashboard/\(id)/widget"] = nil }
            return .ok(.string("Successfully Removed"))
        default:
            return .fail(405, "\(method) /\(path) is not part of the Account API")
        }
    }

    /// `page`, `amount`, `fields[]` and `filter[name]` (with `*` wildcards), newest last.
    private func list(_ path: String, query: [(String, String)]) -> Answer {
        func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        let page = max(Int(value("page") ?? "1") ?? 1, 1)
        let amount = min(max(Int(value("amount") ?? "20") ?? 20, 1), 10_000)
        var fields = query.filter { $0.0 == "fields[]" || $0.0 == "fields" || $0.0.hasPrefix("fields[") }.map(\.1)
        if fields.isEmpty { fields = ["id", "name", "label"] }
        var objects = (items[path] ?? []).map(\.object)
        if let name = value("filter[name]") {
            let parts = name.lowercased().split(separator: "*", omittingEmptySubsequences: false).map(String.init)
            objects = objects.filter { o in
                let text = (o["name"]?.stringValue ?? o["label"]?.stringValue ?? "").lowercased()
                return parts.count == 1 ? text == parts[0] : text.hasPrefix(parts[0]) && text.hasSuffix(parts.last!)
            }
        }
        var i = 0
        while let key = value("filter[tags][\(i)][key]") {
            let wanted = value("filter[tags][\(i)][value]")
            objects = objects.filter { o in
                (o["tags"]?.arrayValue ?? []).contains { $0["key"]?.stringValue == key && (wanted == nil || $0["value"]?.stringValue == wanted) }
            }
            i += 1
        }
        let pageItems = objects.dropFirst(pageOffset(page: page, amount: amount, count: objects.count)).prefix(amount)
        return .ok(.array(pageItems.map { o in
            guard case .object(let all) = o else { return o }
            return .object(all.filter { fields.contains($0.0) })
        }))
    }

    private func profile(_ method: String, _ parts: [String], _ body: JSONValue?) -> Answer {
        switch (method, parts.count) {
        case ("GET", 1):
            return .ok(.array([.object([("id", .string(profileID)), ("name", .string("Emulator profile"))])]))
        case ("GET", 2):
            guard parts[1] == profileID else { return .fail(404, "Profile not found") }
            return .ok(.object([("info", .object([("id", .string(profileID)), ("name", .string("Emulator profile"))]))]))
        case ("GET", 3) where parts[2] == "token":
            guard parts[1] == profileID else { return .fail(404, "Profile not found") }
            return .ok(.array(profileTokens.map { t in
                .object([("name", .string(t.name)), ("token", .string(t.token)), ("permission", .string(t.permission)), ("expire_time", .string(t.expire))])
            }))
        case ("POST", 3) where parts[2] == "token":
            guard parts[1] == profileID else { return .fail(404, "Profile not found") }
            guard let name = body?["name"]?.stringValue, !name.isEmpty else { return .fail(400, "name is required") }
            let permission = body?["permission"]?.stringValue ?? "full"
            guard ["full", "write", "read"].contains(permission) else { return .fail(400, "permission must be full, write or read") }
            let expire = body?["expire_time"]?.stringValue ?? "never"
            let token = "p-" + newID() + newID()
            profileTokens.append((profileID, token, name, permission, expire, now().millisecondsSince1970))
            return .ok(.object([("token", .string(token)), ("name", .string(name)), ("permission", .string(permission)),
                                ("expire_date", expire == "never" ? .null : .string(expire))]), status: 201)
        case ("DELETE", 4) where parts[2] == "token":
            guard let i = profileTokens.firstIndex(where: { $0.profile == parts[1] && $0.token == parts[3] }) else { return .fail(404, "Token not found") }
            profileTokens.remove(at: i)
            return .ok(.string("Token Successfully Removed"))
        default:
            return .fail(405, "\(method) /\(parts.joined(separator: "/")) is not emulated")
        }
    }

    private func accountNotification(_ method: String, _ parts: [String], _ body: JSONValue?) -> Answer {
        func json(_ n: (id: String, title: String, message: String, read: Bool, status: String?)) -> JSONValue {
            .object([("id", .string(n.id)), ("title", .string(n.title)), ("message", .string(n.message)), ("read", .bool(n.read)),
                     ("status", n.status.map(JSONValue.string) ?? .null)])
        }
        switch (method, parts.count) {
        case ("GET", 1):
            return .ok(.array(notifications.map(json)))
        case ("PUT", 2) where parts[1] == "read":
            guard let ids = body?["notification_ids"]?.arrayValue?.compactMap(\.stringValue) else { return .fail(400, "notification_ids must be an array of ids") }
            var marked = 0
            for i in notifications.indices where ids.contains(notifications[i].id) {
                notifications[i].read = true
                marked += 1
            }
            return .ok(.string("\(marked) notification(s) marked as read"))
        case ("POST", 1):
            guard let title = body?["title"]?.stringValue, !title.isEmpty, let message = body?["message"]?.stringValue, !message.isEmpty else {
                return .fail(400, "title and message are required")
            }
            return .ok(.object([("id", .string(addNotification(title: title, message: message, acceptable: false)))]), status: 201)
        case ("PUT", 2) where parts[1] == "markallread":
            for i in notifications.indices { notifications[i].read = true }
            return .ok(.string("All notifications marked as read"))
        case ("PUT", 3):
            // A button: a shared resource's notification has accept and refuse.
            guard let i = notifications.firstIndex(where: { $0.id == parts[1] }) else { return .fail(404, "Notification not found") }
            guard notifications[i].status == "pending", parts[2] == "accept" || parts[2] == "refuse" else {
                return .fail(400, "This notification has no button '\(parts[2])'")
            }
            notifications[i].status = parts[2] == "accept" ? "accepted" : "refused"
            notifications[i].read = true
            return .ok(.string(parts[2] == "accept" ? "Notification accepted" : "Notification refused"))
        case ("POST", 3) where parts[1] == "accept" || parts[1] == "refuse":
            guard let i = notifications.firstIndex(where: { $0.id == parts[2] }) else { return .fail(404, "Notification not found") }
            guard notifications[i].status == "pending" else { return .fail(400, "This notification has nothing to accept or refuse") }
            notifications[i].status = parts[1] == "accept" ? "accepted" : "refused"
            notifications[i].read = true
            return .ok(.string(parts[1] == "accept" ? "Notification accepted" : "Notification refused"))
        case ("DELETE", 2):
            guard let i = notifications.firstIndex(where: { $0.id == parts[1] }) else { return .fail(404, "Notification not found") }
            notifications.remove(at: i)
            return .ok(.string("Successfully Removed"))
        default:
            return .fail(405, "\(method) /\(parts.joined(separator: "/")) is not emulated")
        }
    }
}

/// Where page `page` (from 1) of `amount` items starts in a list of `count`: past the end for a
/// page beyond it, never an overflow for an absurd one.
func pageOffset(page: Int, amount: Int, count: Int) -> Int {
    let (offset, overflow) = (max(page, 1) - 1).multipliedReportingOverflow(by: max(amount, 1))
    return overflow ? count : min(offset, count)
}

/// A trigger condition: `is` one of `<`, `>`, `=`, `!` (not equal), `><` (between), `*` (any).
func conditionHolds(_ op: String, value: JSONValue?, against: String?, second: String?) -> Bool {
    if op == "*" { return true }
    let number = value?.numberValue
    let text = value?.stringValue ?? number.map(JSONValue.format) ?? ""
    let a = against.flatMap(Double.init), b = second.flatMap(Double.init)
    switch op {
    case "<": return number != nil && a != nil && number! < a!
    case ">": return number != nil && a != nil && number! > a!
    case "=": return a != nil && number != nil ? number! == a! : text == (against ?? "")
    case "!": return a != nil && number != nil ? number! != a! : text != (against ?? "")
    case "><": return number != nil && a != nil && b != nil && number! >= min(a!, b!) && number! <= max(a!, b!)
    default: return false
    }
}

/// `"5 minutes"`, `"1 second"`, `"2 hours"` in milliseconds.
func intervalMilliseconds(_ text: String) -> Int64? {
    let parts = text.split(separator: " ")
    guard parts.count == 2, let n = Int64(parts[0]), n > 0, n < 1_000_000 else { return nil }
    let unit = parts[1].hasSuffix("s") ? String(parts[1].dropLast()) : String(parts[1])
    guard let ms: Int64 = ["second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000][unit] else { return nil }
    return n * ms
}
