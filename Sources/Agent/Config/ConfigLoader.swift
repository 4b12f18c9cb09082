#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit
import TagoTiP
import Hardware
import Sensors

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

    mutating func load(_ root: TOMLTable) -> AgentConfig {
        var config = AgentConfig(file: file)
        var top = TableReader(root, path: "", file: file)
        if let t = top.subtable("device") { config.device = device(t, &config.warnings) }
        if let t = top.subtable("uplink") {
            var r = TableReader(t, path: "uplink", file: file)
            if let s = r.choice("transport", UplinkSettings.Transport.allCases.map(\.rawValue)) { config.uplink.transport = .init(rawValue: s)! }
            if let n = r.integer("batch_size", in: 1...8000, hint: "readings per request") { config.uplink.batchSize = Int(n) }
            if let ms = r.duration("backoff_base", minimum: 10) { config.uplink.backoffBaseMilliseconds = ms }
            if let ms = r.duration("backoff_cap", minimum: 100) { config.uplink.backoffCapMilliseconds = ms }
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
            if config.uplink.backoffCapMilliseconds < config.uplink.backoffBaseMilliseconds {
                r.fail("backoff_cap", "is below backoff_base")
            }
            finish(&r, valid: ["transport", "batch_size", "backoff_base", "backoff_cap", "timeout", "connect_timeout", "ca_file", "insecure", "dead_letter"])
        }
        if let t = top.subtable("mqtt") {
            var r = TableReader(t, path: "mqtt", file: file)
            if let s = r.string("host") {
                if s.isEmpty { r.fail("host", "is empty; give a host name or address") } else { config.mqtt.host = s }
            }
            if let p = r.integer("port", in: 1...65535) { config.mqtt.port = Int(p) }
            if let s = r.string("topic") {
                if s.isEmpty || s.contains("+") || s.contains("#") { r.fail("topic", "'\(s)' is not a topic to publish to (not empty, no + or # wildcards)") } else { config.mqtt.topic = s }
            }
            if let s = r.choice("format", MQTTSettings.Format.allCases.map(\.rawValue)) { config.mqtt.format = .init(rawValue: s)! }
            if let s = r.string("client_id") {
                if s.isEmpty { r.fail("client_id", "is empty; leave it out to use tagoedge-<hostname>") } else { config.mqtt.clientID = s }
            }
            if let s = r.string("username") { config.mqtt.username = s }
            if let n = r.integer("keepalive", in: 5...65535, hint: "seconds") { config.mqtt.keepaliveSeconds = Int(n) }
            if let b = r.bool("clean_session") { config.mqtt.cleanSession = b }
            if let b = r.bool("tls") { config.mqtt.tls = b }
            for key in ["ca_file", "cert_file", "key_file"] {
                guard let f = r.string(key) else { continue }
                guard f.hasPrefix("/") else { r.fail(key, "'\(f)' must be an absolute path"); continue }
                config.mqtt.tls = true
                switch key {
                case "ca_file": config.mqtt.caFile = f
                case "cert_file": config.mqtt.certFile = f
                default: config.mqtt.keyFile = f
                }
            }
            if (config.mqtt.certFile == nil) != (config.mqtt.keyFile == nil) {
                r.fail(config.mqtt.certFile == nil ? "key_file" : "cert_file", "a client certificate needs both cert_file and key_file")
            }
            if let b = r.bool("insecure") {
                config.mqtt.insecure = b
                if b { config.warnings.append(ConfigError(file: file, line: t["insecure"]?.line, key: "mqtt.insecure", "the broker's TLS certificate will NOT be verified")) }
            }
            if let n = r.integer("batch_size", in: 1...10_000) { config.mqtt.batchSize = Int(n) }
            if let n = r.integer("inflight", in: 1...1000, hint: "messages awaiting PUBACK") { config.mqtt.inflight = Int(n) }
            if let s = r.string("max_payload") {
                if let b = parseByteSize(s), b >= 512, b <= 256 << 20 { config.mqtt.maxPayloadBytes = Int(b) } else { r.fail("max_payload", "'\(s)' is not a size from 512 bytes to 256MiB") }
            }
            if let s = r.string("serial") { config.mqtt.serial = s }
            if let s = r.string("status_topic") { config.mqtt.statusTopic = s }
            if let s = r.string("downlink_topic") { config.mqtt.downlinkTopic = s }
            if config.mqtt.format == .tagotip {
                // The first versions sent TagoTiP through the JSON uplink, with the token as the
                // password; such a config now means the TagoTiP uplink over this broker.
                if config.mqtt.serial == nil { r.fail("serial", "is required with format = \"tagotip\" (the device serial in $tip/{serial}/push)", line: t.line) }
                config.tagotip.serial = config.mqtt.serial
                config.tagotip.url = "\(config.mqtt.tls ? "mqtts" : "mqtt")://\(config.mqtt.host):\(config.mqtt.port)"
                config.tagotip.caFile = config.mqtt.caFile
                config.tagotip.insecure = config.mqtt.insecure
                if config.tagotip.token == nil { config.tagotip.token = config.device.token }
                if config.uplink.transport == .mqtt { config.uplink.transport = .tagotip }
                config.warnings.append(ConfigError(file: file, line: t["format"]?.line, key: "mqtt.format",
                                                   "format = \"tagotip\" is deprecated: write [uplink] transport = \"tagotip\" and a [tagotip] table (serial, token, url); it is read as one"))
            }
            finish(&r, valid: ["host", "port", "topic", "format", "client_id", "username", "keepalive", "clean_session", "tls", "ca_file", "cert_file",
                               "key_file", "insecure", "batch_size", "inflight", "max_payload", "serial", "status_topic", "downlink_topic"])
        }
        if let t = top.subtable("tagotip") { tagotip(t, &config) }
        if config.uplink.transport == .tagotip {
            if config.tagotip.serial == nil { top.fail("tagotip", "a [tagotip] table with serial and token is required with [uplink] transport = \"tagotip\"", line: nil) }
            if config.tagotip.token == nil, config.tagotip.serial != nil {
                top.fail("tagotip", "[tagotip] token is required (the profile's Authorization Token, e.g. \"env:TAGO_TIP_TOKEN\")", line: nil)
            }
        }
        if let t = top.subtable("spool") {
            var r = TableReader(t, path: "spool", file: file)
            if let s = r.string("path") {
                if s.isEmpty { r.fail("path", "is empty; give a file path such as \"/var/lib/tagoedge/spool\"") } else { config.spool.path = s }
            }
            if let s = r.string("capacity") {
                if let bytes = parseByteSize(s), bytes >= 64 * 1024 {
                    config.spool.capacityBytes = bytes
                } else {
                    r.fail("capacity", "'\(s)' is not a size of at least 64KiB; write e.g. \"64MiB\" or \"512KiB\"")
                }
            }
            if let s = r.choice("sync", SpoolSettings.Sync.allCases.map(\.rawValue)) { config.spool.sync = .init(rawValue: s)! }
            if let ms = r.duration("sync_interval", minimum: 10) { config.spool.syncIntervalMilliseconds = ms }
            if let f = r.choice("full", ["drop-oldest", "reject-newest"]) { config.spool.full = f }
            finish(&r, valid: ["path", "capacity", "sync", "sync_interval", "full"])
        }
        if let t = top.subtable("agent") {
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
            finish(&r, valid: ["params_interval", "upload_interval", "clock", "telemetry", "log_level"])
        }
        for (index, t) in tables(&top, "sensor") {
            if let s = sensor(t, index: index) { config.sensors.append(s) }
        }
        for (index, t) in tables(&top, "output") {
            var r = TableReader(t, path: "output[\(index)]", file: file)
            let name = r.string("name") ?? ""
            if name.isEmpty || nameProblem(name) != nil { r.fail("name", "is required: letters, digits and '_' (the configuration_params key that switches it)", line: t.line) }
            var o = OutputConfig(name: name, line: t.line)
            if let c = r.string("chip") { o.chip = c }
            if case .string(let s)? = t["line"]?.value {
                _ = r.node("line")
                if s.isEmpty { r.fail("line", "is empty; give the line offset or the kernel's name for it, such as \"GPIO22\"") } else { o.lineName = s }
            } else if let l = r.integer("line", in: 0...511, hint: "the line offset on the chip, or its name such as \"GPIO22\"") { o.lineOffset = UInt32(l) } else if t["line"] == nil {
                r.fail("line", "is missing; give the line offset (BCM GPIO number on a Pi)", line: t.line)
            }
            if let a = r.bool("active_low") { o.activeLow = a }
            if let i = r.bool("initial") { o.initial = i }
            if r.subtable("simulate") != nil { o.simulate = true }
            finish(&r, valid: ["name", "chip", "line", "active_low", "initial", "simulate"])
            if config.outputs.contains(where: { $0.name == o.name }) || config.sensors.contains(where: { $0.name == o.name }) {
                errors.append(ConfigError(file: file, line: t.line, key: "output[\(index)].name", "'\(o.name)' is already the name of a sensor or output"))
            }
            config.outputs.append(o)
        }
        for (index, t) in tables(&top, "analysis") {
            var r = TableReader(t, path: "analysis[\(index)]", file: file)
            let name = r.string("name") ?? ""
            if name.isEmpty { r.fail("name", "is required", line: t.line) }
            let program = r.string("program") ?? ""
            if program.isEmpty { r.fail("program", "is required: the executable to run (a path, or a name on PATH)", line: t.line) }
            var a = EdgeAnalysis(name: name, program: program.hasPrefix("/") || !program.contains("/") ? program : config.resolve(program))
            a.line = t.line
            if let node = r.node("arguments") {
                if case .array(let list) = node.value, list.allSatisfy({ if case .string = $0.value { true } else { false } }) {
                    a.arguments = list.compactMap { if case .string(let s) = $0.value { s } else { nil } }
                } else {
                    r.fail("arguments", "expected an array of strings")
                }
            }
            if let node = r.node("variables") {
                if case .array(let list) = node.value, list.allSatisfy({ if case .string = $0.value { true } else { false } }) {
                    a.variables = list.compactMap { if case .string(let s) = $0.value { s } else { nil } }
                } else {
                    r.fail("variables", "expected an array of variable names, e.g. [\"env_temperature\"]")
                }
            }
            if let ms = r.duration("interval", minimum: 1_000) { a.intervalMilliseconds = ms }
            if let ms = r.duration("timeout", minimum: 100) { a.timeoutMilliseconds = ms }
            if let env = r.subtable("environment") {
                for (k, node) in env.entries {
                    if case .string(let v) = node.value { a.environment.append((k, v)) } else { r.fail("environment", "\(k): expected a string", line: node.line) }
                }
            }
            if a.variables.isEmpty && a.intervalMilliseconds == 0 && !name.isEmpty {
                r.fail("variables", "give the variables that trigger it, an interval, or both", line: t.line)
            }
            finish(&r, valid: ["name", "program", "arguments", "variables", "interval", "timeout", "environment"])
            config.analyses.append(a)
        }
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
        finish(&r, valid: ["token", "api", "plan"])
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
        finish(&r, valid: ["serial", "token", "url", "key", "ca_file", "insecure", "ack_timeout", "batch_size"])
    }

    mutating func sensor(_ t: TOMLTable, index: Int) -> SensorConfig? {
        var r = TableReader(t, path: "sensor[\(index)]", file: file)
        let name = r.string("name")
        if let name, let problem = nameProblem(name) { r.fail("name", "'\(name)' \(problem)") }
        if name == nil, t["name"] == nil { r.fail("name", "is missing; every [[sensor]] needs a name (it prefixes its variables)", line: t.line) }
        let driverName = r.choice("driver", DriverKind.allCases.map(\.rawValue))
        if driverName == nil, t["driver"] == nil { r.fail("driver", "is missing; use one of: \(DriverKind.allCases.map(\.rawValue).joined(separator: ", "))", line: t.line) }
        guard let name, let driverName, let kind = DriverKind(rawValue: driverName), nameProblem(name) == nil else {
            r.rejectUnknown(valid: Self.commonKeys + ["bus", "address", "force"] + Self.driverKeys.values.flatMap { $0 })
            errors += r.errors
            return nil
        }
        var s = SensorConfig(name: name, driver: kind, line: t.line, options: .board(zone: 0))
        if let ms = r.duration("interval", minimum: 100) { s.intervalMilliseconds = ms }
        if let e = r.bool("enabled") { s.enabled = e }
        if kind.isI2C {
            if let b = r.integer("bus", in: 0...255, hint: "the N of /dev/i2c-N") { s.bus = Int(b) }
            s.address = kind.defaultAddress
            if let a = r.integer("address", in: 0x03...0x77, hint: "write the 7-bit address in hex, e.g. 0x76") { s.address = UInt8(a) }
            if let f = r.bool("force") { s.force = f }
        }
        s.options = options(kind, &r)
        if let v = r.subtable("variables") { s.variables = variables(v, sensor: s, path: r.keyName("variables")) }
        if let sim = r.subtable("simulate") { s.simulate = simulation(sim, kind: kind, path: r.keyName("simulate")) }
        if let rep = r.subtable("report") { (s.report, s.reportByQuantity) = report(rep, sensor: s, path: r.keyName("report")) }
        finish(&r, valid: Self.commonKeys + (kind.isI2C ? ["bus", "address", "force"] : []) + (Self.driverKeys[kind] ?? []))
        return s
    }

    static let commonKeys = ["name", "driver", "interval", "enabled", "variables", "simulate", "report"]
    static let driverKeys: [DriverKind: [String]] = [
        .bme280: ["oversampling_temperature", "oversampling_pressure", "oversampling_humidity", "filter"],
        .sht3x: ["repeatability"],
        .bh1750: ["resolution"],
        .ads1115: ["channels", "gain"],
        .ds18b20: ["device"],
        .gpio: ["chip", "line", "mode", "bias", "active_low", "debounce"],
        .board: ["zone"],
    ]

    func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.count > 40 { return "is longer than 40 characters" }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            return "may contain only letters, digits and '_' (it becomes part of TagoIO variable names)"
        }
        return nil
    }

    mutating func options(_ kind: DriverKind, _ r: inout TableReader) -> DriverOptions {
        switch kind {
        case .bme280:
            var s = BME280.Settings()
            func os(_ key: String, _ r: inout TableReader) -> Int? {
                guard let v = r.integer(key, in: 0...16) else { return nil }
                guard BME280.Settings.validOversampling.contains(Int(v)) else { r.fail(key, "\(v) is not valid; use 1, 2, 4, 8 or 16 (0 skips the quantity)"); return nil }
                return Int(v)
            }
            if let v = os("oversampling_temperature", &r) {
                if v == 0 { r.fail("oversampling_temperature", "cannot be 0: pressure and humidity need the temperature") } else { s.temperatureOversampling = v }
            }
            if let v = os("oversampling_pressure", &r) { s.pressureOversampling = v }
            if let v = os("oversampling_humidity", &r) { s.humidityOversampling = v }
            if let f = r.integer("filter", in: 0...16) {
                if BME280.Settings.validFilter.contains(Int(f)) { s.filter = Int(f) } else { r.fail("filter", "\(f) is not valid; use 0 (off), 2, 4, 8 or 16") }
            }
            return .bme280(s)
        case .sht3x:
            let rep = r.choice("repeatability", SHT3x.Repeatability.allCases.map(\.rawValue)).flatMap(SHT3x.Repeatability.init) ?? .high
            return .sht3x(rep)
        case .bh1750:
            let res = r.choice("resolution", BH1750.Resolution.allCases.map(\.rawValue)).flatMap(BH1750.Resolution.init) ?? .high
            return .bh1750(res)
        case .ads1115:
            var channels: [ADS1115.Channel] = [.ain0]
            if let n = r.node("channels") {
                if case .array(let items) = n.value, !items.isEmpty {
                    var parsed: [ADS1115.Channel] = []
                    for item in items {
                        if case .string(let s) = item.value, let c = ADS1115.Channel(rawValue: s), !parsed.contains(c) {
                            parsed.append(c)
                        } else {
                            r.fail("channels", "each channel must appear once and be one of: \(ADS1115.Channel.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))", line: item.line)
                        }
                    }
                    channels = parsed
                } else {
                    r.fail("channels", "expected a non-empty array such as [\"ain0\", \"ain1\"]")
                }
            }
            var gain = ADS1115.Gain.fs4_096
            if let g = r.number("gain") {
                if let v = ADS1115.Gain.allCases.first(where: { abs($0.rawValue - g) < 1e-9 }) { gain = v } else {
                    r.fail("gain", "\(g) is not a full-scale range of the ADS1115; use one of: \(ADS1115.Gain.allCases.map { String($0.rawValue) }.joined(separator: ", ")) (volts)")
                }
            }
            return .ads1115(channels: channels, gain: gain)
        case .ds18b20:
            let id = r.string("device")
            if let id, !(id.hasPrefix("28-") && id.count == 15) {
                r.fail("device", "'\(id)' is not a DS18B20 ROM id; expect 28- and 12 hex digits, as listed in /sys/bus/w1/devices")
            }
            return .ds18b20(id: id)
        case .gpio:
            var g = GPIOSettings()
            if let c = r.string("chip") {
                if c.isEmpty { r.fail("chip", "is empty; give gpiochipN, a path, or a chip label such as \"pinctrl-rp1\"") } else { g.chip = c }
            }
            if case .string(let s)? = r.table["line"]?.value {
                _ = r.node("line")
                if s.isEmpty { r.fail("line", "is empty; give the line offset or the kernel's name for it, such as \"GPIO17\"") } else { g.lineName = s }
            } else if let l = r.integer("line", in: 0...511, hint: "the line offset on the chip (BCM GPIO number on a Pi), or its name such as \"GPIO17\"") { g.line = UInt32(l) } else if r.table["line"] == nil {
                r.fail("line", "is missing; give the line offset (BCM GPIO number on a Pi, see hardware/boards)", line: r.table.line)
            }
            if let m = r.choice("mode", GPIOSettings.Mode.allCases.map(\.rawValue)) { g.mode = .init(rawValue: m)! }
            if let b = r.choice("bias", GPIOInputOptions.Bias.allCases.map(\.rawValue)) { g.bias = .init(rawValue: b)! }
            if let a = r.bool("active_low") { g.activeLow = a }
            g.debounceMilliseconds = g.mode == .counter ? 5 : 0
            if let n = r.node("debounce") {
                if case .string(let s) = n.value, let ms = parseDuration(s), ms <= 1000 { g.debounceMilliseconds = ms } else {
                    r.fail("debounce", "expected a duration up to 1s in quotes, e.g. \"5ms\"")
                }
            }
            return .gpio(g)
        case .board:
            let zone = r.integer("zone", in: 0...63, hint: "N of /sys/class/thermal/thermal_zoneN").map(Int.init) ?? 0
            return .board(zone: zone)
        }
    }

    static let reportKeys = ["delta", "delta_percent", "heartbeat", "window", "aggregate"]

    /// `[sensor.report]`: the sensor's report settings, and `[sensor.report.<quantity>]` tables
    /// that override them for one variable.
    mutating func report(_ t: TOMLTable, sensor: SensorConfig, path: String) -> (ReportSettings, [String: ReportSettings]) {
        var r = TableReader(t, path: path, file: file)
        let base = reportSettings(&r, base: ReportSettings())
        var byQuantity: [String: ReportSettings] = [:]
        for (key, node) in t.entries {
            guard case .table(let sub) = node.value else { continue }
            guard sensor.quantities.contains(key) else {
                r.fail(key, "is not a variable of this sensor; its variables: \(sensor.quantities.joined(separator: ", "))", line: node.line)
                continue
            }
            _ = r.subtable(key)
            var vr = TableReader(sub, path: r.keyName(key), file: file)
            byQuantity[key] = reportSettings(&vr, base: base)
            finish(&vr, valid: Self.reportKeys)
        }
        finish(&r, valid: Self.reportKeys + sensor.quantities)
        return (base, byQuantity)
    }

    /// The report keys of one table over `base`; a window excludes a deadband and a heartbeat.
    mutating func reportSettings(_ r: inout TableReader, base: ReportSettings) -> ReportSettings {
        var s = base
        // A table that sets one mode replaces the other mode it inherits ([sensor.report] with a
        // deadband, [sensor.report.pressure] with a window); only one table setting both is wrong.
        let setsWindow = r.has("window"), setsDeadband = r.has("delta") || r.has("delta_percent") || r.has("heartbeat")
        if setsWindow && !setsDeadband { s.delta = nil; s.deltaPercent = nil; s.heartbeatMilliseconds = nil }
        if setsDeadband && !setsWindow { s.windowMilliseconds = nil }
        if let d = r.number("delta") {
            if d > 0 && d.isFinite { s.delta = d } else { r.fail("delta", "must be greater than 0 (in the variable's unit)") }
        }
        if let p = r.number("delta_percent") {
            if p > 0 && p <= 1000 { s.deltaPercent = p } else { r.fail("delta_percent", "must be greater than 0 and at most 1000") }
        }
        if let h = r.duration("heartbeat", minimum: 1000) { s.heartbeatMilliseconds = h }
        if let w = r.duration("window", minimum: 1000) {
            if w <= 86_400_000 { s.windowMilliseconds = w } else { r.fail("window", "at most 24h") }
        }
        if let a = r.choice("aggregate", ReportSettings.Aggregate.allCases.map(\.rawValue)) {
            s.aggregate = ReportSettings.Aggregate(rawValue: a) ?? .mean
            if s.windowMilliseconds == nil { r.fail("aggregate", "applies to a window; set window too") }
        }
        if s.windowMilliseconds != nil && (s.delta != nil || s.deltaPercent != nil || s.heartbeatMilliseconds != nil) {
            r.fail("window", "a window sends one aggregate per window; it cannot be combined with delta, delta_percent or heartbeat")
        }
        return s
    }

    mutating func variables(_ t: TOMLTable, sensor: SensorConfig, path: String) -> [String: String] {
        var r = TableReader(t, path: path, file: file)
        var out: [String: String] = [:]
        for (key, _) in t.entries where sensor.quantities.contains(key) {
            guard let v = r.string(key) else { continue }
            if let problem = tagoVariableNameProblem(v) { r.fail(key, "'\(v)' \(problem)") } else { out[key] = v }
        }
        finish(&r, valid: sensor.quantities)
        return out
    }

    mutating func simulation(_ t: TOMLTable, kind: DriverKind, path: String) -> SimulationSettings {
        var r = TableReader(t, path: path, file: file)
        var s = SimulationSettings()
        let hasDump = t["dump"] != nil
        if hasDump { s.signal = nil }  // a captured chip keeps its captured values unless a signal is given
        if let k = r.choice("signal", SignalSpec.Kind.allCases.map(\.rawValue)) { s.signal = SignalSpec(.init(rawValue: k)!) }
        if let p = r.duration("period", minimum: 1000) {
            if s.signal == nil { r.fail("period", "needs a signal") } else { s.signal?.periodSeconds = Double(p) / 1000 }
        }
        if let seed = r.integer("seed", in: 0...Int64.max) { s.signal?.seed = UInt64(seed) }
        if let step = r.number("step") {
            if step > 0 { s.signal?.step = step } else { r.fail("step", "must be greater than 0") }
        }
        if let d = r.string("dump") {
            if kind != .bme280 { r.fail("dump", "register dumps seed I2C register-map chips; only bme280 uses one") } else { s.dump = d }
        }
        if let f = r.string("fault") {
            do throws(FaultSpecError) { s.faults = try FaultPlan(spec: f) } catch { r.fail("fault", error.description) }
        }
        var valid = ["signal", "period", "seed", "step", "dump", "fault"]
        if kind == .gpio {
            valid += ["pulse_rate", "bounce"]
            if let rate = r.number("pulse_rate") {
                if rate > 0 && rate <= 1000 { s.pulseRate = rate } else { r.fail("pulse_rate", "must be above 0 and at most 1000 pulses per second") }
            }
            if let b = r.integer("bounce", in: 0...10) { s.bounce = Int(b) }
        }
        finish(&r, valid: valid)
        return s
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
        if config.uplink.transport == .mqtt, !config.mqtt.tls, !isLoopback(config.mqtt.host) {
            warnings.append(ConfigError(file: file, line: nil, key: "mqtt.tls",
                                        "MQTT to \(config.mqtt.host) without TLS: the login and every reading cross the network UNENCRYPTED; set tls = true (port 8883)"))
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
