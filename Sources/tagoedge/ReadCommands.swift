import Agent
import EdgeCore
import Hardware

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read every configured sensor once.",
        discussion: "Exit status: 0 all sensors read, 3 some failed, 1 all failed, 2 invalid config."
    )

    @Option(name: .shortAndLong, help: "The configuration file.")
    var config: String

    @Flag(help: "Print a JSON array of TagoIO data objects.")
    var json = false

    @Option(help: "Read only this sensor (by name).")
    var sensor: String?

    func run() throws {
        let agentConfig = try AgentConfig.load(path: config)
        var selected = agentConfig
        selected.sensors = agentConfig.sensors.filter { $0.enabled && (sensor == nil || $0.name == sensor) }
        if let sensor, selected.sensors.isEmpty {
            throw ValidationError("no enabled sensor named '\(sensor)' in \(config); names: \(agentConfig.sensors.map(\.name).joined(separator: ", "))")
        }
        let clock = SystemClock()
        let environment = HardwareEnvironment(clock: clock)
        let outcomes = environment.makeSensors(selected).map { sample($0, at: clock.now()) }
        let failed = outcomes.filter { $0.error != nil }
        if json {
            print(JSONValue.array(outcomes.flatMap { $0.readings.map(\.dataObject) }).serialized)
        } else {
            var rows = [["SENSOR", "VARIABLE", "VALUE", "UNIT"]]
            for o in outcomes {
                for r in o.readings { rows.append([o.sensor, r.variable, r.value.display, r.unit ?? ""]) }
            }
            print(table(rows))
        }
        for f in failed { printError("error: sensor '\(f.sensor)' (\(f.driver)): \(f.error ?? "")") }
        if !failed.isEmpty { throw ExitCode(failed.count == outcomes.count ? Exit.failure : Exit.partial) }
    }
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the addresses that answer on an I2C bus, like i2cdetect, and name the likely chip.",
        discussion: "With --config, simulated sensors on that bus number answer too (bench mode)."
    )

    @Option(help: "The bus number N of /dev/i2c-N (with --propose: only this bus; default every /dev/i2c-*).")
    var bus: Int?

    @Flag(help: "Print a configuration for every chip found (I2C buses and 1-Wire), ready for check-config.")
    var propose = false

    @Option(name: .shortAndLong, help: "A configuration file: scan the simulated bus of its simulated sensors.")
    var config: String?

    @Flag(help: "Print JSON: [{\"address\": \"0x76\", \"chip\": \"BME280\"}].")
    var json = false

    @Flag(help: "Use I2C_SLAVE_FORCE on adapters that need it (addresses a kernel driver holds).")
    var force = false

    func run() throws {
        let environment = HardwareEnvironment(clock: SystemClock())
        if propose { return try runPropose(environment) }
        guard let bus else { throw ValidationError("give --bus N (the N of /dev/i2c-N), or --propose to look at every bus") }
        let i2c: I2CBus
        if let config {
            let agentConfig = try AgentConfig.load(path: config)
            _ = environment.makeSensors(agentConfig)
            i2c = environment.hasSimulatedBus(bus) ? environment.simulatedBus(bus) : try environment.linuxBus(bus, force: force)
        } else {
            i2c = try environment.linuxBus(bus, force: force)
        }
        let found = scanBus(i2c)
        if json {
            print(JSONValue.array(found.map { .object([("address", .string(hexAddress($0.address))), ("chip", $0.chip.map(JSONValue.string) ?? .null)]) }).serialized)
            return
        }
        print("\(i2c.name):")
        print("     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f")
        for row in stride(from: 0, to: 0x80, by: 16) {
            var line = String(hexAddress(UInt8(row)).dropFirst(2)) + ":"
            for col in 0..<16 {
                let a = row + col
                if a < 0x03 || a > 0x77 { line += "   " } else if found.contains(where: { $0.address == UInt8(a) }) {
                    line += " " + String(hexAddress(UInt8(a)).dropFirst(2))
                } else { line += " --" }
            }
            print(line)
        }
        for f in found { print("\(hexAddress(f.address))  \(f.chip ?? "unknown")") }
    }
}

extension Scan {
    /// `--propose`: the buses of this gateway (every /dev/i2c-* and the 1-Wire folder), or with
    /// --config the simulated buses of that file's simulated sensors.
    func runPropose(_ environment: HardwareEnvironment) throws {
        var buses: [(number: Int, bus: I2CBus)] = []
        let sysfs: SysfsReader
        let source: String
        if let config {
            let agentConfig = try AgentConfig.load(path: config)
            _ = environment.makeSensors(agentConfig)
            let numbers = Set(agentConfig.sensors.filter { $0.simulate != nil && $0.driver.isI2C }.map(\.bus)).sorted()
            buses = numbers.filter { bus == nil || $0 == bus }.filter(environment.hasSimulatedBus).map { ($0, environment.simulatedBus($0) as I2CBus) }
            sysfs = environment.simulatedSysfs
            source = "the simulated buses of \(config)"
        } else {
            let numbers = ((try? LinuxSysfs(root: "").list("/dev")) ?? []).compactMap { $0.hasPrefix("i2c-") ? Int($0.dropFirst(4)) : nil }.sorted()
            for n in numbers where bus == nil || n == bus {
                do {
                    buses.append((n, try environment.linuxBus(n, force: force)))
                } catch {
                    printError("warning: /dev/i2c-\(n): \(error)")
                }
            }
            sysfs = environment.sysfs
            source = buses.isEmpty ? "this machine (no I2C bus found: enable one, README.md \"In the field\")" : "this machine's buses"
        }
        print(proposedConfig(proposeSensors(buses: buses, sysfs: sysfs), simulated: config != nil, source: source), terminator: "")
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file: every problem with its file, line and key.",
        discussion: "Exit status: 0 valid (warnings may be printed), 2 invalid."
    )

    @Argument(help: "The configuration file.")
    var file: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        do {
            let config = try AgentConfig.load(path: file)
            if json {
                let sensors = config.sensors.map { s -> JSONValue in
                    .object([("name", .string(s.name)), ("driver", .string(s.driver.rawValue)), ("interval", .string(formatDuration(s.intervalMilliseconds))),
                             ("simulated", .bool(s.simulate != nil)), ("enabled", .bool(s.enabled)),
                             ("variables", .array(s.quantities.map { .string(s.variableName(for: $0)) }))])
                }
                print(JSONValue.object([("valid", .bool(true)), ("errors", .array([])),
                                        ("warnings", .array(config.warnings.map { .string($0.description) })), ("sensors", .array(sensors))]).serialized)
            } else {
                for w in config.warnings { printError("warning: \(w)") }
                let simulated = config.sensors.filter { $0.simulate != nil }.count
                print("\(file): valid: \(config.sensors.count) sensor(s)\(simulated > 0 ? ", \(simulated) simulated" : ""), uplink \(config.uplink.transport.rawValue) to \(config.uplink.transport == .http ? config.device.api : config.uplink.transport == .tagotip ? config.tagotip.url : "\(config.mqtt.connection.host):\(config.mqtt.connection.port)")")
            }
        } catch {
            if json {
                print(Self.errorReport(error).serialized)
            } else {
                printError(error.description)
            }
            throw ExitCode(Exit.usage)
        }
    }
}

extension CheckConfig {
    static func errorReport(_ errors: ConfigErrors) -> JSONValue {
        var items: [JSONValue] = []
        for e in errors.errors {
            let line: JSONValue = e.line.map { .number(Double($0)) } ?? .null
            let key: JSONValue = e.key.map { .string($0) } ?? .null
            items.append(.object([("file", .string(e.file)), ("line", line), ("key", key), ("message", .string(e.message))]))
        }
        return .object([("valid", .bool(false)), ("errors", .array(items))])
    }
}

/// Left-aligned columns separated by two spaces.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}
