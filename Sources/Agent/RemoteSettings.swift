// (The fuzzer, scripts/fuzz settings, compiles this file with ReportFilter.swift and EdgeCore's
// sources in one module.)
#if canImport(Glibc)
import Glibc
#endif
#if canImport(EdgeCore)
import EdgeCore
#endif

/// Settings that configuration_params (or the MQTT downlink) change at run time, on top of the
/// file's, kept on disk so a reboot without network keeps the last applied ones.
///
/// Keys: `interval` (every sensor), `<sensor>.interval`, `<sensor>.enabled`, `upload_interval`,
/// `log_level`, and how a sensor reports: `<sensor>.delta`, `.delta_percent`, `.heartbeat`,
/// `.window`, `.aggregate`. Thread safe.
public final class RemoteSettings: @unchecked Sendable {
    private let lock = Lock()
    private var values: [String: String] = [:]
    public let path: String?
    private let sensors: [String]
    private let outputs: [String]

    /// Loads the settings saved at `path`. A saved setting this version refuses (an older
    /// version's, or a file edited by hand) is ignored with a warning through `warn`, never fatal:
    /// a gateway must not crash-loop on its own settings file.
    public init(path: String?, sensors: [String], outputs: [String] = [], warn: (String) -> Void = { _ in }) {
        self.path = path
        self.sensors = sensors
        self.outputs = outputs
        guard let path, let text = try? readTextFile(path) else { return }
        guard case .object(let members)? = try? JSONValue.parse(text) else {
            warn("\(path): not a JSON object of settings; ignored (the file's settings apply until the cloud sends new ones)")
            return
        }
        for (k, v) in members {
            guard let s = v.stringValue else { warn("\(path): '\(k)' is not a string; ignored"); continue }
            if let problem = problem(key: k, value: s) {
                warn("\(path): saved setting '\(k)' = '\(s)' ignored: \(problem)")
                continue
            }
            values[k] = s
        }
    }

    /// Why `value` cannot be applied to `key`, or nil when it can.
    public func problem(key: String, value: String) -> String? {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            guard sensors.contains(parts[0]) else { return "no sensor named '\(parts[0])' (sensors: \(sensors.joined(separator: ", ")))" }
            switch parts[1] {
            case "interval": return durationProblem(value, minimum: 100)
            case "enabled": return ["true", "false", "1", "0", "on", "off"].contains(value.lowercased()) ? nil : "'\(value)' is not true or false"
            case "delta", "delta_percent":
                if value == "off" { return nil }
                guard let d = Double(value), d.isFinite, d > 0, parts[1] == "delta" || d <= 1000 else {
                    return "'\(value)' is not a number greater than 0\(parts[1] == "delta_percent" ? " and at most 1000" : "") (or off)"
                }
                return nil
            case "heartbeat", "window":
                if value == "off" { return nil }
                if let problem = durationProblem(value, minimum: 1000) { return problem }
                return parts[1] == "window" && (parseDurationOrSeconds(value) ?? 0) > 86_400_000 ? "a window is at most 24h" : nil
            case "aggregate":
                return ReportSettings.Aggregate(rawValue: value) == nil
                    ? "'\(value)' is not \(ReportSettings.Aggregate.allCases.map(\.rawValue).joined(separator: ", "))" : nil
            default:
                return "unknown setting '\(parts[1])' for a sensor; use \(parts[0]).interval, .enabled, .delta, .delta_percent, .heartbeat, .window or .aggregate"
            }
        }
        if outputs.contains(key) {
            return Self.switchValue(value) == nil ? "'\(value)' is not on or off (on, off, true, false, 1, 0)" : nil
        }
        switch key {
        case "interval": return durationProblem(value, minimum: 100)
        case "upload_interval": return durationProblem(value, minimum: 100)
        case "log_level": return ["error", "warning", "info", "debug"].contains(value) ? nil : "'\(value)' is not error, warning, info or debug"
        default: return "unknown key; known: interval, upload_interval, log_level, <sensor>.interval, <sensor>.enabled, or an output's name"
        }
    }

    private func durationProblem(_ value: String, minimum: Int64) -> String? {
        guard let ms = parseDurationOrSeconds(value) else {
            return "'\(value)' is not a duration such as 30s or 5m (at most \(formatDuration(maxDurationMilliseconds)))"
        }
        return ms < minimum ? "\(value) is below the minimum of \(formatDuration(minimum))" : nil
    }

    /// Applies a valid setting and saves the set.
    public func apply(key: String, value: String) {
        lock.withLock { values[key] = value }
        save()
    }

    /// How a sensor's variable is reported: the file's settings (`base`) under the sensor's
    /// `delta`, `delta_percent`, `heartbeat`, `window` and `aggregate` params ("off" clears one).
    /// A window from the cloud replaces a deadband and a heartbeat, and a deadband or heartbeat
    /// from the cloud replaces a window: the two modes exclude each other.
    public func report(sensor: String, base: ReportSettings) -> ReportSettings {
        lock.withLock {
            var s = base
            func value(_ key: String) -> String? { values["\(sensor).\(key)"] }
            var deadbandSet = false
            if let v = value("delta") { s.delta = Double(v); deadbandSet = true }
            if let v = value("delta_percent") { s.deltaPercent = Double(v); deadbandSet = true }
            if let v = value("heartbeat") { s.heartbeatMilliseconds = v == "off" ? nil : parseDurationOrSeconds(v); deadbandSet = true }
            if let v = value("window") {
                s.windowMilliseconds = v == "off" ? nil : parseDurationOrSeconds(v)
                if s.windowMilliseconds != nil { s.delta = nil; s.deltaPercent = nil; s.heartbeatMilliseconds = nil }
            } else if deadbandSet, s.delta != nil || s.deltaPercent != nil || s.heartbeatMilliseconds != nil {
                s.windowMilliseconds = nil
            }
            if let v = value("aggregate"), let a = ReportSettings.Aggregate(rawValue: v) { s.aggregate = a }
            return s
        }
    }

    public func intervalMilliseconds(sensor: String, default fallback: Int64) -> Int64 {
        lock.withLock {
            for key in ["\(sensor).interval", "interval"] {
                if let v = values[key], let ms = parseDurationOrSeconds(v) { return ms }
            }
            return fallback
        }
    }

    public func enabled(sensor: String, default fallback: Bool) -> Bool {
        lock.withLock {
            guard let v = values["\(sensor).enabled"]?.lowercased() else { return fallback }
            return ["true", "1", "on"].contains(v)
        }
    }

    public func uploadIntervalMilliseconds(default fallback: Int64) -> Int64 {
        lock.withLock { values["upload_interval"].flatMap { parseDurationOrSeconds($0) } ?? fallback }
    }

    public func logLevel(default fallback: LogLevel) -> LogLevel {
        lock.withLock { values["log_level"].flatMap { LogLevel(name: $0) } ?? fallback }
    }

    public var all: [String: String] { lock.withLock { values } }

    /// `on`/`off` and friends as a bool.
    public static func switchValue(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "on", "true", "1", "high": true
        case "off", "false", "0", "low": false
        default: nil
        }
    }

    /// The state an output should have: the last applied value, or its initial one.
    public func output(_ name: String, default fallback: Bool) -> Bool {
        lock.withLock { values[name].flatMap(Self.switchValue) ?? fallback }
    }

    private func save() {
        guard let path else { return }
        let text = lock.withLock { JSONValue.object(values.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).serialized }
        writeFileAtomically(path, Array(text.utf8), sync: true)
    }
}

/// What a downlink message (MQTT) asks for: `key=value` lines, or a JSON object of them, with
/// why any line was not understood. Bounded: at most `maxBytes` of text and `maxSettings`
/// settings, or nothing is taken.
public func parseDownlinkSettings(_ text: String, maxBytes: Int = 4_096, maxSettings: Int = 32) -> (settings: [(String, String)], problems: [String]) {
    guard text.utf8.count <= maxBytes else { return ([], ["a message of \(text.utf8.count) bytes (at most \(maxBytes)); ignored"]) }
    var settings: [(String, String)] = []
    var problems: [String] = []
    if case .object(let members)? = try? JSONValue.parse(text) {
        settings = members.map { ($0.0, $0.1.stringValue ?? $0.1.serialized) }
    } else {
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            guard kv.count == 2 else { problems.append("'\(line.prefix(80))' is not key=value"); continue }
            settings.append((kv[0], kv[1]))
        }
    }
    guard settings.count <= maxSettings else { return ([], problems + ["\(settings.count) settings in one message (at most \(maxSettings)); ignored"]) }
    return (settings, problems)
}
