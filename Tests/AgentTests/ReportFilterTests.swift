import Testing
import EdgeCore
import TestSupport
import Uplink
@testable import Agent

/// The report filter on readings stamped by hand (a manual clock): deadband, heartbeat,
/// windows aligned to the clock, aggregates, counters that never lose a pulse.
@Suite struct ReportFilterTests {
    /// 2026-12-01T10:00:00Z, a whole minute.
    static let t0: Int64 = 1_796_119_200_000

    func reading(_ variable: String, _ value: Double, at seconds: Int64) -> Reading {
        Reading(variable: variable, value: .number(value), unit: "°C", time: Timestamp(millisecondsSince1970: Self.t0 + seconds * 1000))
    }

    func values(_ readings: [Reading]) -> [Double] {
        readings.compactMap { if case .number(let v) = $0.value { v } else { nil } }
    }

    /// A slow drift is sent once it adds up: the deadband is measured from the last value *sent*.
    /// Measured from the last value read, 0.05 steps would never pass a 0.2 deadband.
    @Test func theDeadbandIsAgainstTheLastSentValue() {
        let f = ReportFilter(settings: ["t": ReportSettings(delta: 0.2)])
        var sent: [Reading] = []
        for (i, v) in [20.0, 20.05, 20.1, 20.15, 20.2, 20.25, 20.3, 20.45, 19.9].enumerated() {
            sent += f.filter([reading("t", v, at: Int64(i) * 10)])
        }
        #expect(values(sent) == [20.0, 20.2, 20.45, 19.9])
        #expect(f.withheld == 5)
    }

    @Test func theHeartbeatForcesASendOfAnUnchangedValue() {
        let f = ReportFilter(settings: ["t": ReportSettings(delta: 0.5, heartbeatMilliseconds: 15 * 60_000)])
        var sentAt: [Int64] = []
        for minute in Int64(0)..<46 {
            for r in f.filter([reading("t", 21.0, at: minute * 60)]) { sentAt.append((r.time.millisecondsSince1970 - Self.t0) / 60_000) }
        }
        #expect(sentAt == [0, 15, 30, 45])
    }

    @Test func aHeartbeatAloneSendsEveryChangeAndAtLeastThatOften() {
        let f = ReportFilter(settings: ["t": ReportSettings(heartbeatMilliseconds: 600_000)])
        let sent = [20.0, 20.0, 20.1, 20.1, 20.1].enumerated().flatMap { f.filter([reading("t", $0.element, at: Int64($0.offset) * 60)]) }
        #expect(values(sent) == [20.0, 20.1])
    }

    @Test func aPercentDeadbandScalesWithTheValue() {
        let f = ReportFilter(settings: ["p": ReportSettings(deltaPercent: 1)])
        let sent = [1000.0, 1005, 1009.9, 1010, 1010.5].enumerated().flatMap { f.filter([reading("p", $0.element, at: Int64($0.offset))]) }
        #expect(values(sent) == [1000, 1010])
    }

    /// Windows are aligned to the clock, not to the first reading: a reading at 10:00:30 and
    /// one at 10:00:50 share the 10:00 window, whose mean goes when 10:01:10 arrives, stamped 10:00.
    @Test func windowsAreAlignedToTheClockAndCarryCountMinMax() {
        let f = ReportFilter(settings: ["t": ReportSettings(windowMilliseconds: 60_000, aggregate: .mean)])
        #expect(f.filter([reading("t", 20, at: 30)]).isEmpty)
        #expect(f.filter([reading("t", 22, at: 50)]).isEmpty)
        let first = f.filter([reading("t", 30, at: 70)])
        #expect(first.count == 1)
        #expect(values(first) == [21])
        #expect(first.first?.time.millisecondsSince1970 == Self.t0)
        #expect(first.first?.metadata["count"] == "2")
        #expect(first.first?.metadata["min"] == "20")
        #expect(first.first?.metadata["max"] == "22")
        #expect(first.first?.metadata["window"] == "1m")
        // The open 10:01 window goes on stop, not lost.
        let rest = f.flush()
        #expect(values(rest) == [30])
        #expect(rest.first?.time.millisecondsSince1970 == Self.t0 + 60_000)
    }

    @Test func eachAggregate() {
        for (kind, expected) in [(ReportSettings.Aggregate.mean, 4.0), (.min, 1), (.max, 10), (.last, 2), (.median, 2.5)] {
            let f = ReportFilter(settings: ["v": ReportSettings(windowMilliseconds: 60_000, aggregate: kind)])
            for (i, v) in [1.0, 3, 10, 2].enumerated() { _ = f.filter([reading("v", v, at: Int64(i))]) }
            #expect(values(f.flush()) == [expected], "\(kind)")
        }
    }

    /// A counter's pulses held back by a deadband are carried into the next send, and a window
    /// sums them: the total sent is the total counted.
    @Test func aFilteredCounterNeverLosesAPulse() {
        let pulses: [Double] = [3, 0, 0, 1, 0, 0, 0, 5, 0, 2]
        let deadband = ReportFilter(settings: ["pulses": ReportSettings(delta: 4)], additive: ["pulses"])
        var sent: [Reading] = []
        for (i, p) in pulses.enumerated() { sent += deadband.filter([reading("pulses", p, at: Int64(i) * 60)]) }
        #expect(values(sent) == [3, 6])  // 3 first; then 0+0+1+0+0+0+5 = 6 adds up past 4; 0+2 is held...
        sent += deadband.flush()          // ... and goes on stop
        #expect(values(sent) == [3, 6, 2])
        #expect(values(sent).reduce(0, +) == pulses.reduce(0, +))

        let window = ReportFilter(settings: ["pulses": ReportSettings(windowMilliseconds: 300_000)], additive: ["pulses"])
        var summed: [Reading] = []
        for (i, p) in pulses.enumerated() { summed += window.filter([reading("pulses", p, at: Int64(i) * 60)]) }
        summed += window.flush()
        #expect(values(summed) == [4, 7])
        #expect(values(summed).reduce(0, +) == pulses.reduce(0, +))
    }

    @Test func variablesWithoutSettingsAndNonNumbersPassAsTheyShould() {
        let f = ReportFilter(settings: ["t": ReportSettings(delta: 1)])
        let other = Reading(variable: "door", value: .bool(true), time: Timestamp(millisecondsSince1970: Self.t0))
        #expect(f.filter([other, other]).count == 2)
        let g = ReportFilter(settings: ["door": ReportSettings(heartbeatMilliseconds: 60_000)])
        let closed = Reading(variable: "door", value: .bool(false), time: Timestamp(millisecondsSince1970: Self.t0 + 1000))
        #expect(g.filter([other]).count == 1)
        #expect(g.filter([other]).isEmpty)
        #expect(g.filter([closed]).count == 1)
    }

    /// A window taken away by a param closes the open window with the next round: nothing read is dropped.
    @Test func aWindowRemovedAtRunTimeIsSentNotDropped() {
        let f = ReportFilter(settings: ["t": ReportSettings(windowMilliseconds: 60_000)])
        _ = f.filter([reading("t", 20, at: 1)])
        _ = f.filter([reading("t", 24, at: 2)])
        f.update(settings: [:])
        let out = f.filter([reading("t", 25, at: 3)])
        #expect(values(out) == [22, 25])
    }

    @Test func theConfigReadsReportTablesAndRefusesContradictions() throws {
        let c = try AgentConfig.parse("""
        [[sensor]]
        name = "env"
        driver = "bme280"
        [sensor.report]
        delta = 0.2
        heartbeat = "15m"
        [sensor.report.pressure]
        window = "1m"
        aggregate = "median"
        """, file: "r.toml")
        let env = try #require(c.sensors.first)
        #expect(env.reportSettings(for: "temperature") == ReportSettings(delta: 0.2, heartbeatMilliseconds: 900_000))
        #expect(env.reportSettings(for: "pressure").windowMilliseconds == 60_000)
        #expect(env.reportSettings(for: "pressure").aggregate == .median)

        func errors(_ report: String) -> [String] {
            do {
                _ = try AgentConfig.parse("[[sensor]]\nname = \"env\"\ndriver = \"bme280\"\n[sensor.report]\n" + report, file: "r.toml")
                return []
            } catch {
                return error.errors.map(\.description)
            }
        }
        #expect(errors("window = \"1m\"\ndelta = 1\n").first?.contains("r.toml:5: sensor[0].report.window: a window sends one aggregate") == true)
        #expect(errors("aggregate = \"mean\"\n").first?.contains("applies to a window") == true)
        #expect(errors("delta = -1\n").first?.contains("must be greater than 0") == true)
        #expect(errors("[sensor.report.illuminance]\ndelta = 1\n").first?.contains("is not a variable of this sensor") == true)
        #expect(errors("delta = 0.5\n").isEmpty)
    }

    @Test func reportParamsAreValidatedAndOverrideTheFile() {
        let remote = RemoteSettings(path: nil, sensors: ["env"])
        #expect(remote.problem(key: "env.delta", value: "0.5") == nil)
        #expect(remote.problem(key: "env.delta", value: "-1") != nil)
        #expect(remote.problem(key: "env.delta", value: "nan") != nil)
        #expect(remote.problem(key: "env.heartbeat", value: "15m") == nil)
        #expect(remote.problem(key: "env.window", value: "2d") != nil)
        #expect(remote.problem(key: "env.aggregate", value: "avg") != nil)
        let file = ReportSettings(windowMilliseconds: 60_000)
        remote.apply(key: "env.delta", value: "0.3")
        #expect(remote.report(sensor: "env", base: file) == ReportSettings(delta: 0.3))
        remote.apply(key: "env.window", value: "5m")
        #expect(remote.report(sensor: "env", base: file).windowMilliseconds == 300_000)
        #expect(remote.report(sensor: "env", base: file).delta == nil)
    }
}

/// TagoIO's per-minute limits, kept on a manual clock.
@Suite struct RequestBudgetTests {
    /// At most the limit in any 60 s, not only per minute of this gateway's clock: a greedy sender
    /// over ten minutes, checked in every window ending at a request.
    @Test func noSixtySecondsEverHoldMoreThanTheLimit() {
        let clock = ManualClock()
        let budget = RequestBudget(perMinute: ["POST /data": 5], clock: clock)
        var times: [UInt64] = []
        var rng = SeededRandom("request-budget")
        while clock.nanoseconds() < 600_000_000_000 {
            let wait = budget.waitMilliseconds("POST /data")
            if wait > 0 {
                clock.advance(milliseconds: wait)
                continue
            }
            // Sometimes a window of three at once (an MQTT step), recorded after the fact.
            let burst = Int.random(in: 0..<4, using: &rng) == 0 ? 3 : 1
            budget.take("POST /data", burst)
            for _ in 0..<burst { times.append(clock.nanoseconds()) }
            clock.advance(milliseconds: Int64.random(in: 0..<5_000, using: &rng))
        }
        var worst = 0
        for (i, end) in times.enumerated() {
            let inWindow = times[...i].filter { end - $0 < 60_000_000_000 }.count
            worst = max(worst, inWindow)
        }
        #expect(worst <= 5 + 2, "a burst of 3 may overshoot by 2 once; seen \(worst)")
        #expect(times.count >= 45, "and the limit is used: \(times.count) in 10 minutes")
        #expect(budget.sent["POST /data"] == times.count)
        #expect(budget.waitMilliseconds("GET /other") == 0)
    }

    /// The agent's uplink, sending as fast as it can, stays within the free plan's 250 a minute.
    @Test func theUplinkServiceKeepsToThePlan() throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        let config = try AgentConfig.parse("""
            [device]
            token = "env:NOT_USED"
            api = "http://127.0.0.1:9"
            plan = "free"
            [spool]
            path = "\(dir)/spool"
            [agent]
            telemetry = "off"
            [[sensor]]
            name = "board"
            driver = "board"
            interval = "10s"
            [sensor.simulate]
            signal = "constant"
            """, file: "budget.toml")
        let greedy = GreedyUplink(clock: clock)
        let r = try AgentRuntime(config: config, token: "t", environment: HardwareEnvironment(clock: clock), clock: clock,
                                 paramsSource: ListedParams(), makeUplink: { _ in greedy }, log: { _, _ in })
        r.start()
        #expect(advance(clock, by: 180_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        r.stop()
        let times = greedy.times
        var worst = 0
        for (i, end) in times.enumerated() { worst = max(worst, times[...i].filter { end - $0 < 60_000_000_000 }.count) }
        #expect(worst <= 250, "\(worst) requests in one minute")
        #expect(times.count >= 3 * 250 - 1, "\(times.count) requests in 3 minutes")
        #expect(r.snapshot.budgetWaits > 0)
    }
}

/// An uplink that sends one request at every step, as fast as it is let.
final class GreedyUplink: Uplink, @unchecked Sendable {
    private let lock = Lock()
    private let clock: ManualClock
    private var sent: [UInt64] = []
    init(clock: ManualClock) { self.clock = clock }
    var times: [UInt64] { lock.withLock { sent } }
    var requestsSent: Int { lock.withLock { sent.count } }
    func step() -> UplinkStep {
        lock.withLock { sent.append(clock.nanoseconds()) }
        return .sent(count: 0, through: 0, deadLettered: 0)
    }
    func takeDownlink() -> [(topic: String, payload: [UInt8])] { [] }
    func close() {}
}
