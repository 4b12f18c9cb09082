import Testing
import EdgeCore
import Emulator
@testable import TagoKit

@Suite(.serialized) struct TagoDeviceTests {
    @Test func insertFindEditRemove() throws {
        let tago = try LocalTago()
        let d = tago.device
        #expect(try d.info()["name"]?.stringValue == "bench-1")
        let t0 = Timestamp(millisecondsSince1970: 1_780_000_000_000)
        let readings = (0..<20).map { i in Reading(variable: "Temp", value: .number(Double(i)), unit: "°C", time: Timestamp(millisecondsSince1970: t0.millisecondsSince1970 + Int64(i) * 1000)) }
        #expect(try d.insert(readings) == "20 Data Added")
        try d.insert([.object([("variable", .string("door")), ("value", .bool(true)), ("group", .string("g1")),
                               ("location", .object([("lat", .number(-23.5)), ("lng", .number(-46.6))])),
                               ("metadata", .object([("k", .string("v"))]))])])

        // Variables are stored lowercased; qty defaults to 15, newest first.
        let page = try #require(try d.find(DataQuery(variables: ["temp"])).arrayValue)
        #expect(page.count == 15)
        #expect(page.first?["value"]?.numberValue == 19)
        var q = DataQuery(variables: ["temp"], qty: 5)
        q.ordination = "ascending"
        q.skip = 2
        #expect(try d.find(q).arrayValue?.compactMap { $0["value"]?.numberValue } == [2, 3, 4, 5, 6])
        q = DataQuery(variables: ["temp"], qty: 100)
        q.startDate = Timestamp(millisecondsSince1970: t0.millisecondsSince1970 + 10_000).iso8601
        q.endDate = Timestamp(millisecondsSince1970: t0.millisecondsSince1970 + 12_000).iso8601
        #expect(try d.find(q).arrayValue?.count == 3)
        #expect(try d.find(DataQuery(variables: ["temp"], query: "count")).numberValue == 20)
        #expect(try d.find(DataQuery(variables: ["temp"], query: "avg")).numberValue == 9.5)
        #expect(try d.find(DataQuery(variables: ["temp"], query: "max")).numberValue == 19)
        let door = try #require(try d.find(DataQuery(variables: ["door"], query: "last_item")).arrayValue?.first)
        #expect(door["location"]?["coordinates"]?.arrayValue?.first?.numberValue == -46.6)
        #expect(door["metadata"]?["k"]?.stringValue == "v")
        #expect(door["group"]?.stringValue == "g1")

        let id = try #require(door["id"]?.stringValue)
        #expect(try d.edit([.object([("id", .string(id)), ("value", .bool(false))])]) == "1 item(s) updated")
        #expect(try d.find(DataQuery(variables: ["door"], query: "last_item")).arrayValue?.first?["value"]?.boolValue == false)

        var byID = DataQuery()
        byID.ids = [id]
        #expect(try d.remove(byID) == "1 Data Removed")
        #expect(try d.remove(DataQuery(variables: ["temp"], qty: 5)) == "5 Data Removed")
        #expect(try d.find(DataQuery(variables: ["temp"], query: "count")).numberValue == 15)
    }

    @Test func configurationParams() throws {
        let tago = try LocalTago()
        let id = try #require(tago.emulator.deviceID(forToken: LocalTago.deviceToken))
        try tago.account.setParams(deviceID: id, [ConfigParam(key: "interval", value: "30s"), ConfigParam(key: "env.enabled", value: "false")])
        let unread = try tago.device.params(onlyUnread: true)
        #expect(unread.map(\.key) == ["interval", "env.enabled"])
        try tago.device.markParamRead(id: try #require(unread[0].id))
        #expect(try tago.device.params(onlyUnread: true).map(\.key) == ["env.enabled"])
        #expect(try tago.device.params(onlyUnread: false).count == 2)
    }

    @Test func clientSideValidationCatchesABadReadingEarly() throws {
        let tago = try LocalTago()
        #expect { try tago.device.insert([Reading(variable: "bad name", value: .number(1), time: Timestamp(millisecondsSince1970: 0))]) } throws: {
            ($0 as? TagoError)?.kind == .validation && "\($0)".contains("contains ' '")
        }
        #expect(try tago.stats()["route POST /data"] == nil)  // nothing was sent
        let big = (0..<3000).map { i in Reading(variable: "v", value: .string(String(repeating: "x", count: 80)), time: Timestamp(millisecondsSince1970: Int64(i))) }
        #expect { try tago.device.insert(big) } throws: { ($0 as? TagoError)?.kind == .payloadTooLarge }
    }
}

@Suite(.serialized) struct TagoAccountTests {
    @Test func devicesTokensParams() throws {
        let tago = try LocalTago()
        let a = tago.account
        var gw = NewDevice(name: "gw-001")
        gw.tags = [("serial", "SN001"), ("site", "north")]
        gw.params = [ConfigParam(key: "interval", value: "60s")]
        let (id, token) = try a.createDevice(gw)
        var other = NewDevice(name: "gw-002")
        other.tags = [("serial", "SN002")]
        _ = try a.createDevice(other)

        // The new device's token works on the Device API.
        #expect(try TagoDevice(token: token, endpoint: tago.endpoint, http: tago.http).info()["id"]?.stringValue == id)
        #expect(try a.devices(tags: [("serial", "SN001")]).compactMap { $0["id"]?.stringValue } == [id])
        #expect(try a.devices(name: "gw-*").count == 2)
        #expect(try a.devices(page: 2, amount: 2).count == 1)  // bench-1, gw-001 | gw-002
        #expect(try a.device(id: id)["tags"]?.arrayValue?.count == 2)
        try a.editDevice(id: id, .object([("name", .string("gw-001-renamed"))]))
        #expect(try a.device(id: id)["name"]?.stringValue == "gw-001-renamed")

        let second = try a.createToken(deviceID: id, name: "backup", permission: "write")
        #expect(try a.tokens(deviceID: id).count == 2)
        try a.deleteToken(second)
        #expect(try a.tokens(deviceID: id).count == 1)

        let params = try a.params(deviceID: id)
        #expect(params.map(\.key) == ["interval"])
        try a.setParams(deviceID: id, [ConfigParam(id: params[0].id, key: "interval", value: "10s")])
        #expect(try a.params(deviceID: id).first?.value == "10s")
        try a.deleteParam(deviceID: id, paramID: try #require(params[0].id))
        #expect(try a.params(deviceID: id).isEmpty)

        try a.deleteDevice(id: id)
        #expect { try a.device(id: id) } throws: { ($0 as? TagoError)?.kind == .notFound }
        #expect { try TagoDevice(token: token, endpoint: tago.endpoint, http: tago.http).info() } throws: { ($0 as? TagoError)?.kind == .unauthorized }
    }
}

@Suite(.serialized) struct TagoErrorTests {
    @Test func typedErrorsWithoutTokens() throws {
        let tago = try LocalTago(rateLimits: ["POST /data": 2], timeoutMilliseconds: 700)
        let secret = "very-secret-device-token-42"
        let wrong = TagoDevice(token: secret, endpoint: tago.endpoint, http: tago.http)
        do {
            _ = try wrong.info()
            Issue.record("a wrong token was accepted")
        } catch {
            #expect(error.kind == .unauthorized)
            #expect(!"\(error)".contains(secret))
        }

        let one = [Reading(variable: "x", value: .number(1), time: Timestamp(millisecondsSince1970: 0))]
        try tago.device.insert(one)
        try tago.device.insert(one)
        do {
            try tago.device.insert(one)
            Issue.record("the rate limit did not apply")
        } catch {
            #expect(error.kind == .rateLimited)
            #expect((error.retryAfterSeconds ?? 0) > 0 && (error.retryAfterSeconds ?? 99) <= 60)
        }

        try tago.faults("error-rate=1")
        #expect { try tago.device.info() } throws: { ($0 as? TagoError)?.kind == .server && ($0 as? TagoError)?.status == 503 }
        try tago.faults("blackhole=5s")
        #expect { try tago.device.info() } throws: { ($0 as? TagoError)?.kind == .transport(.timeout) }
        try tago.faults("reset-rate=1")
        #expect { try tago.device.info() } throws: { ($0 as? TagoError)?.isRetryable == true }
        try tago.faults("")

        let nowhere = TagoDevice(token: secret, endpoint: TagoEndpoint(api: "http://127.0.0.1:1"), http: tago.http)
        #expect { try nowhere.info() } throws: { ($0 as? TagoError)?.kind == .transport(.refused) && !"\($0)".contains(secret) }
    }

    @Test func envelopeVariants() throws {
        func decode(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Result<JSONValue, TagoError> {
            do throws(TagoError) {
                return .success(try Envelope.decode(HTTPResponse(status: status, headers: headers, body: Array(body.utf8)), operation: "POST /data"))
            } catch {
                return .failure(error)
            }
        }
        #expect(try decode(200, #"{"status":true,"result":"2 Data Added"}"#).get() == .string("2 Data Added"))
        #expect(try decode(201, #"{"status":true,"result":{"device_id":"x"}}"#).get()["device_id"] == .string("x"))
        for body in [#"{"status":false,"message":"bad value"}"#, #"{"status":false,"result":{"message":"bad value"}}"#, #"{"status":false,"result":"bad value"}"#] {
            guard case .failure(let e) = decode(400, body) else { Issue.record("accepted \(body)"); continue }
            #expect(e.kind == .validation)
            #expect(e.message == "bad value")
        }
        guard case .failure(let ok200) = decode(200, #"{"status":false,"message":"nope"}"#) else { Issue.record("2xx with status false accepted"); return }
        #expect(ok200.message == "nope")
        guard case .failure(let limited) = decode(429, #"{"status":false,"message":"Too many requests (Retry-After: 8)"}"#) else { Issue.record(""); return }
        #expect(limited.retryAfterSeconds == 8)
        guard case .failure(let header) = decode(429, #"{"status":false,"message":"slow down"}"#, headers: [("retry-after", "3")]) else { Issue.record(""); return }
        #expect(header.retryAfterSeconds == 3)
        guard case .failure(let html) = decode(502, "<html>bad gateway</html>") else { Issue.record(""); return }
        #expect(html.kind == .server)
        guard case .failure(let notJSON) = decode(200, "<html>") else { Issue.record(""); return }
        #expect(notJSON.kind == .invalidResponse)
    }
}

@Suite(.serialized) struct SendOnceTests {
    /// libcurl resends a request once when a reused connection dies before any answer. For a
    /// device creation whose answer was lost, that made a second device; `once` requests get a
    /// connection of their own, so the loss is reported and nothing is made twice.
    @Test func aCreationWhoseAnswerIsLostIsNotSentAgain() throws {
        let tago = try LocalTago()
        _ = try tago.account.devices()  // a kept-alive connection to reuse
        try tago.faults("drop-response-rate=1")
        #expect(throws: TagoError.self) { try tago.account.createDevice(NewDevice(name: "once")) }
        try tago.faults("")
        #expect(try tago.account.devices(name: "once").count == 1)

        // The same request without `once` is sent twice by libcurl: the reason for the flag.
        _ = try tago.account.devices()
        try tago.faults("drop-response-rate=1")
        let request = HTTPRequest(method: "POST", url: "http://127.0.0.1:\(tago.port)/device",
                                  headers: [("Profile-Token", LocalTago.profileToken), ("Content-Type", "application/json")],
                                  body: Array(#"{"name":"twice","type":"mutable"}"#.utf8))
        #expect(throws: TransportError.self) { try tago.http.send(request) }
        try tago.faults("")
        #expect(try tago.account.devices(name: "twice").count == 2)
    }
}

/// TagoIO's rules for what it stores.
@Suite struct TagoNamingTests {
    @Test func tagoVariableNames() {
        #expect(tagoVariableNameProblem("env_temperature") == nil)
        #expect(tagoVariableNameProblem("env-temperature") != nil)
        #expect(tagoVariableNameProblem("a b") != nil)
        #expect(tagoVariableNameProblem("x.y") != nil)
        #expect(tagoVariableNameProblem("") != nil)
        #expect(tagoVariableNameProblem(String(repeating: "a", count: 101)) != nil)
        #expect(tagoVariableNameProblem(String(repeating: "a", count: 100)) == nil)
    }
}
