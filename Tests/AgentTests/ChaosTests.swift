#if canImport(Glibc)
import Glibc
#endif
import Testing
import EdgeCore
import Emulator
import TagoKit
import TestSupport
@testable import Agent

/// The agent against a TagoIO that answers, in turn, 200, 404, 5xx, 429 with Retry-After, an
/// HTML page, a reset and silence, while configuration_params bring invalid and absurd values:
/// at the end every reading was delivered exactly once, nothing was dead-lettered, and the agent
/// never stopped being alive. Real clock and real HTTP, about 20 s.
@Suite(.serialized) struct ChaosTests {
    @Test func everyReadingArrivesExactlyOnceThroughAnswersOfEveryKind() throws {
        var options = Emulator.Options()
        options.deviceTokens = ["chaos-device-token"]
        options.profileTokens = ["p-chaos"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let dir = makeTemporaryDirectory()
        let config = try AgentConfig.parse("""
            [device]
            token = "env:NOT_USED"
            api = "http://127.0.0.1:\(port)"
            plan = "none"
            [uplink]
            backoff_base = "100ms"
            backoff_cap = "800ms"
            timeout = "1s"
            connect_timeout = "1s"
            dead_letter = "\(dir)/dead-letter.jsonl"
            [spool]
            path = "\(dir)/spool"
            [agent]
            upload_interval = "100ms"
            params_interval = "1s"
            telemetry = "off"
            [[sensor]]
            name = "count"
            driver = "board"
            interval = "100ms"
            [sensor.simulate]
            signal = "counter"
            """, file: "chaos.toml")
        let runtime = try AgentRuntime(config: config, token: "chaos-device-token", environment: HardwareEnvironment(clock: SystemClock())) { _, _ in }
        runtime.start()
        defer { runtime.stop() }

        let endpoint = TagoEndpoint(api: "http://127.0.0.1:\(port)")
        let account = TagoAccount(token: "p-chaos", endpoint: endpoint, http: CurlHTTPClient())
        let deviceID = try #require(try account.devices().first?["id"]?.stringValue)
        // Invalid and absurd values among the params, then a valid one.
        try account.setParams(deviceID: deviceID, [
            ConfigParam(key: "interval", value: "99999999999999999h"), ConfigParam(key: "count.interval", value: "-5s"),
            ConfigParam(key: "upload_interval", value: "nan"), ConfigParam(key: "log_level", value: "shout"),
            ConfigParam(key: "count.delta", value: "1e400"), ConfigParam(key: "count.enabled", value: "maybe"),
            ConfigParam(key: "relay", value: "on"), ConfigParam(key: "count.window", value: "9999d"),
        ])
        // Each fault for a second and a half, twice round.
        let faults = ["", "not-found=1500ms", "error-rate=1", "throttle=1500ms", "garbage=1500ms", "reset-rate=1", "blackhole=1500ms", ""]
        var alive = true
        for _ in 0..<2 {
            for spec in faults {
                emulator.setFaults(spec.isEmpty ? EmulatorFaults() : try EmulatorFaults(spec: spec, now: SystemClock().now().millisecondsSince1970))
                let until = SystemClock().nanoseconds() + 1_500_000_000
                while SystemClock().nanoseconds() < until {
                    alive = alive && runtime.isAlive(withinMilliseconds: 5_000)
                    usleep(100_000)
                }
                emulator.setFaults(EmulatorFaults())
            }
        }
        try account.setParams(deviceID: deviceID, [ConfigParam(key: "count.interval", value: "200ms")])
        // Calm: everything waiting goes.
        #expect(waitUntil(seconds: 30) { runtime.spool.stats.recordCount == 0 }, "readings still spooled: \(runtime.spool.stats.recordCount)")
        runtime.stop()
        #expect(alive, "the agent stopped being alive during the chaos")

        let device = TagoDevice(token: "chaos-device-token", endpoint: endpoint, http: CurlHTTPClient())
        var q = DataQuery(variables: ["count_temperature"], qty: 100_000)
        q.ordination = "ascending"
        // A reading is its time (one every 100 ms; the counter steps more slowly than that).
        let times = (try device.find(q).arrayValue ?? []).compactMap { $0["time"]?.stringValue }
        let sampled = runtime.snapshot.sampled
        #expect(times.count == sampled, "\(times.count) delivered of \(sampled) sampled")
        #expect(Set(times).count == times.count, "\(times.count - Set(times).count) reading(s) delivered twice")
        #expect((try? readTextFile(dir + "/dead-letter.jsonl")) == nil, "something was dead-lettered")
        // Every fault was met, and each bad param refused with its reason.
        let stats = emulator.counters
        for key in ["faults_not_found", "faults_errors", "faults_throttled", "faults_garbage", "faults_reset", "faults_blackholed"] {
            #expect((stats[key] ?? 0) > 0, "\(key) never happened")
        }
        let refused = (try device.find(DataQuery(variables: ["config_error"], qty: 100)).arrayValue ?? []).count
        #expect(refused >= 7, "\(refused) config_error readings")
    }
}
