import EdgeCore
import Emulator
import TagoKit

/// An emulator on a free loopback port, with one pre-created device and a profile token.
final class LocalTago {
    static let deviceToken = "test-device-token-0001"
    static let profileToken = "p-test-profile-token"
    /// TagoTiP: the profile's Authorization Token (the spec's example) and the device's serial.
    static let tipToken = "ate2bd319014b24e0a8aca9f00aea4c0d0"
    static let serial = "gw-0042"
    /// TagoTiP/S: the device's Encryption Key (the spec's test vector key).
    static let tipKey: [UInt8] = [0xfe, 0x09, 0xda, 0x81, 0xbc, 0x44, 0x00, 0xee, 0x12, 0xab, 0x56, 0xcd, 0x78, 0xef, 0x90, 0x12]
    let emulator: Emulator
    let port: UInt16
    let http: CurlHTTPClient

    init(rateLimits: [String: Int] = [:], timeoutMilliseconds: Int = 5_000) throws {
        var options = Emulator.Options()
        options.deviceTokens = [Self.deviceToken]
        options.profileTokens = [Self.profileToken]
        options.rateLimits = rateLimits
        options.tipAuthorizationTokens = [Self.tipToken]
        options.tipDevices = [Self.serial: Self.deviceToken]
        options.tipKeys = [Self.serial: Self.tipKey]
        emulator = try Emulator(options: options)
        port = try emulator.start()
        var http = CurlHTTPClient.Options()
        http.timeoutMilliseconds = timeoutMilliseconds
        http.connectTimeoutMilliseconds = 2_000
        self.http = CurlHTTPClient(options: http)
    }

    deinit { emulator.stop() }

    var endpoint: TagoEndpoint { TagoEndpoint(api: "http://127.0.0.1:\(port)") }
    var device: TagoDevice { TagoDevice(token: Self.deviceToken, endpoint: endpoint, http: http) }
    var account: TagoAccount { TagoAccount(token: Self.profileToken, endpoint: endpoint, http: http) }

    func faults(_ spec: String) throws {
        emulator.setFaults(try EmulatorFaults(spec: spec, now: SystemClock().now().millisecondsSince1970))
    }

    func stats() throws -> JSONValue {
        let r = try http.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/_emulator/stats"))
        return try JSONValue.parse(String(decoding: r.body, as: UTF8.self))["result"] ?? .null
    }

    /// Every value of `variable` stored, oldest first.
    func values(_ variable: String) throws -> [Double] {
        var q = DataQuery(variables: [variable], qty: 100_000)
        q.ordination = "ascending"
        return (try device.find(q).arrayValue ?? []).compactMap { $0["value"]?.numberValue }
    }
}
