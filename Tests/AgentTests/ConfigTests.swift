import Testing
import EdgeCore
import Hardware
import Sensors
@testable import Agent

let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

func configErrors(_ text: String) -> [ConfigError] {
    do {
        _ = try AgentConfig.parse(text, file: "test.toml")
        return []
    } catch {
        return error.errors
    }
}

@Suite struct ConfigTests {
    @Test func shippedConfigsAreValid() throws {
        let bench = try AgentConfig.load(path: repositoryRoot + "/config/bench.toml")
        #expect(Set(bench.sensors.map(\.driver)) == Set(DriverKind.allCases))
        #expect(bench.sensors.allSatisfy { $0.simulate != nil })
        #expect(bench.device.token == .environment("TAGO_DEVICE_TOKEN"))
        let env = try #require(bench.sensors.first { $0.name == "env" })
        #expect(env.address == 0x76)
        #expect(env.intervalMilliseconds == 2_000)
        #expect(env.options == .bme280(BME280.Settings(temperatureOversampling: 2, pressureOversampling: 4, humidityOversampling: 1, filter: 0)))
        let adc = try #require(bench.sensors.first { $0.name == "adc" })
        #expect(adc.variableName(for: "ain0") == "soil_moisture_v")
        #expect(adc.variableName(for: "ain1") == "adc_ain1")

        let pi = try AgentConfig.load(path: repositoryRoot + "/config/raspberry-pi.toml")
        #expect(pi.sensors.allSatisfy { $0.simulate == nil })
        #expect(!pi.sensors.isEmpty)
    }

    @Test func contractDefaults() throws {
        let c = try AgentConfig.parse("[[sensor]]\nname = \"env\"\ndriver = \"bme280\"\n", file: "x.toml")
        #expect(c.device.api == "https://api.tago.io")
        #expect(c.uplink.transport == .http)
        #expect(c.mqtt.publishing.topic == "tago/data/post")
        #expect(c.spool.options.capacityBytes == 64 * 1024 * 1024)
        #expect(c.spool.options.sync == .batch)
        #expect(c.sensors[0].bus == 1)
        #expect(c.sensors[0].address == 0x76)
        #expect(c.sensors[0].intervalMilliseconds == 10_000)
        #expect(c.sensors[0].variableName(for: "humidity") == "env_humidity")
    }

    @Test func unknownKeyIsAnErrorWithLineAndSuggestion() {
        let errors = configErrors("""
        [spool]
        path = "/tmp/s"
        capcity = "1MiB"
        """)
        #expect(errors.count == 1)
        #expect(errors.first?.description == "test.toml:3: spool.capcity: unknown key (did you mean 'capacity'?); valid keys here: path, capacity, sync, sync_interval, full")
    }

    @Test func everyProblemIsReportedAtOnce() {
        let errors = configErrors("""
        [device]
        api = "api.tago.io"

        [[sensor]]
        name = "env"
        driver = "bme280"
        address = 0x99
        interval = "fast"

        [[sensor]]
        name = "bad-name"
        driver = "sht3x"

        [[sensor]]
        name = "x"
        driver = "thermistor"
        """)
        let text = errors.map(\.description)
        #expect(text.contains("test.toml:2: device.api: 'api.tago.io' is not a base URL; write e.g. \"https://api.tago.io\" or \"http://127.0.0.1:8080\""))
        #expect(text.contains { $0.hasPrefix("test.toml:7: sensor[0].address: 153 is out of range; use 3 to 119") })
        #expect(text.contains { $0.hasPrefix("test.toml:8: sensor[0].interval: 'fast' is not a duration") })
        #expect(text.contains { $0.hasPrefix("test.toml:11: sensor[1].name: 'bad-name' may contain only letters") })
        #expect(text.contains { $0.hasPrefix("test.toml:16: sensor[2].driver: 'thermistor' is not valid; use one of: \"bme280\"") })
        #expect(errors.count == 5)
    }

    @Test func sensorRulesAcrossTheFile() {
        let duplicate = configErrors("[[sensor]]\nname = \"a\"\ndriver = \"board\"\n[[sensor]]\nname = \"a\"\ndriver = \"board\"\n")
        #expect(duplicate.contains { $0.message.contains("used by another sensor (line 1)") })

        let clash = configErrors("[[sensor]]\nname = \"a\"\ndriver = \"board\"\n[[sensor]]\nname = \"b\"\ndriver = \"board\"\n[sensor.variables]\ntemperature = \"a_temperature\"\n")
        #expect(clash.contains { $0.message.contains("variable 'a_temperature' is also produced by sensor 'a'") })

        let badRename = configErrors("[[sensor]]\nname = \"a\"\ndriver = \"board\"\n[sensor.variables]\ntemperature = \"cpu.temp\"\nhumidity = \"h\"\n")
        #expect(badRename.contains { $0.key == "sensor[0].variables.temperature" && $0.message.contains("contains '.'") })
        #expect(badRename.contains { $0.key == "sensor[0].variables.humidity" && $0.message.contains("unknown key") })

        let missing = configErrors("[[sensor]]\ndriver = \"gpio\"\n")
        #expect(missing.contains { $0.key == "sensor[0].name" && $0.line == 1 })

        let gpio = configErrors("[[sensor]]\nname = \"g\"\ndriver = \"gpio\"\nmode = \"pwm\"\n")
        #expect(gpio.contains { $0.key == "sensor[0].line" && $0.message.contains("is missing") })
        #expect(gpio.contains { $0.key == "sensor[0].mode" && $0.message.contains("\"input\", \"counter\"") })

        let i2cKeyOnGPIO = configErrors("[[sensor]]\nname = \"g\"\ndriver = \"gpio\"\nline = 4\naddress = 0x20\n")
        #expect(i2cKeyOnGPIO.contains { $0.key == "sensor[0].address" && $0.message.contains("unknown key") })
    }

    @Test func driverOptionsAreValidated() {
        let errors = configErrors("""
        [[sensor]]
        name = "env"
        driver = "bme280"
        oversampling_pressure = 3
        filter = 5
        [[sensor]]
        name = "adc"
        driver = "ads1115"
        channels = ["ain0", "ain7"]
        gain = 5.0
        [[sensor]]
        name = "t"
        driver = "ds18b20"
        device = "10-123"
        [sensor.simulate]
        fault = "melted"
        signal = "square"
        """)
        let keys = Set(errors.compactMap(\.key))
        #expect(keys == ["sensor[0].oversampling_pressure", "sensor[0].filter", "sensor[1].channels", "sensor[1].gain",
                         "sensor[2].device", "sensor[2].simulate.fault", "sensor[2].simulate.signal"])
    }

    @Test func tokenForms() throws {
        func token(_ t: String) throws -> (TokenSource?, [ConfigError]) {
            let c = try AgentConfig.parse("[device]\ntoken = \"\(t)\"\n", file: "t.toml")
            return (c.device.token, c.warnings)
        }
        #expect(try token("env:TAGO_TOKEN").0 == .environment("TAGO_TOKEN"))
        #expect(try token("file:/etc/tagoedge/token").0 == .file("/etc/tagoedge/token"))
        let (literal, warnings) = try token("a1b2c3d4-secret")
        #expect(literal == .literal("a1b2c3d4-secret"))
        #expect(warnings.count == 1)
        #expect(!warnings[0].description.contains("a1b2c3d4"))
        #expect(!"\(literal!)".contains("a1b2c3d4"))
        #expect(configErrors("[device]\ntoken = \"file:relative\"\n").count == 1)
        #expect(configErrors("[device]\ntoken = \"env:\"\n").count == 1)
    }

    @Test func tomlSyntaxErrorNamesFileAndLine() {
        let errors = configErrors("[spool]\npath = /var/lib\n")
        #expect(errors.count == 1)
        #expect(errors[0].description.hasPrefix("test.toml:2: '/var/lib' is not a valid value"))
    }

    @Test func missingFile() {
        #expect { try AgentConfig.load(path: "/nonexistent/tagoedge.toml") } throws: {
            "\($0)".contains("/nonexistent/tagoedge.toml: cannot read the file")
        }
    }
}

@Suite struct MQTTConfigTests {
    @Test func defaultsAndTagoTiP() throws {
        let plain = try AgentConfig.parse("[uplink]\ntransport = \"mqtt\"\n[mqtt]\nhost = \"broker.local\"\nport = 8883\nca_file = \"/etc/ssl/broker-ca.pem\"\n", file: "m.toml")
        #expect(plain.mqtt.tls)
        #expect(plain.mqtt.connection.username == "Token")
        #expect(plain.mqtt.publishing.topic == "tago/data/post")
        // The first versions' TagoTiP config is read as the TagoTiP uplink over that broker.
        let legacy = try AgentConfig.parse("[device]\ntoken = \"env:T\"\n[uplink]\ntransport = \"mqtt\"\n[mqtt]\nformat = \"tagotip\"\nserial = \"gw-7\"\nhost = \"mqtt.tip.us-e1.tago.io\"\nport = 8883\ntls = true\n", file: "m.toml")
        #expect(legacy.uplink.transport == .tagotip)
        #expect(legacy.tagotip.serial == "gw-7" && legacy.tagotip.url == "mqtts://mqtt.tip.us-e1.tago.io:8883" && legacy.tagotip.token == .environment("T"))
        #expect(legacy.warnings.contains { $0.description.contains("deprecated") })
    }

    @Test func tagoTiPTable() throws {
        let c = try AgentConfig.parse("[uplink]\ntransport = \"tagotip\"\n[tagotip]\nserial = \"gw-7\"\ntoken = \"env:TIP\"\nurl = \"https://http.tip.eu-w1.tago.io\"\n", file: "t.toml")
        #expect(c.tagotip.endpoint?.binding == .http && c.tagotip.endpoint?.port == 443 && c.tagotip.endpoint?.tls == true)
        #expect(try AgentConfig.parse("[uplink]\ntransport = \"tagotip\"\n[tagotip]\nserial = \"g\"\ntoken = \"env:T\"\n", file: "t.toml").tagotip.endpoint?.host == "mqtt.tip.us-e1.tago.io")
        let plain = try AgentConfig.parse("[uplink]\ntransport = \"tagotip\"\n[tagotip]\nserial = \"g\"\ntoken = \"env:T\"\nurl = \"mqtt://203.0.113.7\"\n", file: "t.toml")
        #expect(plain.warnings.contains { $0.description.contains("UNENCRYPTED") })
        let errors = configErrors("[uplink]\ntransport = \"tagotip\"\n[tagotip]\nserial = \"gw 7\"\nurl = \"ftp://x\"\nbatch_size = 101\n[[sensor]]\nname = \"Board\"\ndriver = \"board\"\n")
        let text = errors.map(\.description).joined(separator: "\n")
        #expect(text.contains("tagotip.serial") && text.contains("tagotip.url") && text.contains("tagotip.batch_size"), "\(text)")
        let names = configErrors("[uplink]\ntransport = \"tagotip\"\n[tagotip]\nserial = \"g\"\ntoken = \"env:T\"\n[[sensor]]\nname = \"Board\"\ndriver = \"board\"\n")
        #expect(names.contains { $0.description.contains("'Board_temperature' is not a TagoTiP name") }, "\(names)")
    }

    @Test func mistakesAreNamed() {
        let errors = configErrors("[mqtt]\nformat = \"tagotip\"\nca_file = \"certs/ca.pem\"\ncert_file = \"/etc/c.pem\"\ntopic = \"a/#\"\ninflight = 0\n")
        let keys = Set(errors.compactMap(\.key))
        #expect(keys == ["mqtt.serial", "mqtt.ca_file", "mqtt.cert_file", "mqtt.topic", "mqtt.inflight"])
    }
}

@Suite struct OutputConfigTests {
    /// A line by the kernel's name for it (`GPIO17`), for sensors and outputs.
    @Test func linesByName() throws {
        let c = try AgentConfig.parse("[[sensor]]\nname = \"door\"\ndriver = \"gpio\"\nchip = \"header\"\nline = \"GPIO17\"\n[[output]]\nname = \"relay\"\nchip = \"header\"\nline = \"GPIO22\"\n", file: "n.toml")
        if case .gpio(let g) = c.sensors.first?.options { #expect(g.lineName == "GPIO17") } else { Issue.record("not gpio") }
        #expect(c.outputs.first?.lineName == "GPIO22")
        let errors = configErrors("[[output]]\nname = \"relay\"\nline = \"\"\n")
        #expect(errors.contains { $0.key == "output[0].line" })
    }

    @Test func outputsAreParsedAndChecked() throws {
        let c = try AgentConfig.parse("[[output]]\nname = \"relay\"\nline = 22\nactive_low = true\n", file: "o.toml")
        #expect(c.outputs.first?.lineOffset == 22)
        #expect(c.outputs.first?.activeLow == true)
        let errors = configErrors("[[sensor]]\nname = \"pump\"\ndriver = \"board\"\n[[output]]\nname = \"pump\"\nline = 3\n[[output]]\nname = \"fan\"\n")
        #expect(errors.contains { $0.key == "output[0].name" && $0.message.contains("already the name") })
        #expect(errors.contains { $0.key == "output[1].line" && $0.message.contains("is missing") })
        let settings = RemoteSettings(path: nil, sensors: ["pump"], outputs: ["fan"])
        #expect(settings.problem(key: "fan", value: "on") == nil)
        #expect(settings.problem(key: "fan", value: "maybe") != nil)
    }
}
