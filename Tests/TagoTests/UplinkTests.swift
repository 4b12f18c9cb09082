import Testing
import EdgeCore
import Emulator
import Spool
import TagoKit
@testable import Uplink
#if canImport(Glibc)
import Glibc
#endif

func counterReadings(_ range: ClosedRange<Int>, variable: String = "counter") -> [[UInt8]] {
    range.map { i in ReadingCodec.encode(Reading(variable: variable, value: .number(Double(i)), time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64(i)))) }
}

func deadLetterPath() -> String { "/tmp/tagoedge-dead-\(UInt64.random(in: 0...UInt64.max)).jsonl" }

/// Steps the uplink until the spool is empty, obeying the waits (real time, capped), and returns
/// the waits it was told.
@discardableResult
func drain(_ uplink: HTTPUplink, limit: Int = 2_000, maxSleepMilliseconds: Int64 = 3_000) -> [UplinkStep] {
    var steps: [UplinkStep] = []
    for _ in 0..<limit {
        let s = uplink.step()
        steps.append(s)
        switch s {
        case .idle: return steps
        case .sent: continue
        case .wait(let ms, _, _): usleep(UInt32(min(ms, maxSleepMilliseconds)) * 1000)
        }
    }
    return steps
}

@Suite(.serialized) struct UplinkTests {
    func uplink(_ tago: LocalTago, spool: Spool, policy: UplinkPolicy = UplinkPolicy(), deadLetters: String = deadLetterPath()) -> HTTPUplink {
        HTTPUplink(spool: spool, device: tago.device, deadLetters: DeadLetterFile(path: deadLetters), policy: policy)
    }

    @Test func afterAnOutageEveryReadingArrivesOnce() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(counterReadings(1...1000))
        var policy = UplinkPolicy()
        policy.maxRecords = 100
        policy.backoff.baseMilliseconds = 20
        policy.backoff.capMilliseconds = 200
        let up = uplink(tago, spool: spool, policy: policy)
        try tago.faults("error-rate=1")
        var waits = 0
        for _ in 0..<5 {
            if case .wait(_, let reason, .transient) = up.step() {
                waits += 1
                #expect(reason.contains("503"))
            }
        }
        #expect(waits == 5)
        #expect(spool.stats.recordCount == 1000)  // nothing acknowledged while failing
        try tago.faults("")
        drain(up)
        #expect(try tago.values("counter") == (1...1000).map(Double.init))
        #expect(spool.stats.recordCount == 0)
        #expect(up.requests == 15)  // 5 failed, then 10 batches of 100
    }

    @Test func lostResponsesDuplicateAtMostOneBatchEach() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(counterReadings(1...2000))
        var policy = UplinkPolicy()
        policy.maxRecords = 50
        policy.backoff.baseMilliseconds = 5
        policy.backoff.capMilliseconds = 20
        let up = uplink(tago, spool: spool, policy: policy)
        try tago.faults("drop-response-rate=0.3")
        drain(up, limit: 10_000)
        try tago.faults("")  // read back without the fault
        let values = try tago.values("counter")
        let dropped = Int(try tago.stats()["faults_dropped_responses"]?.numberValue ?? 0)
        #expect(dropped > 0)
        #expect(Set(values) == Set((1...2000).map(Double.init)))  // every reading arrived
        #expect(values.count - 2000 <= dropped * policy.maxRecords)  // the documented bound
        #expect(values.count > 2000)  // and the test did exercise duplicates
    }

    @Test func aPoisonRecordGoesToTheDeadLetterFileAndTheRestFlows() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 4 << 20)
        try spool.append(counterReadings(1...300))
        try spool.append(counterReadings(1...1, variable: "poison"))
        try spool.append(counterReadings(301...600))
        let path = deadLetterPath()
        defer { unlink(path) }
        var policy = UplinkPolicy()
        policy.maxRecords = 128
        let up = uplink(tago, spool: spool, policy: policy, deadLetters: path)
        try tago.faults("reject-variable=poison")
        let steps = drain(up)
        #expect(try tago.values("counter") == (1...600).map(Double.init))
        let dead = try DeadLetterFile.read(path)
        #expect(dead.count == 1)
        #expect(dead.first?["object"]?["variable"]?.stringValue == "poison")
        #expect(dead.first?["status"]?.numberValue == 400)
        #expect(dead.first?["seq"]?.numberValue == 301)
        #expect(dead.first?["reason"]?.stringValue?.contains("refused") == true)
        #expect(steps.count < 40)  // isolated by halving, not one by one
    }

    @Test func aReadingTagoWouldRefuseIsDeadLetteredBeforeSending() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(counterReadings(1...3) + counterReadings(4...4, variable: "has space") + counterReadings(5...6))
        let path = deadLetterPath()
        defer { unlink(path) }
        drain(uplink(tago, spool: spool, deadLetters: path))
        #expect(try tago.values("counter") == [1, 2, 3, 5, 6])
        #expect(try DeadLetterFile.read(path).first?["reason"]?.stringValue?.contains("contains ' '") == true)
    }

    @Test func rateLimitIsHonoured() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(counterReadings(1...10))
        let up = uplink(tago, spool: spool)
        try tago.faults("throttle=2s")
        guard case .wait(let ms, _, .rateLimited) = up.step() else { Issue.record("429 not reported as rate limited"); return }
        #expect(ms >= 1_000 && ms <= 2_000)
        usleep(UInt32(ms) * 1000)
        #expect(try tago.stats()["faults_throttled"]?.numberValue == 1)  // no request during the wait
        guard case .sent(10, _, 0) = up.step() else { Issue.record("did not send after the wait"); return }
    }

    @Test func blackHoledRequestTimesOutAndIsRetried() throws {
        let tago = try LocalTago(timeoutMilliseconds: 400)
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(counterReadings(1...20))
        var policy = UplinkPolicy()
        policy.backoff.baseMilliseconds = 50
        policy.backoff.capMilliseconds = 100
        let up = uplink(tago, spool: spool, policy: policy)
        try tago.faults("blackhole=1s")
        guard case .wait(_, let reason, .transient) = up.step() else { Issue.record("a black hole did not time out"); return }
        #expect(reason.contains("timeout"))
        usleep(1_000_000)
        drain(up)
        #expect(try tago.values("counter") == (1...20).map(Double.init))
    }

    @Test func refusedTokenKeepsEverythingAndBacksOffLong() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        try spool.append(counterReadings(1...5))
        let wrong = TagoDevice(token: "revoked-token", endpoint: tago.endpoint, http: tago.http)
        let up = HTTPUplink(spool: spool, device: wrong, deadLetters: DeadLetterFile(path: deadLetterPath()))
        guard case .wait(let ms, let reason, .unauthorized) = up.step() else { Issue.record("401 not reported"); return }
        #expect(ms == UplinkPolicy().authBackoffMilliseconds)
        #expect(reason.contains("check the device token"))
        #expect(!reason.contains("revoked-token"))
        #expect(spool.stats.recordCount == 5)
    }

    @Test func batchesStayUnderTwoHundredKilobytes() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 16 << 20)
        let big = (1...3000).map { i in ReadingCodec.encode(Reading(variable: "note", value: .string(String(repeating: "n", count: 200) + "\(i)"), time: Timestamp(millisecondsSince1970: Int64(i)))) }
        try spool.append(big)
        var policy = UplinkPolicy()
        policy.maxRecords = 5000
        let up = uplink(tago, spool: spool, policy: policy)
        drain(up)
        #expect(try tago.device.find(DataQuery(variables: ["note"], query: "count")).numberValue == 3000)
        #expect(up.requests >= 4)  // 3000 × ~270 bytes needs at least four 200 kB requests
        #expect(try tago.stats()["responses_413"] == nil)
    }

    @Test func backoffIsExponentialWithFullJitter() throws {
        let tago = try LocalTago()
        var policy = UplinkPolicy()
        policy.backoff.baseMilliseconds = 100
        policy.backoff.capMilliseconds = 1_000
        var draws: [Double] = [1, 1, 1, 1, 1, 0.5, 0]
        let up = HTTPUplink(spool: MemorySpool(capacityBytes: 1 << 20), device: tago.device, deadLetters: DeadLetterFile(path: deadLetterPath()),
                            policy: policy, random: { draws.removeFirst() })
        #expect((0..<7).map { _ in up.backoff() } == [100, 200, 400, 800, 1000, 500, 0])
    }
}

@Suite(.serialized) struct ClockHoldTests {
    final class Wall: WallClock, @unchecked Sendable {
        var ms: Int64 = 0
        func now() -> Timestamp { Timestamp(millisecondsSince1970: ms) }
    }

    @Test func readingsStampedBeforeTheClockIsSetWaitAndNeverGoOutIn1970() throws {
        let tago = try LocalTago()
        let spool = MemorySpool(capacityBytes: 1 << 20)
        let mono = ManualClock(startNanoseconds: 10_000_000_000)
        let wall = Wall()
        var synced = false
        let guardian = ClockGuard(mode: .kernel, wall: wall, monotonic: mono, kernelSynchronised: { synced })
        try spool.append((1...3).map { ReadingCodec.encode(Reading(variable: "early", value: .number(Double($0)), time: guardian.stamp())) })
        let up = HTTPUplink(spool: spool, device: tago.device, deadLetters: DeadLetterFile(path: deadLetterPath()), clockGuard: guardian)
        guard case .wait(_, let reason, _) = up.step() else { Issue.record("sent readings with an unknown date"); return }
        #expect(reason.contains("clock"))
        #expect(try tago.stats()["route POST /data"] == nil)
        mono.advance(nanoseconds: 30_000_000_000)
        wall.ms = 1_800_000_000_000
        synced = true
        guard case .sent(3, _, 0) = up.step() else { Issue.record("did not send once the clock was set"); return }
        let times = try #require(try tago.device.find(DataQuery(variables: ["early"], qty: 10)).arrayValue).compactMap { $0["time"]?.stringValue }
        #expect(times.allSatisfy { $0.hasPrefix("2027-01-15T") })  // 1_800_000_000_000 − 30 s
    }
}
