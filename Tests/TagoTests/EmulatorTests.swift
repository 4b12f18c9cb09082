import Testing
import EdgeCore
import Emulator
import TagoKit
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct EmulatorTests {
    func post(_ tago: LocalTago, _ body: [UInt8], headers: [(String, String)]) throws -> HTTPResponse {
        try tago.http.send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(tago.port)/data", headers: headers, body: body))
    }

    @Test func enforcesTagoLimitsAndAcceptsEveryTokenHeader() throws {
        let tago = try LocalTago()
        let one = Array(#"{"variable":"x","value":1}"#.utf8)
        for header in ["Device-Token", "Authorization", "token"] {
            #expect(try post(tago, one, headers: [(header, LocalTago.deviceToken)]).status == 200, "\(header)")
        }
        #expect(try post(tago, one, headers: [("Device-Token", "wrong")]).status == 401)
        // 200 kB per request.
        let big = Array(("[" + Array(repeating: #"{"variable":"x","value":"\#(String(repeating: "y", count: 1000))"}"#, count: 210).joined(separator: ",") + "]").utf8)
        let tooLarge = try post(tago, big, headers: [("Device-Token", LocalTago.deviceToken)])
        #expect(tooLarge.status == 413)
        #expect(String(decoding: tooLarge.body, as: UTF8.self).contains(#""status":false"#))
        // Validation names the item.
        let bad = try post(tago, Array(#"[{"variable":"ok","value":1},{"variable":"x","unit":"\#(String(repeating: "u", count: 26))"}]"#.utf8), headers: [("Device-Token", LocalTago.deviceToken)])
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self).contains("data[1]"))
        #expect(try tago.device.find(DataQuery(variables: ["ok"], query: "count")).numberValue == 0)  // all or nothing
    }

    @Test func mutableDeviceRecordLimit() throws {
        var options = Emulator.Options()
        options.deviceTokens = ["t"]
        options.mutableRecordLimit = 10
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let device = TagoDevice(token: "t", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        let readings = (0..<8).map { Reading(variable: "v", value: .number(Double($0)), time: Timestamp(millisecondsSince1970: Int64($0))) }
        try device.insert(readings)
        #expect { try device.insert(readings) } throws: { "\($0)".contains("limit of 10 records") }
    }

    @Test func dataDirectorySurvivesARestart() throws {
        var template = Array("/tmp/tagoedge-emu-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let dir = String(cString: template)
        defer {
            unlink(dir + "/state.json")
            rmdir(dir)
        }
        var options = Emulator.Options()
        options.deviceTokens = ["persist-token"]
        options.profileTokens = ["p"]
        options.dataDirectory = dir
        var createdToken = ""
        do {
            let emulator = try Emulator(options: options)
            let port = try emulator.start()
            let endpoint = TagoEndpoint(api: "http://127.0.0.1:\(port)")
            try TagoDevice(token: "persist-token", endpoint: endpoint, http: CurlHTTPClient()).insert([Reading(variable: "kept", value: .number(7), time: Timestamp(millisecondsSince1970: 5))])
            createdToken = try TagoAccount(token: "p", endpoint: endpoint, http: CurlHTTPClient()).createDevice(NewDevice(name: "later")).token
            emulator.stop()
        }
        options.deviceTokens = []
        let again = try Emulator(options: options)
        let port = try again.start()
        defer { again.stop() }
        let endpoint = TagoEndpoint(api: "http://127.0.0.1:\(port)")
        let kept = try TagoDevice(token: "persist-token", endpoint: endpoint, http: CurlHTTPClient()).find(DataQuery(variables: ["kept"]))
        #expect(kept.arrayValue?.first?["value"]?.numberValue == 7)
        #expect(try TagoDevice(token: createdToken, endpoint: endpoint, http: CurlHTTPClient()).info()["name"]?.stringValue == "later")
    }

    @Test func faultSpecErrors() {
        #expect(throws: FaultSpecProblem.self) { try EmulatorFaults(spec: "error-rate=2", now: 0) }
        #expect(throws: FaultSpecProblem.self) { try EmulatorFaults(spec: "meteor=1", now: 0) }
        let f = try? EmulatorFaults(spec: "latency=20ms, throttle=2s", now: 1000)
        #expect(f?.latencyMilliseconds == 20)
        #expect(f?.throttleUntil == 3000)
        // A latency past 71 minutes overflowed the wait's microseconds and crashed the emulator at
        // its first request; past ten minutes it is refused, up to them it is taken.
        #expect(throws: FaultSpecProblem.self) { try EmulatorFaults(spec: "latency=2h", now: 0) }
        #expect(throws: FaultSpecProblem.self) { try EmulatorFaults(spec: "latency=366d", now: 0) }
        #expect((try? EmulatorFaults(spec: "latency=10m", now: 0))?.latencyMilliseconds == 600_000)
    }
}
