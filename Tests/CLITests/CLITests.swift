import Foundation
import Testing
import EdgeCore

/// Runs the `tagoedge` binary built beside the test bundle, as a script or a user would.
struct CLI {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    static let binary: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("tagoedge").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], executable: String = binary, directory: String = root) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func temporaryConfig(_ text: String, extension ext: String = "toml") throws -> String {
        let path = NSTemporaryDirectory() + "tagoedge-cli-\(UUID().uuidString).\(ext)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite(.serialized) struct CLITests {
    @Test func readBenchAsJSON() throws {
        let r = try CLI.run(["read", "--config", "config/bench.toml", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        guard case .array(let items) = try JSONValue.parse(r.stdout) else { Issue.record("not a JSON array"); return }
        let variables = items.compactMap { $0["variable"]?.stringValue }
        for v in ["env_temperature", "env_pressure", "env_humidity", "captured_temperature", "climate_humidity", "light_illuminance",
                  "soil_moisture_v", "adc_ain1", "probe_temperature", "rain_count", "door_state", "board_temperature"] {
            #expect(variables.contains(v), "missing \(v)")
        }
        for item in items {
            #expect(item["value"]?.numberValue != nil)
            let time = try #require(item["time"]?.stringValue)
            #expect(Timestamp(iso8601: time) != nil)
        }
        let captured = items.first { $0["variable"]?.stringValue == "captured_temperature" }?["value"]?.numberValue
        #expect(abs((captured ?? 0) - 24.44) < 0.005)
    }

    @Test func readTableForPeople() throws {
        let r = try CLI.run(["read", "--config", "config/bench.toml", "--sensor", "env"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("SENSOR") == true)
        #expect(lines.count == 4)
        #expect(r.stdout.contains("env_pressure"))
        #expect(r.stdout.contains("hPa"))
    }

    @Test func partialFailureExitsThreeAndNamesTheSensor() throws {
        let path = try CLI.temporaryConfig("""
        [[sensor]]
        name = "ok"
        driver = "board"
        [sensor.simulate]
        signal = "constant"

        [[sensor]]
        name = "flaky"
        driver = "sht3x"
        [sensor.simulate]
        fault = "bad-crc"
        """)
        let r = try CLI.run(["read", "--config", path, "--json"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("sensor 'flaky' (sht3x)"))
        #expect(r.stderr.contains("CRC"))
        guard case .array(let items) = try JSONValue.parse(r.stdout) else { Issue.record("not JSON"); return }
        #expect(items.map { $0["variable"]?.stringValue } == ["ok_temperature"])
    }

    @Test func allFailedExitsOne() throws {
        let path = try CLI.temporaryConfig("[[sensor]]\nname = \"gone\"\ndriver = \"bme280\"\nbus = 9\n")
        let r = try CLI.run(["read", "--config", path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/dev/i2c-9: open failed"))
    }

    @Test func invalidConfigExitsTwoWithFileAndLine() throws {
        let path = try CLI.temporaryConfig("[[sensor]]\nname = \"env\"\ndriver = \"bme280\"\nadress = 0x76\n")
        let read = try CLI.run(["read", "--config", path])
        #expect(read.status == 2)
        #expect(read.stderr.contains("\(path):4: sensor[0].adress: unknown key (did you mean 'address'?)"))

        let check = try CLI.run(["check-config", path, "--json"])
        #expect(check.status == 2)
        let report = try JSONValue.parse(check.stdout)
        #expect(report["valid"]?.boolValue == false)
        #expect(report["errors"]?.arrayValue?.first?["line"]?.numberValue == 4)
        #expect(report["errors"]?.arrayValue?.first?["key"]?.stringValue == "sensor[0].adress")
    }

    @Test func checkConfigAcceptsTheShippedConfigs() throws {
        for file in ["config/bench.toml", "config/raspberry-pi.toml"] {
            let r = try CLI.run(["check-config", file])
            #expect(r.status == 0, "\(file): \(r.stderr)")
            #expect(r.stdout.contains("valid"))
        }
    }

    @Test func literalTokenIsWarnedAboutButNeverPrinted() throws {
        let path = try CLI.temporaryConfig("[device]\ntoken = \"9f1c-very-secret-token\"\n")
        let r = try CLI.run(["check-config", path])
        #expect(r.status == 0)
        #expect(r.stderr.contains("warning"))
        #expect(!(r.stdout + r.stderr).contains("very-secret"))
    }

    @Test func scanSimulatedBus() throws {
        let r = try CLI.run(["scan", "--bus", "1", "--config", "config/bench.toml", "--json"])
        #expect(r.status == 0)
        let found = try JSONValue.parse(r.stdout).arrayValue?.compactMap { $0["address"]?.stringValue }
        #expect(found == ["0x23", "0x44", "0x48", "0x76", "0x77"])
        let missing = try CLI.run(["scan", "--bus", "42"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/dev/i2c-42: open failed"))
    }

    @Test func badUsageExitsTwo() throws {
        #expect(try CLI.run(["read"]).status == 2)
        #expect(try CLI.run(["frobnicate"]).status == 2)
        #expect(try CLI.run(["--version"]).status == 0)
        let unknown = try CLI.run(["read", "-c", "config/bench.toml", "--jsn"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown option '--jsn' for 'tagoedge read'"))
        let missing = try CLI.run(["read", "--config"])
        #expect(missing.status == 2 && missing.stderr.contains("--config needs a value"))
        let extra = try CLI.run(["check-config", "config/bench.toml", "config/raspberry-pi.toml"])
        #expect(extra.status == 2 && extra.stderr.contains("unexpected argument 'config/raspberry-pi.toml'"))
        let twice = try CLI.run(["read", "-c", "a.toml", "--config", "b.toml"])
        #expect(twice.status == 2 && twice.stderr.contains("--config given twice"))
        let notNumber = try CLI.run(["scan", "--bus", "one"])
        #expect(notNumber.status == 2 && notNumber.stderr.contains("--bus: 'one' is not valid"))
    }

    @Test func optionSpellingsAndHelp() throws {
        // --name=value, -c value, and a subcommand's default (provision → fleet).
        let equals = try CLI.run(["read", "--config=config/bench.toml", "--sensor=captured", "--json"])
        #expect(equals.status == 0, "\(equals.stderr)")
        #expect(equals.stdout.contains("captured_temperature"))
        let help = try CLI.run(["read", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("USAGE: tagoedge read --config <value> [<options>]"))
        #expect(help.stdout.contains("-c, --config <value>"))
        let root = try CLI.run(["--help"])
        #expect(root.status == 0 && root.stdout.contains("doctor") && root.stdout.contains("provision"))
        let fleet = try CLI.run(["provision", "--manifest", "/nonexistent.csv", "--out", "/tmp/x", "--profile-token", "p-x"])
        #expect(fleet.status == 2 && fleet.stderr.contains("cannot read the manifest"), "\(fleet.stderr)")
        // A hidden option works but is not listed.
        #expect(!(try CLI.run(["doctor", "--help"])).stdout.contains("system-root"))
    }
}

@Suite(.serialized) struct SpoolCLITests {
    func run(_ arguments: [String], stdin: String) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = arguments
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLI.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test func appendInspectDump() throws {
        let path = NSTemporaryDirectory() + "tagoedge-cli-spool-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = """
        {"variable":"tank_level","value":41.5,"unit":"%","time":"2026-11-29T10:00:00Z"}
        {"variable":"pump-on","value":true}
        {"variable":"pump_on","value":true,"metadata":{"site":"north"}}

        """
        let appended = try run(["spool", "append", path, "--sync", "batch", "--capacity", "1MiB"], stdin: lines)
        #expect(appended.status == 3)  // one line was rejected
        #expect(appended.stdout == "seq 1\nseq 2\n")
        #expect(appended.stderr.contains("stdin line 2: variable 'pump-on' contains '-'"))

        let inspect = try CLI.run(["spool", "inspect", path, "--json"])
        #expect(inspect.status == 0)
        let stats = try JSONValue.parse(inspect.stdout)
        #expect(stats["records"]?.numberValue == 2)
        #expect(stats["capacity_bytes"]?.numberValue == 1_048_576)
        #expect(stats["oldest_seq"]?.numberValue == 1)
        #expect(stats["newest_seq"]?.numberValue == 2)

        let dump = try CLI.run(["spool", "dump", path, "--json"])
        let objects = try dump.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(objects.map { $0["seq"]?.numberValue } == [1, 2])
        #expect(objects[0]["variable"]?.stringValue == "tank_level")
        #expect(objects[0]["time"]?.stringValue == "2026-11-29T10:00:00.000Z")
        #expect(objects[1]["metadata"]?["site"]?.stringValue == "north")

        let missing = try CLI.run(["spool", "inspect", path + ".nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("open failed: No such file or directory"))
    }
}

/// What a newcomer sees first: no arguments, no config, a config that does not exist, a typo.
@Suite struct FirstContactTests {
    @Test func noArgumentsSaysWhereToStart() throws {
        let r = try CLI.run([])
        #expect(r.status == 2)
        #expect(r.stdout.contains("Start here"))
        #expect(r.stdout.contains("tagoedge run --config config/bench.toml --bench"))
    }

    @Test func runWithoutAConfigSaysWhatToDo() throws {
        guard access("/etc/tagoedge/tagoedge.toml", F_OK) != 0 else { return }  // a gateway: run would use it
        let r = try CLI.run(["run"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("which configuration?"), "\(r.stderr)")
        #expect(r.stderr.contains("config/bench.toml --bench"))
        let missing = try CLI.run(["run", "--config", "/nonexistent/tagoedge.toml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("No such file or directory; start from config/raspberry-pi.toml"), "\(missing.stderr)")
    }

    /// A wrong driver name is one error with the nearest name, not a cascade of "unknown key"
    /// errors for the driver's own keys (`interval` was reported unknown, "did you mean 'interval'").
    @Test func aWrongDriverDoesNotCascade() throws {
        let path = try CLI.temporaryConfig("""
        [device]
        token = "env:X"
        [[sensor]]
        name = "env"
        driver = "bme28"
        bus = 1
        address = 0x76
        interval = "10s"
        oversampling_temperature = 2
        colour = "red"
        """)
        let r = try CLI.run(["check-config", path, "--json"])
        #expect(r.status == 2)
        let errors = try JSONValue.parse(r.stdout)["errors"]?.arrayValue ?? []
        let messages = errors.map { "\($0["line"]?.numberValue ?? 0): \($0["message"]?.stringValue ?? "")" }
        #expect(messages.count == 2, "\(messages)")
        #expect(messages.first?.contains(#"'bme28' is not valid (did you mean "bme280"?)"#) == true, "\(messages)")
        #expect(messages.last?.hasPrefix("10.0: unknown key") == true, "\(messages)")
    }
}

/// `scan --propose` on the bench's simulated buses: a config check-config accepts that reads every chip.
@Suite struct ScanProposeTests {
    @Test func theProposalForTheBenchReadsEveryChip() throws {
        let r = try CLI.run(["scan", "--propose", "--config", "config/bench.toml"])
        #expect(r.status == 0, "\(r.stderr)")
        let path = try CLI.temporaryConfig(r.stdout)
        defer { unlink(path) }
        let check = try CLI.run(["check-config", path])
        #expect(check.status == 0, "\(check.stderr)\n\(r.stdout)")
        #expect(check.stdout.contains("valid: 6 sensor(s)"), "\(check.stdout)")
        let read = try CLI.run(["read", "--config", path, "--json"])
        #expect(read.status == 0, "\(read.stderr)")
        let variables = Set((try JSONValue.parse(read.stdout).arrayValue ?? []).compactMap { $0["variable"]?.stringValue })
        for v in ["env_temperature", "env2_pressure", "climate_humidity", "light_illuminance", "adc_ain0", "probe_temperature"] {
            #expect(variables.contains(v), "\(v) in \(variables.sorted())")
        }
        #expect(r.stdout.contains("# BME280 at 0x76 on sim:i2c-1"))
    }
}
