import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit

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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["run", "--config", path, "--status-every", "0"]
        p.environment = ProcessInfo.processInfo.environment.merging(["E2E_TOKEN": "e2e-device-token"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test func readingsFlowAndSurviveSIGKILL() throws {
        var options = Emulator.Options()
        options.deviceTokens = ["e2e-device-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let dir = NSTemporaryDirectory() + "tagoedge-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
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
        let times = records.compactMap { $0["time"]?.stringValue }.compactMap(Timestamp.init(iso8601:))
        #expect(times.allSatisfy { $0.millisecondsSince1970 > 1_700_000_000_000 })  // never dated 1970
    }
}
