#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit
import TagoTiP
import Hardware
import Sensors
import MQTT

// The configuration's tables of things: `[[sensor]]` (with its options, report, variables and
// simulation), `[[output]]` and `[[analysis]]`. The loader's other tables are in ConfigLoader.swift.
extension ConfigLoader {
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

    /// One `[[output]]`.
    mutating func output(_ t: TOMLTable, index: Int, _ config: inout AgentConfig) {
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
        finish(&r)
        if config.outputs.contains(where: { $0.name == o.name }) || config.sensors.contains(where: { $0.name == o.name }) {
            errors.append(ConfigError(file: file, line: t.line, key: "output[\(index)].name", "'\(o.name)' is already the name of a sensor or output"))
        }
        config.outputs.append(o)
    }

    /// One `[[analysis]]`.
    mutating func analysis(_ t: TOMLTable, index: Int, _ config: inout AgentConfig) {
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
        finish(&r)
        config.analyses.append(a)
    }
}
