import EdgeCore
import TagoKit
import Hardware
import Sensors
import Uplink
import MQTT
import Spool

/// Where the device token comes from. The token itself is never printed.
public enum TokenSource: Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case file(String)
    case literal(String)

    /// Parses `env:NAME`, `file:/path`, or a literal token.
    public init(_ text: String) {
        if text.hasPrefix("env:") { self = .environment(String(text.dropFirst(4))) } else if text.hasPrefix("file:") { self = .file(String(text.dropFirst(5))) } else { self = .literal(text) }
    }

    /// Says where the token is, never what it is.
    public var description: String {
        switch self {
        case .environment(let name): "environment variable \(name)"
        case .file(let path): "file \(path)"
        case .literal: "a literal in the config file"
        }
    }
}

public struct DeviceSettings: Sendable, Equatable {
    public var token: TokenSource?
    public var api = "https://api.tago.io"
    /// TagoIO's per-minute request limits the agent keeps to (`plan`: free, starter, scale; "none"
    /// for a deployment without them). Default: free, the lowest.
    public var plan: PlanLimits? = .free
}

public struct UplinkSettings: Sendable, Equatable {
    public enum Transport: String, Sendable, CaseIterable { case http, mqtt, tagotip }
    public var transport = Transport.http
    /// Readings per request at most (HTTP; the body also stays under 200 kB).
    public var batchSize = 500
    public var backoff = Backoff()
    public var timeoutMilliseconds: Int64 = 30_000
    public var connectTimeoutMilliseconds: Int64 = 10_000
    /// A CA bundle to trust in addition to (instead of) the system's.
    public var caFile: String?
    /// Skip TLS certificate verification. Only when the user sets it, with a warning.
    public var insecure = false
    /// Where refused readings go; default: next to the spool.
    public var deadLetter: String?
}

/// `[mqtt]`: the broker connection and what is published, held in the types the MQTT uplink
/// takes (their defaults are the table's), and the payload format.
public struct MQTTSettings: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable { case json, tagotip }
    /// Host, port, client id (default `tagoedge-<hostname>`), username (TagoIO's convention:
    /// `Token`), keepalive, clean session and TLS. The password, the device token, is set when the
    /// agent starts (`AgentConfig.mqttOptions(token:)`), never here.
    public var connection: MQTTOptions = {
        var o = MQTTOptions()
        o.clientID = "tagoedge-\(hostName())"
        o.username = "Token"
        return o
    }()
    /// Topic, batch size, in-flight window, largest payload, status and downlink topics.
    public var publishing = MQTTUplinkSettings()
    public var format = Format.json
    /// The device serial (the deprecated `format = "tagotip"`).
    public var serial: String?

    /// TLS on: `tls = true`, or a CA or a client certificate given.
    public var tls: Bool { connection.tls != nil }
}

/// `[tagotip]`: TagoIO's device protocol (spec tago-io/tagotip), over MQTT or HTTP.
public struct TagoTiPSettings: Sendable, Equatable {
    public enum Binding: String, Sendable { case mqtt, http, udp, tcp }
    /// The device serial: 1 to 100 of `[A-Za-z0-9_-]`.
    public var serial: String?
    /// The profile's Authorization Token (`at` + 32 hex), as `env:NAME`, `file:/path` or a literal.
    /// Only its hash crosses the network.
    public var token: TokenSource?
    /// `mqtts://mqtt.tip.us-e1.tago.io:8883` (the default), `mqtt://…`, `https://http.tip.…`, `http://…`.
    public var url = "mqtts://mqtt.tip.us-e1.tago.io:8883"
    public var caFile: String?
    public var insecure = false
    public var ackTimeoutMilliseconds: Int64 = 10_000
    public var batchSize = 100
    /// TagoTiP/S: the device's Encryption Key (32 hex characters) as `env:NAME` or `file:/path`,
    /// or `derive` (from the token and the serial, TagoTiPs.md §2.4). Nil: plaintext TagoTiP.
    public var key: TokenSource?

    public init() {}

    /// The binding, host, port and TLS the URL names.
    public var endpoint: (binding: Binding, tls: Bool, host: String, port: Int, base: String)? {
        let schemes: [(String, Binding, Bool, Int)] = [("mqtts://", .mqtt, true, 8883), ("mqtt://", .mqtt, false, 1883), ("https://", .http, true, 443), ("http://", .http, false, 80),
                                                       ("udp://", .udp, false, 5683), ("tcps://", .tcp, true, 5694), ("tcp://", .tcp, false, 5693)]
        guard let (prefix, binding, tls, defaultPort) = schemes.first(where: { url.hasPrefix($0.0) }) else { return nil }
        let rest = url.dropFirst(prefix.count)
        let authority = rest.prefix { $0 != "/" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains(" ") else { return nil }
        var host = String(authority)
        var port = defaultPort
        if let colon = authority.lastIndex(of: ":"), !authority.hasPrefix("[") || authority[..<colon].hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = String(authority[..<colon])
        }
        if binding != .http, rest.count > authority.count, rest.dropFirst(authority.count) != "/" { return nil }
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        return (binding, tls, host, port, base)
    }
}

public struct SpoolSettings: Sendable, Equatable {
    public var path = "/var/lib/tagoedge/spool"
    /// `capacity`, `sync`, `sync_interval` and `full`: the spool's own options, whose defaults are
    /// the table's.
    public var options = FileSpool.Options()

    public init() {}
}

/// How the running agent behaves.
public struct AgentSettings: Sendable, Equatable {
    /// How often configuration_params are polled (GET /device/params?sent_status=false); 0: never.
    public var paramsIntervalMilliseconds: Int64 = 60_000
    /// How long the uplink rests when the spool is empty.
    public var uploadIntervalMilliseconds: Int64 = 1_000
    /// When the system clock is trusted: `auto`, `kernel` (NTP-synchronised only), `trust`.
    public var clock = ClockGuard.Mode.auto
    /// How often the agent sends its own variables (`agent_*`); 0: never.
    public var telemetryIntervalMilliseconds: Int64 = 300_000
    /// What the agent logs: `error`, `warning`, `info` (the default) or `debug`; a `log_level`
    /// configuration_param overrides it.
    public var logLevel = LogLevel.info
}

/// The supported drivers, by their config name.
public enum DriverKind: String, Sendable, CaseIterable {
    case bme280, sht3x, bh1750, ads1115, ds18b20, gpio, board

    public var isI2C: Bool { [.bme280, .sht3x, .bh1750, .ads1115].contains(self) }

    var defaultAddress: UInt8? {
        switch self {
        case .bme280: 0x76
        case .sht3x: 0x44
        case .bh1750: 0x23
        case .ads1115: 0x48
        default: nil
        }
    }
}

/// Driver-specific settings.
public enum DriverOptions: Sendable, Equatable {
    case bme280(BME280.Settings)
    case sht3x(SHT3x.Repeatability)
    case bh1750(BH1750.Resolution)
    case ads1115(channels: [ADS1115.Channel], gain: ADS1115.Gain)
    case ds18b20(id: String?)
    case gpio(GPIOSettings)
    case board(zone: Int)
}

public struct GPIOSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable { case input, counter }
    public var chip = "gpiochip0"
    public var line: UInt32 = 0
    /// `line = "GPIO17"`: the line the kernel names so, found on the chip when it is requested.
    public var lineName: String?
    public var mode = Mode.input
    public var bias = GPIOInputOptions.Bias.asIs
    public var activeLow = false
    public var debounceMilliseconds: Int64 = 0
}

/// How a sensor is simulated on the bench: the same driver runs against a simulated chip.
public struct SimulationSettings: Sendable, Equatable {
    public var signal: SignalSpec? = SignalSpec(.sine)
    /// An i2cdump capture to seed the chip's registers from (resolved against the config's folder).
    public var dump: String?
    public var faults = FaultPlan.none
    /// GPIO counters: pulses per second and bounce edges per pulse.
    public var pulseRate = 1.0
    public var bounce = 0
}

/// One `[[sensor]]` table.
public struct SensorConfig: Sendable, Equatable {
    public var name: String
    public var driver: DriverKind
    public var line: Int
    public var intervalMilliseconds: Int64 = 10_000
    public var enabled = true
    public var bus = 1
    public var address: UInt8?
    public var force = false
    public var options: DriverOptions
    /// Renames: quantity → variable name.
    public var variables: [String: String] = [:]
    public var simulate: SimulationSettings?
    /// `[sensor.report]`, and per quantity `[sensor.report.<quantity>]` (the sensor's merged in).
    public var report = ReportSettings()
    public var reportByQuantity: [String: ReportSettings] = [:]

    /// How the variable of `quantity` is reported.
    public func reportSettings(for quantity: String) -> ReportSettings {
        reportByQuantity[quantity] ?? report
    }

    /// Quantities whose values add up (a counter's pulses since the last read): a filter carries
    /// what it holds back, a window sums.
    public var additiveQuantities: Set<String> {
        if case .gpio(let g) = options, g.mode != .input { return ["pulses"] }
        return []
    }

    /// The unit a quantity's readings carry (for estimates; the driver sets the real one).
    public func unit(of quantity: String) -> String? {
        switch quantity {
        case "temperature": "°C"
        case "pressure": "hPa"
        case "humidity": "%"
        case "illuminance": "lx"
        case "count", "pulses", "state": nil
        default: "V"
        }
    }

    /// The quantities this sensor reports, in the order the driver returns them.
    public var quantities: [String] {
        switch options {
        case .bme280(let s):
            return ["temperature"] + (s.pressureOversampling > 0 ? ["pressure"] : []) + (s.humidityOversampling > 0 ? ["humidity"] : [])
        case .sht3x: return ["temperature", "humidity"]
        case .bh1750: return ["illuminance"]
        case .ads1115(let channels, _): return channels.map(\.quantity)
        case .ds18b20: return ["temperature"]
        case .gpio(let g): return g.mode == .input ? ["state"] : ["count", "pulses"]
        case .board: return ["temperature"]
        }
    }

    /// `<name>_<quantity>` unless `[sensor.variables]` renames it.
    public func variableName(for quantity: String) -> String {
        variables[quantity] ?? "\(name)_\(quantity)"
    }
}

/// One `[[output]]`: a GPIO line the cloud can switch (a relay, a LED), by name.
public struct OutputConfig: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var chip = "gpiochip0"
    public var lineOffset: UInt32 = 0
    /// `line = "GPIO22"`: the line the kernel names so.
    public var lineName: String?
    public var activeLow = false
    public var initial = false
    /// On the bench: a simulated chip records the writes.
    public var simulate = false
}

/// The whole configuration file.
public struct AgentConfig: Sendable {
    public var file: String
    public var device = DeviceSettings()
    public var uplink = UplinkSettings()
    public var mqtt = MQTTSettings()
    public var tagotip = TagoTiPSettings()
    public var spool = SpoolSettings()
    public var agent = AgentSettings()
    public var sensors: [SensorConfig] = []
    public var outputs: [OutputConfig] = []
    /// Analyses run on the gateway, by readings or on a timer (`[[analysis]]`).
    public var analyses: [EdgeAnalysis] = []
    /// Not errors, but worth saying (a literal token, a sensor disabled).
    public var warnings: [ConfigError] = []

    /// The folder relative paths in the file are resolved against.
    public var directory: String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }

    /// The dead-letter file: `uplink.dead_letter`, or `<spool path>.dead-letter.jsonl`.
    public var deadLetterPath: String { uplink.deadLetter ?? spool.path + ".dead-letter.jsonl" }

    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : directory + "/" + path
    }
}
