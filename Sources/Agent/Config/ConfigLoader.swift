#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit
import TagoTiP
import Hardware
import Sensors
import MQTT

extension AgentConfig {
    /// Reads and validates a configuration file. Throws `ConfigErrors` listing every problem, each
    /// with the file, line and key.
    public static func load(path: String) throws(ConfigErrors) -> AgentConfig {
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            var message = "cannot read the file: \(error)"
            if access(path, F_OK) != 0 {
                message += "; start from config/raspberry-pi.toml (installed: /usr/share/doc/tagoedge/examples/raspberry-pi.toml),"
                    + " or try the bench with config/bench.toml; README.md, \"Configuration reference\""
            }
            throw ConfigErrors(errors: [ConfigError(file: path, line: nil, key: nil, message)])
        }
        return try parse(text, file: path)
    }

    /// Validates configuration text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(ConfigErrors) -> AgentConfig {
        let root: TOMLTable
        do {
            root = try TOML.parse(text)
        } catch {
            throw ConfigErrors(errors: [ConfigError(file: file, line: error.line, key: nil, "\(error.message) (column \(error.column))")])
        }
        var loader = ConfigLoader(file: file)
        let config = loader.load(root)
        guard loader.errors.isEmpty else { throw ConfigErrors(errors: loader.errors) }
        return config
    }
}

struct ConfigLoader {
    let file: String
    var errors: [ConfigError] = []

    init(file: String) {
        self.file = file
    }

    /// The tables of `[[key]]`, with their index; anything else there is an error.
    mutating func tables(_ top: inout TableReader, _ key: String) -> [(index: Int, table: TOMLTable)] {
        guard let n = top.node(key) else { return [] }
        guard case .array(let items) = n.value else {
            top.fail(key, "written as [[\(key)]] tables, found \(n.value.typeName)")
            return []
        }
        var out: [(index: Int, table: TOMLTable)] = []
        for (index, item) in items.enumerated() {
            guard case .table(let t) = item.value else {
                errors.append(ConfigError(file: file, line: item.line, key: "\(key)[\(index)]", "expected a [[\(key)]] table"))
                continue
            }
            out.append((index, t))
        }
        return out
    }

    mutating func finish(_ reader: inout TableReader, valid: [String]) {
        reader.rejectUnknown(valid: valid)
        errors += reader.errors
    }

    /// Ends a table whose valid keys are the ones its reader asked for.
    mutating func finish(_ reader: inout TableReader) {
        finish(&reader, valid: reader.asked)
    }

    mutating func load(_ root: TOMLTable) -> AgentConfig {
        var config = AgentConfig(file: file)
        var top = TableReader(root, path: "", file: file)
        if let t = top.subtable("device") { config.device = device(t, &config.warnings) }
        if let t = top.subtable("uplink") { uplink(t, &config) }
        if let t = top.subtable("mqtt") { mqtt(t, &config) }
        if let t = top.subtable("tagotip") { tagotip(t, &config) }
        if config.uplink.transport == .tagotip {
            if config.tagotip.serial == nil { top.fail("tagotip", "a [tagotip] table with serial and token is required with [uplink] transport = \"tagotip\"", line: nil) }
            if config.tagotip.token == nil, config.tagotip.serial != nil {
                top.fail("tagotip", "[tagotip] token is required (the profile's Authorization Token, e.g. \"env:TAGO_TIP_TOKEN\")", line: nil)
            }
        }
        if let t = top.subtable("spool") { spool(t, &config) }
        if let t = top.subtable("agent") { agentTable(t, &config) }
        for (index, t) in tables(&top, "sensor") {
            if let s = sensor(t, index: index) { config.sensors.append(s) }
        }
        for (index, t) in tables(&top, "output") { output(t, index: index, &config) }
        for (index, t) in tables(&top, "analysis") { analysis(t, index: index, &config) }
        finish(&top, valid: Self.topKeys)
        if config.uplink.transport == .tagotip {
            // TagoTiP refuses names outside [a-z0-9_]: say so now, not as dead letters later.
            for sensor in config.sensors where sensor.enabled {
                for quantity in sensor.quantities where !Tip.isValidName(sensor.variableName(for: quantity)) {
                    errors.append(ConfigError(file: file, line: sensor.line, key: "sensor '\(sensor.name)'",
                                              "its variable '\(sensor.variableName(for: quantity))' is not a TagoTiP name (1 to 100 of a-z 0-9 _); name the sensor in lowercase or rename it in [sensor.variables]"))
                }
            }
        }
        config.warnings += Self.plaintextWarnings(config, file: file)
        var seen: [String: Int] = [:]
        for s in config.sensors {
            if let first = seen[s.name] {
                errors.append(ConfigError(file: file, line: s.line, key: "sensor.name", "'\(s.name)' is used by another sensor (line \(first)); names must be unique"))
            }
            seen[s.name] = s.line
            if !s.enabled { config.warnings.append(ConfigError(file: file, line: s.line, key: "sensor '\(s.name)'", "is disabled (enabled = false)")) }
        }
        var variables: [String: String] = [:]
        for s in config.sensors {
            for q in s.quantities {
                let v = s.variableName(for: q)
                if let other = variables[v.lowercased()] {
                    errors.append(ConfigError(file: file, line: s.line, key: "sensor '\(s.name)'", "variable '\(v)' is also produced by sensor '\(other)'; rename one in [sensor.variables]"))
                }
                variables[v.lowercased()] = s.name
            }
        }
        return config
    }

    /// `[uplink]`.
    mutating func uplink(_ t: TOMLTable, _ config: inout AgentConfig) {
        var r = TableReader(t, path: "uplink", file: file)
        if let s = r.choice("transport", UplinkSettings.Transport.allCases.map(\.rawValue)) { config.uplink.transport = .init(rawValue: s)! }
        if let n = r.integer("batch_size", in: 1...8000, hint: "readings per request") { config.uplink.batchSize = Int(n) }
        if let ms = r.duration("backoff_base", minimum: 10) { config.uplink.backoff.baseMilliseconds = ms }
        if let ms = r.duration("backoff_cap", minimum: 100) { config.uplink.backoff.capMilliseconds = ms }
        if let ms = r.duration("timeout", minimum: 100) { config.uplink.timeoutMilliseconds = ms }
        if let ms = r.duration("connect_timeout", minimum: 100) { config.uplink.connectTimeoutMilliseconds = ms }
        if let f = r.string("ca_file") {
            if f.hasPrefix("/") { config.uplink.caFile = f } else { r.fail("ca_file", "'\(f)' must be an absolute path to a PEM bundle") }
        }
        if let i = r.bool("insecure") {
            config.uplink.insecure = i
            if i { config.warnings.append(ConfigError(file: file, line: t["insecure"]?.line, key: "uplink.insecure", "TLS certificates will NOT be verified; anyone on the path can read and change the data")) }
        }
        if let d = r.string("dead_letter") {
            if d.isEmpty { r.fail("dead_letter", "is empty; give a file path") } else { config.uplink.deadLetter = d }
        }
        if config.uplink.backoff.capMilliseconds < config.uplink.backoff.baseMilliseconds {
            r.fail("backoff_cap", "is below backoff_base")
        }
        finish(&r)
    }

    /// `[mqtt]`.
    mutating func mqtt(_ t: TOMLTable, _ config: inout AgentConfig) {
        var r = TableReader(t, path: "mqtt", file: file)
        if let s = r.string("host") {
            if s.isEmpty { r.fail("host", "is empty; give a host name or address") } else { config.mqtt.connection.host = s }
        }
        if let p = r.integer("port", in: 1...65535) { config.mqtt.connection.port = Int(p) }
        if let s = r.string("topic") {
            if s.isEmpty || s.contains("+") || s.contains("#") { r.fail("topic", "'\(s)' is not a topic to publish to (not empty, no + or # wildcards)") } else { config.mqtt.publishing.topic = s }
        }
        if let s = r.choice("format", MQTTSettings.Format.allCases.map(\.rawValue)) { config.mqtt.format = .init(rawValue: s)! }
        if let s = r.string("client_id") {
            if s.isEmpty { r.fail("client_id", "is empty; leave it out to use tagoedge-<hostname>") } else { config.mqtt.connection.clientID = s }
        }
        if let s = r.string("username") { config.mqtt.connection.username = s }
        if let n = r.integer("keepalive", in: 5...65535, hint: "seconds") { config.mqtt.connection.keepaliveSeconds = Int(n) }
        if let b = r.bool("clean_session") { config.mqtt.connection.cleanSession = b }
        // TLS: `tls = true`, or any of the files (which imply it).
        var tls = MQTTOptions.TLSOptions()
        var tlsOn = r.bool("tls") ?? false
        for key in ["ca_file", "cert_file", "key_file"] {
            guard let f = r.string(key) else { continue }
            guard f.hasPrefix("/") else { r.fail(key, "'\(f)' must be an absolute path"); continue }
            tlsOn = true
            switch key {
            case "ca_file": tls.caFile = f
            case "cert_file": tls.certFile = f
            default: tls.keyFile = f
            }
        }
        if (tls.certFile == nil) != (tls.keyFile == nil) {
            r.fail(tls.certFile == nil ? "key_file" : "cert_file", "a client certificate needs both cert_file and key_file")
        }
        if let b = r.bool("insecure") {
            tls.insecure = b
            if b { config.warnings.append(ConfigError(file: file, line: t["insecure"]?.line, key: "mqtt.insecure", "the broker's TLS certificate will NOT be verified")) }
        }
        config.mqtt.connection.tls = tlsOn ? tls : nil
        if let n = r.integer("batch_size", in: 1...10_000) { config.mqtt.publishing.batchSize = Int(n) }
        if let n = r.integer("inflight", in: 1...1000, hint: "messages awaiting PUBACK") { config.mqtt.publishing.inflightWindow = Int(n) }
        if let s = r.string("max_payload") {
            if let b = parseByteSize(s), b >= 512, b <= 256 << 20 { config.mqtt.publishing.maxPayloadBytes = Int(b) } else { r.fail("max_payload", "'\(s)' is not a size from 512 bytes to 256MiB") }
        }
        if let s = r.string("serial") { config.mqtt.serial = s }
        if let s = r.string("status_topic") { config.mqtt.publishing.statusTopic = s }
        if let s = r.string("downlink_topic") { config.mqtt.publishing.downlinkTopic = s }
        if config.mqtt.format == .tagotip {
            // The first versions sent TagoTiP through the JSON uplink, with the token as the
            // password; such a config now means the TagoTiP uplink over this broker.
            if config.mqtt.serial == nil { r.fail("serial", "is required with format = \"tagotip\" (the device serial in $tip/{serial}/push)", line: t.line) }
            config.tagotip.serial = config.mqtt.serial
            config.tagotip.url = "\(config.mqtt.tls ? "mqtts" : "mqtt")://\(config.mqtt.connection.host):\(config.mqtt.connection.port)"
            config.tagotip.caFile = tls.caFile
            config.tagotip.insecure = tls.insecure
            if config.tagotip.token == nil { config.tagotip.token = config.device.token }
            if config.uplink.transport == .mqtt { config.uplink.transport = .tagotip }
            config.warnings.append(ConfigError(file: file, line: t["format"]?.line, key: "mqtt.format",
                                               "format = \"tagotip\" is deprecated: write [uplink] transport = \"tagotip\" and a [tagotip] table (serial, token, url); it is read as one"))
        }
        finish(&r)
    }

    /// `[spool]`.
    mutating func spool(_ t: TOMLTable, _ config: inout AgentConfig) {
        var r = TableReader(t, path: "spool", file: file)
        if let s = r.string("path") {
            if s.isEmpty { r.fail("path", "is empty; give a file path such as \"/var/lib/tagoedge/spool\"") } else { config.spool.path = s }
        }
        if let s = r.string("capacity") {
            if let bytes = parseByteSize(s), bytes >= 64 * 1024 {
                config.spool.options.capacityBytes = bytes
            } else {
                r.fail("capacity", "'\(s)' is not a size of at least 64KiB; write e.g. \"64MiB\" or \"512KiB\"")
            }
        }
        if let s = r.choice("sync", SpoolSyncMode.allCases.map(\.rawValue)), let mode = SpoolSyncMode(rawValue: s) { config.spool.options.sync = mode }
        if let ms = r.duration("sync_interval", minimum: 10) { config.spool.options.syncIntervalMilliseconds = ms }
        if let f = r.choice("full", SpoolFullPolicy.allCases.map(\.rawValue)), let policy = SpoolFullPolicy(rawValue: f) { config.spool.options.policy = policy }
        finish(&r)
    }

    /// `[agent]`.
    mutating func agentTable(_ t: TOMLTable, _ config: inout AgentConfig) {
        var r = TableReader(t, path: "agent", file: file)
        if let n = r.node("params_interval") {
            if case .string("off") = n.value { config.agent.paramsIntervalMilliseconds = 0 } else if let ms = r.duration("params_interval", minimum: 1_000) {
                config.agent.paramsIntervalMilliseconds = ms
            }
        }
        if let ms = r.duration("upload_interval", minimum: 100) { config.agent.uploadIntervalMilliseconds = ms }
        if let c = r.choice("clock", ClockGuard.Mode.allCases.map(\.rawValue)) { config.agent.clock = ClockGuard.Mode(rawValue: c) ?? .auto }
        if let n = r.node("telemetry") {
            if case .string("off") = n.value { config.agent.telemetryIntervalMilliseconds = 0 } else if let ms = r.duration("telemetry", minimum: 1_000) {
                config.agent.telemetryIntervalMilliseconds = ms
            }
        }
        if let l = r.choice("log_level", LogLevel.allCases.map(\.name)) { config.agent.logLevel = LogLevel(name: l) ?? .info }
        finish(&r)
    }

    static let topKeys = ["device", "uplink", "mqtt", "spool", "agent", "sensor", "output", "analysis"]

    /// A table's `token`: `env:NAME`, `file:/path`, or a literal (warned about); nil when absent
    /// or wrong (the error names the key and shows the forms with `env` and `file` as examples).
    func tokenSource(_ r: inout TableReader, env: String, file path: String, _ warnings: inout [ConfigError]) -> TokenSource? {
        guard let s = r.string("token") else { return nil }
        let source = TokenSource(s)
        switch source {
        case .environment(let name) where name.isEmpty || name.contains(" "):
            r.fail("token", "'env:' needs a variable name, e.g. \"env:\(env)\"")
        case .file(let p) where !p.hasPrefix("/"):
            r.fail("token", "'file:' needs an absolute path, e.g. \"file:\(path)\"")
        case .literal(let value) where value.isEmpty:
            r.fail("token", "is empty; use \"env:\(env)\" or \"file:\(path)\"")
        case .literal:
            warnings.append(ConfigError(file: file, line: r.table["token"]?.line, key: r.keyName("token"),
                                        "is written in the file; prefer \"env:\(env)\" or \"file:\(path)\" (mode 0600)"))
            return source
        default:
            return source
        }
        return nil
    }

    mutating func device(_ t: TOMLTable, _ warnings: inout [ConfigError]) -> DeviceSettings {
        var d = DeviceSettings()
        var r = TableReader(t, path: "device", file: file)
        d.token = tokenSource(&r, env: "TAGO_DEVICE_TOKEN", file: "/etc/tagoedge/token", &warnings)
        if let s = r.string("api") {
            if (s.hasPrefix("https://") || s.hasPrefix("http://")) && s.count > 8 && !s.contains(" ") {
                d.api = s.hasSuffix("/") ? String(s.dropLast()) : s
            } else {
                r.fail("api", "'\(s)' is not a base URL; write e.g. \"https://api.tago.io\" or \"http://127.0.0.1:8080\"")
            }
        }
        if let p = r.choice("plan", PlanLimits.all.map(\.name) + ["none"]) { d.plan = PlanLimits.named(p) }
        finish(&r)
        return d
    }

    mutating func tagotip(_ t: TOMLTable, _ config: inout AgentConfig) {
        var r = TableReader(t, path: "tagotip", file: file)
        if let s = r.string("serial") {
            if Tip.isValidSerial(s) { config.tagotip.serial = s } else { r.fail("serial", "'\(s)' is not a TagoTiP serial (1 to 100 of A-Z a-z 0-9 _ -)") }
        }
        if let source = tokenSource(&r, env: "TAGO_TIP_TOKEN", file: "/etc/tagoedge/tip-token", &config.warnings) { config.tagotip.token = source }
        if let s = r.string("url") {
            var probe = TagoTiPSettings()
            probe.url = s
            if probe.endpoint == nil {
                r.fail("url", "'\(s)' is not a TagoTiP address: mqtts://host[:port], mqtt://…, https://…, http://…, tcps://…, tcp://… or udp://host[:port]")
            } else {
                config.tagotip.url = s
            }
        }
        if let f = r.string("ca_file") {
            if f.hasPrefix("/") { config.tagotip.caFile = f } else { r.fail("ca_file", "'\(f)' must be an absolute path to a PEM bundle") }
        }
        if let b = r.bool("insecure") {
            config.tagotip.insecure = b
            if b { config.warnings.append(ConfigError(file: file, line: t["insecure"]?.line, key: "tagotip.insecure", "the server's TLS certificate will NOT be verified")) }
        }
        if let s = r.string("key") {
            switch TokenSource(s) {
            case .literal("derive"): config.tagotip.key = .literal("derive")
            case .literal: r.fail("key", "give the Encryption Key as \"file:/etc/tagoedge/tip-key\" or \"env:NAME\" (32 hex characters), or \"derive\"")
            case .environment(let name) where name.isEmpty: r.fail("key", "'env:' needs a variable name")
            case .file(let path) where !path.hasPrefix("/"): r.fail("key", "'file:' needs an absolute path")
            case let source: config.tagotip.key = source
            }
        }
        if let ms = r.duration("ack_timeout", minimum: 100) { config.tagotip.ackTimeoutMilliseconds = ms }
        if let n = r.integer("batch_size", in: 1...Int64(Tip.maxVariables), hint: "readings per message (TagoTiP takes 100)") { config.tagotip.batchSize = Int(n) }
        if config.tagotip.key != nil, config.tagotip.endpoint?.binding == .mqtt {
            r.fail("key", "the bindings define TagoTiP/S for UDP, TCP and HTTP, not MQTT; use mqtts:// (TLS) or another url")
        }
        if config.tagotip.key == nil, config.tagotip.endpoint?.binding == .udp {
            config.warnings.append(ConfigError(file: file, line: t["url"]?.line, key: "tagotip.url", "UDP without a key: readings cross the network UNENCRYPTED and unauthenticated; set [tagotip] key for TagoTiP/S"))
        }
        finish(&r)
    }
}

extension ConfigLoader {
    /// Loud warnings where the token would cross the network unencrypted: the HTTP uplink (or the
    /// params poller) to an `http://` API, or MQTT without TLS, on a host that is not this machine.
    static func plaintextWarnings(_ config: AgentConfig, file: String) -> [ConfigError] {
        var warnings: [ConfigError] = []
        let api = config.device.api.lowercased()
        if api.hasPrefix("http://"), !isLoopback(host(ofURL: api)) {
            warnings.append(ConfigError(file: file, line: nil, key: "device.api",
                                        "\(config.device.api) is plain HTTP to another machine: the device token and every reading cross the network UNENCRYPTED; use https://"))
        }
        if config.uplink.transport == .tagotip, let e = config.tagotip.endpoint, !e.tls, config.tagotip.key == nil, e.binding != .udp, !isLoopback(e.host) {
            warnings.append(ConfigError(file: file, line: nil, key: "tagotip.url",
                                        "TagoTiP to \(e.host) without TLS: every reading crosses the network UNENCRYPTED (the token stays secret: only its hash is sent); use \(e.binding == .mqtt ? "mqtts://" : e.binding == .tcp ? "tcps://" : "https://") or a [tagotip] key (TagoTiP/S)"))
        }
        if config.uplink.transport == .mqtt, !config.mqtt.tls, !isLoopback(config.mqtt.connection.host) {
            warnings.append(ConfigError(file: file, line: nil, key: "mqtt.tls",
                                        "MQTT to \(config.mqtt.connection.host) without TLS: the login and every reading cross the network UNENCRYPTED; set tls = true (port 8883)"))
        }
        return warnings
    }

    static func host(ofURL url: String) -> String {
        let rest = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard rest.count >= 3 else { return "" }
        let authority = rest[2].split(separator: "@").last.map(String.init) ?? ""
        if authority.hasPrefix("[") { return String(authority.dropFirst().prefix { $0 != "]" }) }
        return String(authority.prefix { $0 != ":" })
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host.hasPrefix("/")
    }
}
