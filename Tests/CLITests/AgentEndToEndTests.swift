import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit
import Spool

/// `tagoedge run` as a service: simulated sensors → spool → HTTP → the emulator.
@Suite(.serialized) struct AgentEndToEndTests {
    func config(api: String, dir: String) -> String {
        """
        [device]
        token = "env:E2E_TOKEN"
        api = "\(api)"

        [spool]
        path = "\(dir)/spool"
        capacity = "1MiB"
        sync = "batch"

        [uplink]
        batch_size = 50

        [agent]
        telemetry = "1s"

        [[sensor]]
        name = "count"
        driver = "board"
        interval = "100ms"
        [sensor.simulate]
        signal = "counter"

        [[sensor]]
        name = "env"
        driver = "bme280"
        interval = "250ms"
        [sensor.simulate]
        signal = "sine"
        """
    }

    func start(_ path: String) throws -> Process {
        try CLI.startAgent(path, environment: ProcessInfo.processInfo.environment.merging(["E2E_TOKEN": "e2e-device-token"]) { $1 })
    }

    @Test func readingsFlowAndSurviveSIGKILL() throws {
        let setup = try AgentTestSetup(deviceToken: "e2e-device-token")
        let (port, dir) = (setup.port, setup.dir)
        let path = dir + "/agent.toml"
        try config(api: "http://127.0.0.1:\(port)", dir: dir).write(toFile: path, atomically: true, encoding: .utf8)

        // Three runs killed without warning, then one stopped properly.
        for _ in 0..<3 {
            let p = try start(path)
            usleep(UInt32.random(in: 700_000...1_500_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let last = try start(path)
        usleep(1_500_000)
        kill(last.processIdentifier, SIGTERM)
        for _ in 0..<100 where last.isRunning { usleep(50_000) }
        #expect(!last.isRunning, "SIGTERM did not stop the agent within 5 s")
        if last.isRunning { kill(last.processIdentifier, SIGKILL) }
        last.waitUntilExit()
        #expect(last.terminationStatus == 0)

        let device = TagoDevice(token: "e2e-device-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        var q = DataQuery(variables: ["count_temperature"], qty: 100_000)
        q.ordination = "ascending"
        let records = try #require(try device.find(q).arrayValue)
        // Each run counts from its start (20 °C, the simulated board's counter origin) upward.
        // Within a run no value may be missing, whatever SIGKILL interrupted.
        // At-least-once: a batch sent just before a SIGKILL is sent again; drop exact repeats.
        var seen = Set<String>()
        let unique = records.filter { seen.insert("\($0["time"]?.stringValue ?? "")|\($0["value"]?.numberValue ?? -1)").inserted }
        var runs: [[Double]] = []
        for v in unique.compactMap({ $0["value"]?.numberValue }) {
            if v == 20 || runs.isEmpty { runs.append([v]) } else { runs[runs.count - 1].append(v) }
        }
        #expect(runs.count == 4)
        for run in runs {
            let distinct = Array(Set(run)).sorted()
            #expect(distinct == (0..<distinct.count).map { 20 + Double($0) }, "a gap in \(distinct)")
        }
        #expect(records.count >= 30)
        #expect(try device.find(DataQuery(variables: ["env_pressure"], query: "count")).numberValue ?? 0 > 10)
        #expect(try device.find(DataQuery(variables: ["agent_uptime"], query: "count")).numberValue ?? 0 >= 2, "self-telemetry")
        #expect(try device.find(DataQuery(variables: ["agent_records_sent"], query: "count")).numberValue ?? 0 >= 1, "records sent in self-telemetry")
        let times = records.compactMap { $0["time"]?.stringValue }.compactMap(Timestamp.init(iso8601:))
        #expect(times.allSatisfy { $0.millisecondsSince1970 > 1_700_000_000_000 })  // never dated 1970
    }
}

@Suite(.serialized) struct ConfigurationParamsTests {
    @Test func paramsAreAppliedMarkedReadAndBadOnesReported() throws {
        let setup = try AgentTestSetup(deviceToken: "params-token", profileToken: "params-profile")
        let (port, dir) = (setup.port, setup.dir)
        let endpoint = TagoEndpoint(api: "http://127.0.0.1:\(port)")
        let device = TagoDevice(token: "params-token", endpoint: endpoint, http: CurlHTTPClient())
        let account = TagoAccount(token: "params-profile", endpoint: endpoint, http: CurlHTTPClient())
        let id = try #require(setup.emulator.deviceID(forToken: "params-token"))
        try setup.config(tokenVariable: "E2E_TOKEN", params: "1s", """
        [[sensor]]
        name = "fast"
        driver = "board"
        interval = "100ms"
        [sensor.simulate]
        signal = "counter"
        [[sensor]]
        name = "env"
        driver = "sht3x"
        interval = "100ms"
        [sensor.simulate]
        signal = "sine"
        [[output]]
        name = "relay"
        line = 22
        [output.simulate]
        """).write(toFile: dir + "/agent.toml", atomically: true, encoding: .utf8)
        let p = try CLI.startAgent(dir + "/agent.toml", environment: ["E2E_TOKEN": "params-token"])
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        usleep(1_000_000)
        try account.setParams(deviceID: id, [ConfigParam(key: "env.enabled", value: "false"), ConfigParam(key: "fast.interval", value: "1s"),
                                             ConfigParam(key: "fast.interval_typo", value: "2s"), ConfigParam(key: "relay", value: "on")])
        usleep(2_500_000)  // more than one poll
        #expect(try account.params(deviceID: id).allSatisfy(\.sent), "every param marked read")
        func count(_ variable: String) throws -> Double { try device.find(DataQuery(variables: [variable], query: "count")).numberValue ?? 0 }
        let env1 = try count("env_temperature"), fast1 = try count("fast_temperature")
        usleep(2_000_000)
        let env2 = try count("env_temperature"), fast2 = try count("fast_temperature")
        #expect(env1 > 0)
        #expect(env2 == env1, "env was disabled by a param")
        #expect(fast2 - fast1 <= 3, "fast now reads once a second, not ten times")
        #expect(fast2 - fast1 >= 1)
        let errors = try #require(try device.find(DataQuery(variables: ["config_error"], qty: 10)).arrayValue)
        #expect(errors.count == 1)
        #expect(errors.first?["metadata"]?["key"]?.stringValue == "fast.interval_typo")
        #expect(errors.first?["metadata"]?["reason"]?.stringValue?.contains("unknown setting") == true)
        // Kept on disk for a reboot without network.
        let saved = try String(contentsOfFile: dir + "/spool.settings.json", encoding: .utf8)
        #expect(saved.contains(#""env.enabled":"false""#))
        // The relay was switched on (the status file, written on the way out, says so).
        kill(p.processIdentifier, SIGTERM)
        for _ in 0..<100 where p.isRunning { usleep(50_000) }
        let status = try JSONValue.parse(String(contentsOfFile: dir + "/spool.status.json", encoding: .utf8))
        #expect(status["outputs"]?["relay"]?.boolValue == true)
    }
}

@Suite(.serialized) struct SystemdTests {
    @Test func notifiesReadyWatchdogStatusAndStopping() throws {
        let setup = try AgentTestSetup(deviceToken: "sd-token")
        let (port, dir) = (setup.port, setup.dir)
        let socketPath = dir + "/notify"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in socketPath.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try """
        [device]
        token = "env:E2E_TOKEN"
        api = "http://127.0.0.1:\(port)"
        [spool]
        path = "\(dir)/spool"
        capacity = "1MiB"
        [[sensor]]
        name = "board"
        driver = "board"
        interval = "200ms"
        [sensor.simulate]
        signal = "sine"
        """.write(toFile: dir + "/agent.toml", atomically: true, encoding: .utf8)
        let p = try CLI.startAgent(dir + "/agent.toml", environment: ["E2E_TOKEN": "sd-token", "NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "1000000"])
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let start = Date()
        while Date().timeIntervalSince(start) < 6 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { messages.append(String(decoding: buffer.prefix(n), as: UTF8.self)) }
        }
        kill(p.processIdentifier, SIGTERM)
        for _ in 0..<20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { messages.append(String(decoding: buffer.prefix(n), as: UTF8.self)) }
        }
        p.waitUntilExit()
        #expect(messages.first?.hasPrefix("READY=1") == true, "\(messages)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 5, "\(messages)")  // every half second while alive
        #expect(messages.contains { $0.hasPrefix("STATUS=sampled") })
        #expect(messages.last == "STOPPING=1")
        #expect(p.terminationStatus == 0)
        let status = try JSONValue.parse(String(contentsOfFile: dir + "/spool.status.json", encoding: .utf8))
        #expect((status["sampled"]?.numberValue ?? 0) > 5)
        #expect(status["last_readings"]?.arrayValue?.first?["variable"]?.stringValue == "board_temperature")
    }
}

@Suite(.serialized) struct ReloadTests {
    @Test func sighupAppliesAValidFileAndKeepsRunningOnABadOne() throws {
        let setup = try AgentTestSetup(deviceToken: "hup-token")
        let (port, dir) = (setup.port, setup.dir)
        func write(_ sensors: String) throws {
            try setup.config(tokenVariable: "E2E_TOKEN", sensors).write(toFile: dir + "/agent.toml", atomically: true, encoding: .utf8)
        }
        let first = "[[sensor]]\nname = \"one\"\ndriver = \"board\"\ninterval = \"200ms\"\n[sensor.simulate]\nsignal = \"sine\"\n"
        try write(first)
        let p = try CLI.startAgent(dir + "/agent.toml", environment: ["E2E_TOKEN": "hup-token"])
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        let device = TagoDevice(token: "hup-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        func count(_ v: String) throws -> Double { try device.find(DataQuery(variables: [v], query: "count")).numberValue ?? 0 }
        usleep(1_000_000)
        try write(first + "[[sensor]]\nname = \"two\"\ndriver = \"sht3x\"\ninterval = \"200ms\"\n[sensor.simulate]\nsignal = \"sine\"\n")
        kill(p.processIdentifier, SIGHUP)
        usleep(1_500_000)
        #expect(try count("two_temperature") > 0, "the reloaded file's new sensor reads")
        try write("[[sensor]]\nname = \"broken\"\ndriver = \"nope\"\n")
        kill(p.processIdentifier, SIGHUP)
        usleep(500_000)
        let before = try count("two_temperature")
        usleep(1_000_000)
        #expect(try count("two_temperature") > before, "an invalid file leaves the running configuration in place")
        #expect(p.isRunning)
    }
}

extension CLI {
    /// `tagoedge run --config PATH` in the background, output discarded.
    static func startAgent(_ config: String, environment: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["run", "--config", config, "--status-every", "0"]
        p.environment = environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }
}

/// An emulator on a free port with one device (and optionally a profile token), and a temporary
/// folder; both go away with it.
final class AgentTestSetup {
    let emulator: Emulator
    let port: UInt16
    let dir = NSTemporaryDirectory() + "tagoedge-agent-\(UUID().uuidString)"

    init(deviceToken: String, profileToken: String? = nil, tip: (token: String, serial: String)? = nil) throws {
        var options = Emulator.Options()
        options.deviceTokens = [deviceToken]
        options.profileTokens = profileToken.map { [$0] } ?? []
        if let tip {
            options.tipAuthorizationTokens = [tip.token]
            options.tipDevices = [tip.serial: deviceToken]
        }
        emulator = try Emulator(options: options)
        port = try emulator.start()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit {
        emulator.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A config for a short agent run against this emulator: the token from `tokenVariable`, a
    /// small spool here, uploads every 200 ms, params polled every `params` (off by default), no
    /// telemetry; then `rest`.
    func config(tokenVariable: String, params: String = "off", agent: String = "", _ rest: String) -> String {
        """
        [device]
        token = "env:\(tokenVariable)"
        api = "http://127.0.0.1:\(port)"
        [spool]
        path = "\(dir)/spool"
        capacity = "1MiB"
        [agent]
        upload_interval = "200ms"
        params_interval = "\(params)"
        telemetry = "off"
        \(agent)
        \(rest)
        """
    }
}

extension CLI {
    /// Runs `tagoedge run` for `seconds`, stops it with SIGTERM, and returns its exit status and
    /// standard error.
    static func runAgent(_ config: String, environment: [String: String], seconds: Double) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["run", "--config", config, "--status-every", "0"]
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if environment["JOURNAL_STREAM"] == nil { env["JOURNAL_STREAM"] = nil }
        p.environment = env
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        usleep(UInt32(seconds * 1_000_000))
        kill(p.processIdentifier, SIGTERM)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }
}

@Suite(.serialized) struct StatusFileTests {
    /// Under systemd (`RuntimeDirectory=`), the status file goes to the runtime directory, a tmpfs,
    /// not next to the spool on the SD card; `tagoedge status` finds it there.
    @Test func theStatusFileGoesToTheRuntimeDirectory() throws {
        let setup = try AgentTestSetup(deviceToken: "status-token")
        let path = setup.dir + "/agent.toml"
        try setup.config(tokenVariable: "STATUS_TOKEN", """
            [[sensor]]
            name = "board"
            driver = "board"
            interval = "200ms"
            [sensor.simulate]
            """).write(toFile: path, atomically: true, encoding: .utf8)
        let run = setup.dir + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let env = ["STATUS_TOKEN": "status-token", "RUNTIME_DIRECTORY": run]
        #expect(try CLI.runAgent(path, environment: env, seconds: 1.5).status == 0)
        #expect(FileManager.default.fileExists(atPath: run + "/spool.status.json"))
        #expect(!FileManager.default.fileExists(atPath: setup.dir + "/spool.status.json"), "nothing rewritten next to the spool")
        let status = try CLI.run(["status", "--config", path, "--json"], environment: env)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("board_temperature"))
        let elsewhere = try CLI.run(["status", "--config", path], environment: ["RUNTIME_DIRECTORY": setup.dir + "/nowhere"])
        #expect(elsewhere.status == 1 && elsewhere.stderr.contains("no status at"))
    }
}

@Suite(.serialized) struct AgentLogLevelTests {
    func run(level: String, environment: [String: String] = [:]) throws -> String {
        let setup = try AgentTestSetup(deviceToken: "log-token")
        let path = setup.dir + "/agent.toml"
        try setup.config(tokenVariable: "LOG_TOKEN", agent: "log_level = \"\(level)\"", """
            [[sensor]]
            name = "board"
            driver = "board"
            interval = "200ms"
            [sensor.simulate]
            signal = "counter"
            [[sensor]]
            name = "gone"
            driver = "sht3x"
            interval = "200ms"
            [sensor.simulate]
            fault = "absent"
            """).write(toFile: path, atomically: true, encoding: .utf8)
        return try CLI.runAgent(path, environment: ["LOG_TOKEN": "log-token"].merging(environment) { $1 }, seconds: 1.5).stderr
    }

    @Test func debugShowsReadingsAndAcknowledgements() throws {
        let text = try run(level: "debug")
        #expect(text.contains("debug: sensor 'board': board_temperature="), "\(text)")
        #expect(text.contains("debug: uplink: "))
        #expect(text.contains("warning: sensor 'gone' failed"))
    }

    @Test func warningHidesTheRestAndJournaldGetsPriorities() throws {
        let text = try run(level: "warning")
        #expect(!text.contains("debug:"))
        #expect(text.contains("warning: sensor 'gone' failed"), "\(text)")
        let journal = try run(level: "warning", environment: ["JOURNAL_STREAM": "8:12345"])
        #expect(journal.contains("<4>sensor 'gone' failed"), "\(journal)")
        let quiet = try run(level: "error")
        #expect(!quiet.contains("sensor 'gone' failed"))
    }
}

/// Reloads under load: an analysis running on every reading, every upload slowed to 600 ms, and
/// five SIGHUPs in three seconds. Every reading appended to the spool is, at the end, either on
/// the server exactly once or still in the spool: nothing lost, nothing duplicated.
@Suite(.serialized) struct ReloadUnderLoadTests {
    @Test func reloadsUnderLoadLoseAndDuplicateNothing() throws {
        let setup = try AgentTestSetup(deviceToken: "load-token")
        let (port, dir) = (setup.port, setup.dir)
        let program = dir + "/slow-analysis.sh"
        try "#!/bin/sh\ncat > /dev/null\nsleep 0.3\necho '{\"variable\":\"analysed\",\"value\":1}'\n".write(toFile: program, atomically: true, encoding: .utf8)
        chmod(program, 0o755)
        let config = setup.config(tokenVariable: "LOAD_TOKEN", """
            [[sensor]]
            name = "count"
            driver = "board"
            interval = "100ms"
            [sensor.simulate]
            signal = "sine"

            [[analysis]]
            name = "slow"
            program = "\(program)"
            variables = ["count_temperature"]
            """)
        try config.write(toFile: dir + "/agent.toml", atomically: true, encoding: .utf8)
        setup.emulator.setFaults(try EmulatorFaults(spec: "latency=600ms", now: 0))
        let p = try CLI.startAgent(dir + "/agent.toml", environment: ["LOAD_TOKEN": "load-token"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        usleep(1_000_000)
        for _ in 0..<5 {
            kill(p.processIdentifier, SIGHUP)
            usleep(600_000)
            #expect(p.isRunning)
        }
        setup.emulator.setFaults(EmulatorFaults())
        usleep(1_000_000)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)

        // What the spool handed out (its sequence numbers) is what the server holds plus what waits.
        let spool = try FileSpool(path: dir + "/spool", options: FileSpool.Options(capacityBytes: 1 << 20, readOnly: true))
        let stats = spool.stats
        let appended = Int(stats.newestSeq ?? stats.acknowledgedThrough)
        let waiting = stats.recordCount
        try spool.close()
        let device = TagoDevice(token: "load-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        var records: [JSONValue] = []
        for v in ["count_temperature", "analysed"] {
            records += try device.find(DataQuery(variables: [v], qty: 100_000)).arrayValue ?? []
        }
        let keys = records.map { "\($0["variable"]?.stringValue ?? "")|\($0["time"]?.stringValue ?? "")|\($0["value"]?.numberValue ?? .nan)" }
        #expect(appended > 20, "\(appended) readings appended")
        #expect(records.count + waiting == appended, "\(records.count) delivered + \(waiting) waiting of \(appended) appended")
        #expect(Set(keys).count == keys.count, "\(keys.count - Set(keys).count) duplicate(s)")
        #expect(records.contains { $0["variable"]?.stringValue == "analysed" }, "the analysis ran")
    }
}
