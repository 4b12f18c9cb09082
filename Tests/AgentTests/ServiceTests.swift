#if canImport(Glibc)
import Glibc
#endif
import Testing
import EdgeCore
import Spool
import TagoKit
import TestSupport
import Uplink
@testable import Agent

/// The schedule on its own: no drift, missed rounds skipped, backoff capped.
@Suite struct SampleScheduleTests {
    let second: UInt64 = 1_000_000_000

    @Test func aSlowRoundDoesNotMoveTheGrid() {
        var s = SampleSchedule(sensors: 1, start: 10 * second)
        #expect(s.dueNow(10 * second) == [0])
        // The round took 300 ms: the next read is still due one interval after this one was.
        s.succeeded(0, intervalMilliseconds: 1_000, now: 10 * second + 300_000_000)
        #expect(s.next == 11 * second)
        s.succeeded(0, intervalMilliseconds: 1_000, now: 11 * second + 900_000_000)
        #expect(s.next == 12 * second)
    }

    @Test func missedRoundsAreSkippedNotCaughtUp() {
        var s = SampleSchedule(sensors: 1, start: 10 * second)
        // The gateway was suspended for 3.5 intervals: one read now, the next an interval later.
        s.succeeded(0, intervalMilliseconds: 1_000, now: 13 * second + second / 2)
        #expect(s.next == 14 * second + second / 2)
    }

    @Test func aFailingSensorBacksOffUpToTheCapAndTheOthersKeepTheirGrid() {
        var s = SampleSchedule(sensors: 2, start: 0)
        var now: UInt64 = 0
        var gaps: [UInt64] = []
        for _ in 0..<12 {
            s.failed(0, intervalMilliseconds: 10_000, now: now)
            gaps.append(s.due[0] - now)
            now = s.due[0]
        }
        // interval × 2^n / 4, at least one interval, the backoff itself capped at 5 minutes.
        #expect(gaps.prefix(4) == [10 * second, 10 * second, 20 * second, 40 * second])
        #expect(gaps.suffix(6).allSatisfy { $0 == 75 * second })
        #expect(s.due[1] == 0)
        s.succeeded(0, intervalMilliseconds: 10_000, now: now)
        #expect(s.failures[0] == 0)
    }

    @Test func absurdIntervalsSaturateInsteadOfTrapping() {
        var s = SampleSchedule(sensors: 1, start: UInt64.max - 5)
        s.succeeded(0, intervalMilliseconds: Int64.max, now: UInt64.max - 1)
        #expect(s.next == UInt64.max)
        for _ in 0..<100 { s.failed(0, intervalMilliseconds: Int64.max, now: UInt64.max) }
        #expect(s.next == UInt64.max)
    }
}

/// A service that waits as long as it is told, counting its rounds.
final class WaitingService: AgentService, @unchecked Sendable {
    let name: String
    let waitMilliseconds: Int64
    let beat: Bool
    private let lock = Lock()
    private var count = 0
    private var finished = false

    init(name: String, waitMilliseconds: Int64, beat: Bool = true) {
        self.name = name
        self.waitMilliseconds = waitMilliseconds
        self.beat = beat
    }

    var rounds: Int { lock.withLock { count } }
    var returned: Bool { lock.withLock { finished } }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        repeat {
            heartbeat.beat(stop.clock.nanoseconds())
            lock.withLock { count += 1 }
        } while stop.sleep(milliseconds: waitMilliseconds, heartbeat: beat ? heartbeat : nil)
        lock.withLock { finished = true }
    }
}

@Suite struct SupervisorTests {
    @Test func aSleepOnTheManualClockEndsWhenTheClockPassesItsDeadline() {
        let clock = ManualClock()
        let signal = StopSignal(clock: clock)
        let service = WaitingService(name: "w", waitMilliseconds: 600_000)
        let supervisor = Supervisor(clock: clock, services: [service])
        supervisor.start()
        #expect(waitUntil { supervisor.stopSignal.sleeping == 1 })
        #expect(service.rounds == 1)
        clock.advance(milliseconds: 599_999)
        #expect(settle(clock, supervisor.stopSignal, 1))
        #expect(service.rounds == 1)
        clock.advance(milliseconds: 1)
        #expect(waitUntil { service.rounds == 2 })
        supervisor.stop()
        #expect(service.returned)
        _ = signal
    }

    /// The watchdog starvation: a service waiting 10 minutes (a refused token, a backoff, a slow
    /// sensor) must still look alive to a 60 s watchdog all along. Without the heartbeat in the
    /// sleep (`beat: false`, the old loops) it is reported stalled after 60 s.
    @Test(arguments: [true, false])
    func aLongWaitKeepsTheWatchdogFedOnlyWhenTheSleepBeats(beats: Bool) {
        let clock = ManualClock()
        let service = WaitingService(name: "uplink", waitMilliseconds: 600_000, beat: beats)
        let supervisor = Supervisor(clock: clock, services: [service])
        supervisor.start()
        defer { supervisor.stop() }
        var stalls = 0
        let ok = advance(clock, by: 600_000, step: 1_000, parked: supervisor.stopSignal, sleepers: 1) {
            if !supervisor.isAlive(withinMilliseconds: 60_000) { stalls += 1 }
        }
        #expect(ok)
        if beats { #expect(stalls == 0) } else { #expect(stalls > 500) }
    }

    /// Waiting services beat four times within the window the status service checks before
    /// feeding the watchdog (WatchdogSec, at least 5 s), and no more often: a beat is a wake-up.
    /// (Every second whatever the watchdog, before: 1.5 wake-ups a second for an uplink waiting
    /// 5 s between uploads, where 0.2 do.)
    @Test(arguments: [nil, 50, 500, 5_000, 30_000, 300_000] as [Int64?])
    func servicesBeatAsOftenAsTheWatchdogNeeds(watchdog: Int64?) {
        let beat = AgentRuntime.beatInterval(watchdogMilliseconds: watchdog)
        let window = max((watchdog ?? 30_000) * 2, 5_000)
        #expect(beat * 4 <= window)
        #expect(beat >= 50 && beat <= 15_000)
        if watchdog == 30_000 || watchdog == nil { #expect(beat == 15_000) }  // the shipped unit: WatchdogSec=60
    }

    /// `WATCHDOG_USEC` as systemd sets it, and as it should never be.
    @Test(arguments: [("60000000", 30_000), ("1000000", 500), ("1", 1), ("0", nil), ("-4000", nil), ("x", nil), ("99999999999999999999", nil)] as [(String, Int64?)])
    func theWatchdogIntervalIsReadSafely(value: String, interval: Int64?) {
        let notifier = SystemdNotifier(environment: { $0 == "WATCHDOG_USEC" ? value : nil })
        #expect(notifier.watchdogIntervalMilliseconds == interval)
    }

    @Test func aServiceThatHangsIsReportedStalled() {
        let clock = ManualClock()
        let gate = StopSignal()  // real clock: the hung service never wakes on the manual one
        final class Hung: AgentService, @unchecked Sendable {
            let name = "hung"
            let gate: StopSignal
            init(_ gate: StopSignal) { self.gate = gate }
            func run(stop: StopSignal, heartbeat: Heartbeat) { while !gate.isStopped { gate.sleep(milliseconds: 10_000) } }
        }
        let supervisor = Supervisor(clock: clock, services: [Hung(gate), WaitingService(name: "fine", waitMilliseconds: 1_000)])
        supervisor.start()
        clock.advance(milliseconds: 61_000)
        #expect(waitUntil { supervisor.stalled(withinMilliseconds: 60_000) == ["hung"] })
        gate.stop()
        supervisor.stop()
    }

    @Test func stopReturnsOnlyAfterEveryServiceHasReturned() {
        let clock = ManualClock()
        let services = (0..<4).map { WaitingService(name: "s\($0)", waitMilliseconds: 3_600_000) }
        let supervisor = Supervisor(clock: clock, services: services)
        supervisor.start()
        #expect(waitUntil { supervisor.stopSignal.sleeping == 4 })
        supervisor.stop()
        #expect(services.allSatisfy { $0.returned })
    }
}

/// A scripted uplink: answers each step from a list, then idles.
final class ScriptedUplink: Uplink, @unchecked Sendable {
    private let lock = Lock()
    private var script: [UplinkStep]
    private(set) var steps = 0
    private(set) var closed = false
    let spool: Spool

    init(spool: Spool, _ script: [UplinkStep]) {
        self.spool = spool
        self.script = script
    }

    var stepCount: Int { lock.withLock { steps } }

    func step() -> UplinkStep {
        lock.withLock {
            steps += 1
            if !script.isEmpty { return script.removeFirst() }
            // Acknowledges what waits, like a server that takes everything.
            if let records = try? spool.peek(maxRecords: 1000, maxBytes: 1 << 20), let last = records.last {
                try? spool.acknowledge(through: last.seq)
                return .sent(count: records.count, through: last.seq, deadLettered: 0)
            }
            return .idle
        }
    }

    func takeDownlink() -> [(topic: String, payload: [UInt8])] { [] }
    func close() { lock.withLock { closed = true } }
}

/// configuration_params from a list.
final class ListedParams: ParamsSource, @unchecked Sendable {
    private let lock = Lock()
    var pending: [ConfigParam] = []
    private(set) var polls = 0
    private(set) var marked: [String] = []

    func params(onlyUnread: Bool) throws -> [ConfigParam] {
        lock.withLock {
            polls += 1
            defer { pending.removeAll() }
            return pending
        }
    }

    func markParamRead(id: String) throws { lock.withLock { marked.append(id) } }
    var pollCount: Int { lock.withLock { polls } }
    func add(_ key: String, _ value: String) { lock.withLock { pending.append(ConfigParam(id: "p\(pending.count)-\(key)", key: key, value: value)) } }
}

@Suite struct RuntimeOnAManualClockTests {
    func config(_ dir: String, interval: String = "10s", extra: String = "") throws -> AgentConfig {
        try AgentConfig.parse("""
            [device]
            token = "env:NOT_USED"
            api = "http://127.0.0.1:9"
            [spool]
            path = "\(dir)/spool"
            [agent]
            params_interval = "60s"
            telemetry = "off"
            [[sensor]]
            name = "board"
            driver = "board"
            interval = "\(interval)"
            [sensor.simulate]
            signal = "constant"
            \(extra)
            """, file: "manual.toml")
    }

    func runtime(_ config: AgentConfig, clock: ManualClock, uplink: @escaping (RuntimeContext) -> Uplink, params: ParamsSource,
                 log: @escaping @Sendable (LogLevel, String) -> Void = { _, _ in }) throws -> AgentRuntime {
        try AgentRuntime(config: config, token: "t", environment: HardwareEnvironment(clock: clock), clock: clock, paramsSource: params, makeUplink: uplink, log: log)
    }

    @Test func aRefusedTokenWaitsFiveMinutesAliveAndThenDelivers() throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        let params = ListedParams()
        var uplink: ScriptedUplink?
        let r = try runtime(try config(dir), clock: clock, uplink: { c in
            let u = ScriptedUplink(spool: c.spool, [.wait(milliseconds: 300_000, reason: "token refused", kind: .unauthorized)])
            uplink = u
            return u
        }, params: params)
        r.start()
        // sampling, uplink, params and status all parked.
        var stalls = 0
        #expect(advance(clock, by: 299_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4) {
            if !r.isAlive(withinMilliseconds: 60_000) { stalls += 1 }
        })
        #expect(stalls == 0)
        #expect(uplink?.stepCount == 1)
        #expect(r.snapshot.delivered == 0)
        #expect(r.snapshot.sampled == 30)  // every 10 s, from 0 s to 290 s
        #expect(advance(clock, by: 1_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        #expect(waitUntil { r.snapshot.delivered >= 30 })
        r.stop()
        #expect(uplink?.closed == true)
    }

    @Test func paramsArePolledOnTheirIntervalAndChangeTheSchedule() throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        let params = ListedParams()
        let r = try runtime(try config(dir), clock: clock, uplink: { ScriptedUplink(spool: $0.spool, []) }, params: params)
        r.start()
        #expect(waitUntil { params.pollCount == 1 && r.supervisor.stopSignal.sleeping == 4 })
        params.add("board.interval", "1s")
        #expect(advance(clock, by: 59_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        #expect(params.pollCount == 1)
        #expect(r.snapshot.sampled == 6)  // 0, 10, …, 50 s
        #expect(advance(clock, by: 1_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        #expect(waitUntil { params.pollCount == 2 })
        #expect(waitUntil { params.marked.count == 1 })
        #expect(r.remote.all["board.interval"] == "1s")
        let before = r.snapshot.sampled
        // From the next round on (the one at 60 s may have been scheduled before the param came).
        #expect(advance(clock, by: 20_000, step: 500, parked: r.supervisor.stopSignal, sleepers: 4))
        #expect(r.snapshot.sampled - before >= 10)
        r.stop()
    }

    /// A param with an absurd value must be refused (a config_error reading), never saved, never
    /// trap: before, `interval = 9999999999999s` crashed the agent and, once saved, every restart.
    @Test(arguments: ["9999999999999s", "999999999999d", "99999999999999999999", "1e400", "-5s", "10x", "9223372036854775807", "nan"])
    func anAbsurdParamIsRefusedAndNeverSaved(value: String) throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        let params = ListedParams()
        params.add("interval", value)
        params.add("board.interval", value)
        params.add("upload_interval", value)
        let r = try runtime(try config(dir), clock: clock, uplink: { ScriptedUplink(spool: $0.spool, [.idle]) }, params: params)
        r.start()
        #expect(waitUntil { params.marked.count == 3 })
        #expect(r.remote.all.isEmpty)
        #expect(advance(clock, by: 20_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        r.stop()
        let saved = (try? readTextFile(dir + "/spool.settings.json")) ?? ""
        #expect(!saved.contains(value))
        var errors = 0
        let spool = try FileSpool(path: dir + "/spool", options: .init(readOnly: true))
        try spool.forEachRecord { record in
            if let reading = ReadingCodec.decode(record.payload), reading.variable == "config_error" { errors += 1 }
            return true
        }
        // Three refused, or acknowledged already by the scripted uplink: none applied either way.
        #expect(errors == 3 || r.snapshot.delivered >= 3)
    }

    @Test func aSavedSettingThisVersionRefusesIsIgnoredWithAWarning() throws {
        let dir = makeTemporaryDirectory()
        writeFileAtomically(dir + "/spool.settings.json", Array(#"{"interval": "9999999999999d", "log_level": "debug", "upload_interval": 7}"#.utf8))
        let warnings = LogLines()
        let r = try runtime(try config(dir), clock: ManualClock(), uplink: { ScriptedUplink(spool: $0.spool, []) }, params: ListedParams(), log: { level, line in
            if level == .warning { warnings.add(line) }
        })
        #expect(r.remote.all == ["log_level": "debug"])
        #expect(warnings.lines.contains { $0.contains("'interval'") && $0.contains("ignored") })
        #expect(warnings.lines.contains { $0.contains("'upload_interval'") })
        r.stop()
    }

    /// Stop joins every service before closing the spool, and the closed spool refuses writes
    /// (before, a reload's old threads could write through a descriptor the new spool reused).
    @Test func stopJoinsBeforeTheSpoolClosesAndNothingIsWrittenAfter() throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        // The uplink holds everything, so the readings are still pending when the spool reopens
        // (a scripted uplink that acknowledged them raced the sampler and left it empty).
        let held = UplinkStep.wait(milliseconds: 600_000, reason: "held", kind: .transient)
        let r = try runtime(try config(dir, interval: "1s"), clock: clock, uplink: { ScriptedUplink(spool: $0.spool, [held]) }, params: ListedParams())
        r.start()
        #expect(advance(clock, by: 5_000, step: 1_000, parked: r.supervisor.stopSignal, sleepers: 4))
        #expect(r.snapshot.sampled > 0)
        r.stop()
        #expect(r.supervisor.stopSignal.sleeping == 0)
        #expect(throws: SpoolError.self) { try r.spool.append([[1, 2, 3]]) }
        #expect(throws: SpoolError.self) { try r.spool.acknowledge(through: 1) }
        // A second runtime on the same spool (a reload) opens it at once: the lock was released.
        let again = try runtime(try config(dir, interval: "1s"), clock: clock, uplink: { ScriptedUplink(spool: $0.spool, []) }, params: ListedParams())
        #expect(again.spool.stats.newestSeq != nil)
        again.stop()
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = Lock()
    private var all: [String] = []
    func add(_ line: String) { lock.withLock { all.append(line) } }
    var lines: [String] { lock.withLock { all } }
}

@Suite struct PlaintextWarningTests {
    func warnings(_ text: String) throws -> [String] { try AgentConfig.parse(text, file: "w.toml").warnings.map(\.description) }

    @Test func aTokenThatWouldCrossTheNetworkInClearIsWarnedAbout() throws {
        #expect(try warnings("[device]\napi = \"http://tago.example.com\"\n").contains { $0.contains("UNENCRYPTED") })
        #expect(try warnings("[device]\napi = \"http://127.0.0.1:8480\"\n").allSatisfy { !$0.contains("UNENCRYPTED") })
        #expect(try warnings("[device]\napi = \"https://api.tago.io\"\n").allSatisfy { !$0.contains("UNENCRYPTED") })
        #expect(try warnings("[uplink]\ntransport = \"mqtt\"\n[mqtt]\nhost = \"mqtt.tago.io\"\n").contains { $0.contains("UNENCRYPTED") })
        #expect(try warnings("[uplink]\ntransport = \"mqtt\"\n[mqtt]\nhost = \"mqtt.tago.io\"\ntls = true\nport = 8883\n").allSatisfy { !$0.contains("UNENCRYPTED") })
        #expect(try warnings("[uplink]\ntransport = \"mqtt\"\n[mqtt]\nhost = \"localhost\"\n").allSatisfy { !$0.contains("UNENCRYPTED") })
    }

    @Test func theShippedConfigsSendNothingInClear() throws {
        for name in ["raspberry-pi.toml", "bench.toml"] {
            let config = try AgentConfig.load(path: repositoryRoot + "/config/" + name)
            #expect(config.warnings.allSatisfy { !$0.description.contains("UNENCRYPTED") }, "\(name)")
            #expect(config.mqtt.tls || ConfigLoader.isLoopback(config.mqtt.connection.host), "\(name)")
        }
    }
}

@Suite struct DownlinkBoundsTests {
    @Test func oversizedCrowdedAndFloodingDownlinksAreIgnored() throws {
        let dir = makeTemporaryDirectory()
        let clock = ManualClock()
        let lines = LogLines()
        let config = try AgentConfig.parse("[spool]\npath = \"\(dir)/spool\"\n[agent]\nparams_interval = \"off\"\n", file: "d.toml")
        let r = try AgentRuntime(config: config, token: "t", environment: HardwareEnvironment(clock: clock), clock: clock,
                                 makeUplink: { ScriptedUplink(spool: $0.spool, []) }, log: { _, line in lines.add(line) })
        defer { r.stop() }
        r.applyDownlink(String(repeating: "x", count: 5_000), from: "cmd")
        r.applyDownlink((0..<40).map { "k\($0)=1" }.joined(separator: "\n"), from: "cmd")
        #expect(lines.lines.filter { $0.contains("ignored") }.count == 2)
        for _ in 0..<70 { r.applyDownlink("log_level=debug", from: "cmd") }
        #expect(lines.lines.contains { $0.contains("messages a minute") })
        #expect(r.remote.all["log_level"] == "debug")
        clock.advance(milliseconds: 60_001)
        r.applyDownlink("log_level=info", from: "cmd")
        #expect(r.remote.all["log_level"] == "info")
    }
}

@Suite struct AnalysisSandboxTests {
    /// Before: once the program closed its output, the runner waited for it to exit with no
    /// limit (`waitpid` without WNOHANG), so `sleep 30` held the analyses for 30 s, or forever.
    @Test func theTimeLimitHoldsAfterTheProgramClosesItsOutput() {
        var analysis = EdgeAnalysis(name: "quiet", program: "/bin/sh")
        analysis.arguments = ["-c", "exec >&- 2>&-; sleep 30"]
        analysis.timeoutMilliseconds = 300
        let clock = SystemClock()
        let start = clock.nanoseconds()
        let run = EdgeAnalysisRunner.run(analysis, scope: [])
        #expect(run.timedOut)
        #expect(clock.nanoseconds() - start < 5_000_000_000)
    }

    /// Before: the program inherited every descriptor the agent opened without close-on-exec.
    @Test func theProgramSeesNoneOfTheAgentsDescriptors() {
        let inherited = open("/dev/null", O_RDONLY)  // no O_CLOEXEC, on purpose
        defer { close(inherited) }
        var analysis = EdgeAnalysis(name: "fds", program: "/bin/sh")
        analysis.arguments = ["-c", "for f in /proc/$$/fd/*; do echo \"fd ${f##*/}\"; done"]
        let run = EdgeAnalysisRunner.run(analysis, scope: [])
        // 0, 1, 2, and the directory the shell's glob has open while it lists it.
        #expect(Set(run.log).isSubset(of: ["fd 0", "fd 1", "fd 2", "fd 3"]))
        #expect(inherited > 3 && !run.log.contains("fd \(inherited)"))
    }

    @Test func aLineThatEchoesTheTokenIsLoggedWithoutIt() {
        var analysis = EdgeAnalysis(name: "echo", program: "/bin/sh")
        analysis.arguments = ["-c", "cat"]
        let run = EdgeAnalysisRunner.run(analysis, scope: [], token: "secret-device-token")
        #expect(!run.log.joined().contains("secret-device-token"))
        #expect(run.log.joined().contains("***"))
    }
}

/// A disk that fails every append (EIO from a dying SD card, a full disk): said once, then at
/// most once a minute with a count, and once when appends work again. Before: one error line a
/// failed append, every round of every sensor, into a journal that may be on the same card.
@Suite struct SpoolFailureLogTests {
    @Test func aFailingSpoolIsLoggedOnceAMinuteAndItsRecoveryOnce() throws {
        let clock = ManualClock()
        // A spool that refuses new readings once full; acknowledging frees it.
        let spool = MemorySpool(capacityBytes: 8192, policy: .rejectNewest)
        final class Lines: @unchecked Sendable {
            let lock = Lock()
            var all: [String] = []
        }
        let lines = Lines()
        let config = try AgentConfig.parse("[[sensor]]\nname = \"env\"\ndriver = \"board\"\nzone = 0\n", file: "x.toml")
        let context = RuntimeContext(config: config, spool: spool, clock: clock, clockGuard: ClockGuard(mode: .trust, wall: clock, monotonic: clock),
                                     remote: RemoteSettings(path: nil, sensors: ["env"]), log: { level, line in
                                         if level <= .warning { lines.lock.withLock { lines.all.append(line) } }
                                     })
        let reading = { Reading(variable: "t", value: .number(1), time: clock.now()) }
        while context.spoolReadings([reading()], sampled: true) { }
        for _ in 0..<300 {  // 30 s of failures, ten a second
            clock.advance(milliseconds: 100)
            context.spoolReadings([reading()], sampled: true)
        }
        #expect(lines.lock.withLock { lines.all.count } == 1, "\(lines.lock.withLock { lines.all })")
        clock.advance(milliseconds: 31_000)
        context.spoolReadings([reading()], sampled: true)
        #expect(lines.lock.withLock { lines.all.count } == 2)
        #expect(lines.lock.withLock { lines.all.last ?? "" }.contains("(300 more failed since the last message)"))
        try spool.acknowledge(through: spool.stats.newestSeq ?? 0)
        #expect(context.spoolReadings([reading()], sampled: true))
        #expect(lines.lock.withLock { lines.all.last ?? "" } == "spool: appends work again (302 failed before)")
    }
}
