import EdgeCore
import TagoKit

/// A stored record, as TagoIO keeps it.
struct EmuRecord {
    var id: String
    var variable: String
    var value: JSONValue
    var unit: String?
    var group: String?
    var time: Int64
    var createdAt: Int64
    var location: JSONValue?
    var metadata: JSONValue?

    func json(device: String, details: Bool) -> JSONValue {
        var m: [(String, JSONValue)] = [("id", .string(id)), ("device", .string(device)), ("variable", .string(variable)), ("value", value)]
        if let unit { m.append(("unit", .string(unit))) }
        if let group { m.append(("group", .string(group))) }
        m.append(("time", .string(Timestamp(millisecondsSince1970: time).iso8601)))
        if details { m.append(("created_at", .string(Timestamp(millisecondsSince1970: createdAt).iso8601))) }
        if let location { m.append(("location", location)) }
        if let metadata { m.append(("metadata", metadata)) }
        return .object(m)
    }
}

struct EmuParam {
    var id: String
    var key: String
    var value: String
    var sent: Bool

    var json: JSONValue { .object([("id", .string(id)), ("key", .string(key)), ("value", .string(value)), ("sent", .bool(sent))]) }
}

struct EmuToken {
    var token: String
    var name: String
    var permission: String
    var deviceID: String
    var expire: String
    var createdAt: Int64

    /// When it stops working: never, a span after its creation (`"1 month"`), or a date.
    var expiresAt: Int64? { tokenExpiry(expire, createdAt: createdAt) }

    var json: JSONValue {
        .object([("token", .string(token)), ("name", .string(name)), ("permission", .string(permission)),
                 ("expire_time", .string(expire)), ("created_at", .string(Timestamp(millisecondsSince1970: createdAt).iso8601))])
    }
}

final class EmuDevice {
    var id: String
    var name: String
    var type: String
    var active = true
    var visible = true
    var tags: [(String, String)] = []
    var serial: String?
    var network: String?
    var connector: String?
    var createdAt: Int64
    var lastInput: Int64?
    var updatedAt: Int64?
    /// The profile that owns it (the spec's `profile` on /info and device objects).
    var profile = ""
    var params: [EmuParam] = []
    var records: [EmuRecord] = []

    init(id: String, name: String, type: String, createdAt: Int64) {
        self.id = id
        self.name = name
        self.type = type
        self.createdAt = createdAt
    }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("id", .string(id)), ("name", .string(name)), ("active", .bool(active)), ("visible", .bool(visible)),
                                        ("type", .string(type)), ("bucket", .object([("id", .string(id)), ("name", .string(name))])),
                                        ("tags", .array(tags.map { .object([("key", .string($0.0)), ("value", .string($0.1))]) })),
                                        ("created_at", .string(Timestamp(millisecondsSince1970: createdAt).iso8601)),
                                        ("updated_at", .string(Timestamp(millisecondsSince1970: updatedAt ?? createdAt).iso8601)),
                                        ("profile", .string(profile)), ("payload_decoder", .null),
                                        ("last_input", lastInput.map { .string(Timestamp(millisecondsSince1970: $0).iso8601) } ?? .null)]
        if let serial { m.append(("serie_number", .string(serial))) }
        if let network { m.append(("network", .string(network))) }
        if let connector { m.append(("connector", .string(connector))) }
        return .object(m)
    }

    // MARK: persistence

    func snapshot(tokens: [EmuToken]) -> JSONValue {
        .object([
            ("device", json),
            ("params", .array(params.map(\.json))),
            ("tokens", .array(tokens.map { t in .object([("token", .string(t.token)), ("name", .string(t.name)), ("permission", .string(t.permission)),
                                                         ("expire", .string(t.expire)), ("created_at", .number(Double(t.createdAt)))]) })),
            ("records", .array(records.map { r in
                var m: [(String, JSONValue)] = [("id", .string(r.id)), ("variable", .string(r.variable)), ("value", r.value),
                                                ("time", .number(Double(r.time))), ("created_at", .number(Double(r.createdAt)))]
                if let u = r.unit { m.append(("unit", .string(u))) }
                if let g = r.group { m.append(("group", .string(g))) }
                if let l = r.location { m.append(("location", l)) }
                if let md = r.metadata { m.append(("metadata", md)) }
                return .object(m)
            })),
        ])
    }

    static func restore(_ v: JSONValue) -> (EmuDevice, [EmuToken])? {
        guard let d = v["device"], let id = d["id"]?.stringValue, let name = d["name"]?.stringValue else { return nil }
        let created = d["created_at"]?.stringValue.flatMap { Timestamp(iso8601: $0) }?.millisecondsSince1970 ?? 0
        let device = EmuDevice(id: id, name: name, type: d["type"]?.stringValue ?? "mutable", createdAt: created)
        device.active = d["active"]?.boolValue ?? true
        device.visible = d["visible"]?.boolValue ?? true
        device.tags = (d["tags"]?.arrayValue ?? []).compactMap { t in t["key"]?.stringValue.map { ($0, t["value"]?.stringValue ?? "") } }
        device.serial = d["serie_number"]?.stringValue
        device.lastInput = d["last_input"]?.stringValue.flatMap { Timestamp(iso8601: $0) }?.millisecondsSince1970
        device.params = (v["params"]?.arrayValue ?? []).compactMap { p in
            guard let id = p["id"]?.stringValue, let key = p["key"]?.stringValue else { return nil }
            return EmuParam(id: id, key: key, value: p["value"]?.stringValue ?? "", sent: p["sent"]?.boolValue ?? false)
        }
        device.records = (v["records"]?.arrayValue ?? []).compactMap { r in
            guard let id = r["id"]?.stringValue, let variable = r["variable"]?.stringValue else { return nil }
            return EmuRecord(id: id, variable: variable, value: r["value"] ?? .null, unit: r["unit"]?.stringValue, group: r["group"]?.stringValue,
                             time: Int64(saturating: r["time"]?.numberValue ?? 0), createdAt: Int64(saturating: r["created_at"]?.numberValue ?? 0),
                             location: r["location"], metadata: r["metadata"])
        }
        let tokens = (v["tokens"]?.arrayValue ?? []).compactMap { t -> EmuToken? in
            guard let token = t["token"]?.stringValue else { return nil }
            return EmuToken(token: token, name: t["name"]?.stringValue ?? "", permission: t["permission"]?.stringValue ?? "full",
                            deviceID: id, expire: t["expire"]?.stringValue ?? "never", createdAt: Int64(saturating: t["created_at"]?.numberValue ?? 0))
        }
        return (device, tokens)
    }
}

/// Faults the emulator plays on the TagoIO routes (not on /_emulator).
public struct EmulatorFaults: Sendable, Equatable {
    /// Added to every answer.
    public var latencyMilliseconds = 0
    /// Fraction of requests answered 503.
    public var errorRate = 0.0
    /// Fraction of requests whose connection is reset without an answer.
    public var resetRate = 0.0
    /// Fraction of requests that are carried out, then answered with a reset (the response is
    /// lost after the data was stored: what makes duplicates).
    public var dropResponseRate = 0.0
    /// A batch holding a reading of this variable is refused with 400 (a server-side rule the
    /// gateway cannot know, such as a payload parser's): the poison record of the uplink tests.
    public var rejectVariable: String?
    /// Until this wall time (ms), every request is answered 429 with the remaining wait.
    public var throttleUntil: Int64 = 0
    /// Until this wall time (ms), every request is accepted and never answered.
    public var blackHoleUntil: Int64 = 0
    /// Until this wall time (ms), every request is answered 404 (a wrong `api` path, a proxy).
    public var notFoundUntil: Int64 = 0
    /// Until this wall time (ms), every request is answered 200 with an HTML page (a captive portal).
    public var garbageUntil: Int64 = 0

    public static let maxLatencyMilliseconds: Int64 = 600_000

    public init() {}

    /// Parses `latency=50ms,error-rate=0.1,reset-rate=0.05,drop-response-rate=0.1,throttle=10s,blackhole=5s,not-found=5s,garbage=5s`
    /// (windows start now).
    public init(spec: String, now: Int64) throws(FaultSpecProblem) {
        for part in spec.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
            guard kv.count == 2 else { throw FaultSpecProblem(part: String(part), reason: "expected name=value") }
            func rate() throws(FaultSpecProblem) -> Double {
                guard let r = Double(kv[1]), (0...1).contains(r) else { throw FaultSpecProblem(part: String(part), reason: "a rate from 0 to 1") }
                return r
            }
            func duration() throws(FaultSpecProblem) -> Int64 {
                guard let ms = parseDuration(kv[1]) else { throw FaultSpecProblem(part: String(part), reason: "a duration such as 50ms or 10s") }
                return ms
            }
            switch kv[0] {
            case "latency":
                // A request waits this long on a server thread: beyond ten minutes every client
                // has long given up (the arithmetic of the wait is safe up to a year).
                let ms = try duration()
                guard ms <= EmulatorFaults.maxLatencyMilliseconds else { throw FaultSpecProblem(part: String(part), reason: "a latency up to 10m") }
                latencyMilliseconds = Int(ms)
            case "error-rate": errorRate = try rate()
            case "reset-rate": resetRate = try rate()
            case "drop-response-rate": dropResponseRate = try rate()
            case "reject-variable": rejectVariable = kv[1].lowercased()
            case "throttle": throttleUntil = now + (try duration())
            case "blackhole": blackHoleUntil = now + (try duration())
            case "not-found": notFoundUntil = now + (try duration())
            case "garbage": garbageUntil = now + (try duration())
            default: throw FaultSpecProblem(part: String(part), reason: "unknown fault; valid: latency, error-rate, reset-rate, drop-response-rate, reject-variable, throttle, blackhole, not-found, garbage")
            }
        }
    }
}

public struct FaultSpecProblem: Error, Sendable, CustomStringConvertible {
    public var part: String
    public var reason: String
    public var description: String { "--faults '\(part)': \(reason)" }
}

/// When a token made at `createdAt` with `expire_time` = `expire` stops working, or nil for never
/// (TagoIO: `never`, a span such as `"1 month"` or `"90 days"`, or a date).
func tokenExpiry(_ expire: String, createdAt: Int64) -> Int64? {
    if expire == "never" || expire.isEmpty { return nil }
    if let t = Timestamp(iso8601: expire) ?? Timestamp(iso8601: expire + "T00:00:00Z") { return t.millisecondsSince1970 }
    let parts = expire.split(separator: " ")
    guard parts.count == 2, let n = Int64(parts[0]), n > 0, n < 1_000_000 else { return nil }
    let unit = parts[1].hasSuffix("s") ? String(parts[1].dropLast()) : String(parts[1])
    let ms: Int64 = ["minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000, "month": 2_592_000_000,
                     "quarter": 7_776_000_000, "year": 31_536_000_000][unit] ?? 0
    return ms == 0 ? nil : createdAt &+ n * ms
}
