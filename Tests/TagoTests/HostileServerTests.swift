import Testing
import EdgeCore
import Spool
import TagoKit
import TestSupport
@testable import Uplink

/// The HTTP uplink against a real server that answers like no TagoIO would: nothing buffered may
/// be lost, nothing may trap, and every wait must be bounded.
@Suite struct HostileServerTests {
    typealias R = ScriptedHTTPServer

    func uplink(_ server: ScriptedHTTPServer, readings: Int = 4, policy: UplinkPolicy = UplinkPolicy(), now: Int64 = 1_780_000_000_000) -> (HTTPUplink, MemorySpool, String) {
        let spool = MemorySpool(capacityBytes: 1 << 20)
        _ = try? spool.append(counterReadings(1...readings))
        let dead = deadLetterPath()
        let device = TagoDevice(token: "t", endpoint: TagoEndpoint(api: server.url), http: CurlHTTPClient())
        final class Fixed: WallClock, @unchecked Sendable {
            let ms: Int64
            init(_ ms: Int64) { self.ms = ms }
            func now() -> Timestamp { Timestamp(millisecondsSince1970: ms) }
        }
        return (HTTPUplink(spool: spool, device: device, deadLetters: DeadLetterFile(path: dead), policy: policy, clock: Fixed(now), random: { 0.5 }), spool, dead)
    }

    /// Before: a 404 (a wrong `api`, a captive portal, a proxy) was bisected reading by reading
    /// and every reading went to the dead-letter file.
    @Test(arguments: [
        R.response("404 Not Found", headers: ["Content-Type: text/html"], text: "<html>Not Found</html>"),
        R.response("404 Not Found", headers: ["Content-Type: application/json"], text: #"{"status":false,"message":"Route not found"}"#),
        R.response("200 OK", headers: ["Content-Type: text/html"], text: "<html>Welcome to the hotel wifi</html>"),
        R.response("302 Found", headers: ["Location: http://portal.example/login"], text: ""),
        R.response("400 Bad Request", headers: ["Content-Type: text/html"], text: "<html>400 Bad Request (nginx)</html>"),
        R.response("405 Method Not Allowed", text: "nope"),
        R.response("200 OK", text: "[1,2,3]"),
        // Found by the fuzzer (scripts/fuzz http): a 402 or a 1xx in an envelope was taken for
        // TagoIO refusing the data, and dead-lettered.
        R.response("402 Payment Required", headers: ["Content-Type: application/json"], text: #"{"status":false,"message":"Payment required"}"#),
    ])
    func anAnswerNoTagoIOGivesKeepsEveryReading(answer: [UInt8]) throws {
        let server = try ScriptedHTTPServer([answer])
        defer { server.stop() }
        let (u, spool, dead) = uplink(server)
        for _ in 0..<6 {
            guard case .wait(let ms, let reason, _) = u.step() else { Issue.record("expected a wait"); return }
            #expect(ms > 0)
            #expect(reason.contains("Readings are kept") || reason.contains("HTTP 2"))
        }
        #expect(spool.stats.recordCount == 4)
        #expect((try? readTextFile(dead)) == nil)
    }

    @Test func aRefusalInTagoIOsOwnWordsIsStillDeadLettered() throws {
        let server = try ScriptedHTTPServer([R.response("400 Bad Request", headers: ["Content-Type: application/json"],
                                                        text: #"{"status":false,"message":"Variable name is invalid"}"#)])
        defer { server.stop() }
        let (u, spool, dead) = uplink(server, readings: 1)
        #expect(u.step() == .sent(count: 0, through: 1, deadLettered: 1))
        #expect(spool.stats.recordCount == 0)
        #expect(try readTextFile(dead).contains("Variable name is invalid"))
    }

    /// Before: headers were split on "\n" in a String, where "\r\n" is one Character, so
    /// Retry-After was never found and the uplink waited for the next minute instead.
    @Test(arguments: [
        ("Retry-After: 7", 7_000 as Int64),
        ("retry-after:   12  ", 12_000),
        ("Retry-After: 99999999999999999999", 3_600_000),  // capped at an hour
        ("Retry-After: nan", 20_100),                      // ignored: the next minute
        ("Retry-After: inf", 20_100),
        ("Retry-After: -5", 20_100),
        ("Retry-After: Sat, 30 May 1970 20:26:00 GMT", 1),  // in the past: at once
    ] as [(String, Int64)])
    func retryAfterIsReadAndBounded(header: String, expected: Int64) throws {
        let server = try ScriptedHTTPServer([R.response("429 Too Many Requests", headers: [header], text: #"{"status":false,"message":"Too many requests"}"#)])
        defer { server.stop() }
        // 2026-05-30T20:26:40Z on the uplink's clock: 20 s to the next minute.
        let (u, spool, _) = uplink(server, now: 1_780_172_800_000)
        guard case .wait(let ms, _, let kind) = u.step() else { Issue.record("expected a wait"); return }
        #expect(kind == .rateLimited)
        #expect(ms == expected)
        #expect(spool.stats.recordCount == 4)
    }

    @Test func retryAfterAsAnHTTPDateIsTheTimeUntilThen() throws {
        let then = Timestamp(millisecondsSince1970: SystemClock().now().millisecondsSince1970 + 30_000)
        #expect(Timestamp(httpDate: then.httpDate)?.millisecondsSince1970 == then.millisecondsSince1970 / 1000 * 1000)
        #expect(Timestamp(httpDate: "Sun, 06 Nov 1994 08:49:37 GMT")?.millisecondsSince1970 == 784_111_777_000)
        let server = try ScriptedHTTPServer([R.response("429 Too Many Requests", headers: ["Retry-After: \(then.httpDate)"], text: "{}")])
        defer { server.stop() }
        let (u, _, _) = uplink(server)
        guard case .wait(let ms, _, _) = u.step() else { Issue.record("expected a wait"); return }
        #expect((27_000...30_000).contains(ms))
    }

    /// Before: a 300 KB gzip body that inflates to 300 MB was read whole (the agent grew to 1.6 GB).
    @Test func aCompressionBombIsRefusedAtTheLimit() throws {
        let bomb = shellOutput("head -c 300000000 /dev/zero | gzip -c")
        #expect(bomb.count < 400_000)
        let server = try ScriptedHTTPServer([R.response("200 OK", headers: ["Content-Encoding: gzip", "Content-Type: application/json"], body: bomb)])
        defer { server.stop() }
        let (u, spool, _) = uplink(server)
        guard case .wait(_, let reason, let kind) = u.step() else { Issue.record("expected a wait"); return }
        #expect(kind == .transient)
        #expect(reason.contains("larger than the 16 MiB"))
        #expect(spool.stats.recordCount == 4)
    }

    @Test func headerLinesEndingInCRLFAreParsed() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nX-Empty:\r\nContent-Type:  text/plain \r\n\r\n"
        let h = parseHeaderLines(raw)
        #expect(h.map(\.0) == ["retry-after", "x-empty", "content-type"])
        #expect(h.map(\.1) == ["3", "", "text/plain"])
    }

    /// Found by the fuzzer (scripts/fuzz http): a bare CR inside a header line stayed in its value.
    @Test func aBareCRInAHeaderLineBecomesASpace() {
        let h = parseHeaderLines("HTTP/1.1 429 Too Many\r\nRetry-After: 5\rX-Injected: 1\r\n\r\n")
        #expect(h.map(\.0) == ["retry-after"])
        #expect(h.map(\.1) == ["5 X-Injected: 1"])
        #expect(!h.contains { ($0.0 + $0.1).utf8.contains(13) })
    }
}
