import Testing
import EdgeCore
import Emulator
import TagoKit
import TestSupport

/// The emulator is a tool users run: malformed requests get a clear answer and never crash it.
@Suite struct EmulatorHostileRequestTests {
    func request(_ head: String, body: String = "") -> [UInt8] { Array((head.replacingOccurrences("\n", with: "\r\n") + "\r\n\r\n" + body).utf8) }

    /// Before: a negative Content-Length trapped the emulator (`buffer[0..<-5]`).
    @Test(arguments: ["-5", "+5", "5 5", "99999999999999999999", "0x10", ""])
    func aBadContentLengthIsRefusedAndTheEmulatorGoesOn(length: String) throws {
        let tago = try LocalTago()
        let answer = rawExchange(port: tago.port, request("POST /data HTTP/1.1\nHost: x\nDevice-Token: \(LocalTago.deviceToken)\nContent-Length: \(length)", body: "[]"))
        #expect(answer.hasPrefix("HTTP/1.1 400") || answer.hasPrefix("HTTP/1.1 413"))
        #expect(try tago.device.info()["name"] != nil)
    }

    /// Found by the fuzzer (scripts/fuzz request): a bare CR let one header line carry another.
    @Test func aBareCRInTheHeadIsRefused() throws {
        let tago = try LocalTago()
        let answer = rawExchange(port: tago.port, request("POST /data HTTP/1.1\nDevice-Token: \(LocalTago.deviceToken)\rContent-Length: 2", body: "[]"))
        #expect(answer.hasPrefix("HTTP/1.1 400"))
        #expect(answer.contains("a bare CR"))
        #expect(try tago.device.info()["name"] != nil)
    }

    @Test func twoDifferentContentLengthsAreRefused() throws {
        let tago = try LocalTago()
        let answer = rawExchange(port: tago.port, request("POST /data HTTP/1.1\nContent-Length: 2\nContent-Length: 3", body: "[]"))
        #expect(answer.hasPrefix("HTTP/1.1 400"))
    }

    /// Before: `skip=-5` trapped in dropFirst, and a huge `page` overflowed its multiplication.
    @Test func absurdPagingIsClamped() throws {
        let tago = try LocalTago()
        try tago.device.insert([Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1_780_000_000_000))])
        let token = LocalTago.deviceToken
        let data = rawExchange(port: tago.port, request("GET /data?variable=t&skip=-5&qty=-1 HTTP/1.1\nDevice-Token: \(token)\nConnection: close"))
        #expect(data.hasPrefix("HTTP/1.1 200"))
        let pages = rawExchange(port: tago.port, request("GET /device?page=9223372036854775807&amount=10000 HTTP/1.1\nToken: \(LocalTago.profileToken)\nConnection: close"))
        #expect(pages.hasPrefix("HTTP/1.1 200"))
        #expect(try tago.device.info()["name"] != nil)
    }
}
