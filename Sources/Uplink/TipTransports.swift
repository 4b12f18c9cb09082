import EdgeCore
import MQTT
import TagoKit
import TagoTiP

/// The MQTT binding (TagoTipServers.md §3): login with the Authorization Hash split in two
/// (username its first 8 hex characters, password the last 8; the token never crosses the wire),
/// publish `[!N|]BODY` to `$tip/{serial}/push` with QoS 1, answers and commands on
/// `$tip/{serial}/ack`, subscribed at connect.
public final class TipMQTTTransport: TipTransport {
    private var options: MQTTOptions
    private let serial: String
    private var connection: MQTTConnection?
    private var answers: [TipAck] = []
    /// Answers that were not TagoTiP (the last few), for the status.
    public private(set) var unreadable: [String] = []

    /// `options` says where and how (TLS); its username and password are replaced by the hash.
    public init(options: MQTTOptions, authorizationToken token: String, serial: String) {
        var o = options
        let hash = Tip.authorizationHash(token: token)
        o.username = String(hash.prefix(8))
        o.password = String(hash.suffix(8))
        self.options = o
        self.serial = serial
    }

    public var address: String { "TagoTiP over MQTT\(options.tls == nil ? "" : " (TLS)") \(options.host):\(options.port)" }
    public var carriesCounter: Bool { true }
    public var isOpen: Bool { connection?.isConnected ?? false }

    public func open() throws(TipTransportError) {
        connection = nil
        do {
            let c = try MQTTConnection(options: options)
            let ackTopic = "$tip/\(serial)/ack"
            c.onMessage = { [unowned self] topic, payload in
                guard topic == ackTopic else { return }
                do {
                    answers.append(try Tip.parseAck(payload, raw: false))
                } catch {
                    unreadable = Array((unreadable + ["\(error): \(String(decoding: payload.prefix(80), as: UTF8.self))"]).suffix(4))
                }
            }
            try c.connect()
            try c.subscribe(ackTopic)
            connection = c
        } catch {
            if error.kind == .refused {
                throw TipTransportError(.refused, "\(address) refused the login (the Authorization Hash of the token)")
            }
            throw TipTransportError(.failed, "\(address): \(error)")
        }
    }

    public func push(counter: UInt32, body: [UInt8]) throws(TipTransportError) {
        guard let c = connection else { throw TipTransportError(.failed, "\(address): not connected") }
        do {
            _ = try c.publish(topic: "$tip/\(serial)/push", payload: Array("!\(counter)|".utf8) + body)
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
    }

    public func receive(waitMilliseconds: Int32) throws(TipTransportError) -> [TipAck] {
        guard let c = connection else { throw TipTransportError(.failed, "\(address): not connected") }
        do {
            try c.loop(timeoutMilliseconds: answers.isEmpty ? waitMilliseconds : 0)
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
        defer { answers.removeAll() }
        return answers
    }

    public func close() {
        connection?.disconnect()
        connection = nil
    }
}

/// The HTTP binding (TagoTipServers.md §2): `POST {base}/v1/tip/{serial}` with
/// `Authorization: TagoTiP <hash>` and the body; the status is the answer (200 `OK` with the
/// count, 400 `invalid_payload`, 401 `invalid_token`, 404 `device_not_found`, 413
/// `payload_too_large`, 429 `rate_limited`, 5xx `server_error`), `X-TagoTiP-CMD` a command.
/// Each answer belongs to its request, so no counter travels.
public final class TipHTTPTransport: TipTransport {
    private let base: String
    private let serial: String
    private let authorization: String
    private let http: HTTPClient
    private var answers: [TipAck] = []

    public init(baseURL: String, authorizationToken token: String, serial: String, http: HTTPClient) {
        var b = baseURL
        while b.hasSuffix("/") { b.removeLast() }
        self.base = b
        self.serial = serial
        self.authorization = "TagoTiP " + Tip.authorizationHash(token: token)
        self.http = http
    }

    public var address: String { "TagoTiP over HTTP \(base)" }
    public var carriesCounter: Bool { false }
    public var isOpen: Bool { true }
    public func open() throws(TipTransportError) {}
    public func close() {}

    public func push(counter: UInt32, body: [UInt8]) throws(TipTransportError) {
        let request = HTTPRequest(method: "POST", url: "\(base)/v1/tip/\(serial)",
                                  headers: [("Authorization", authorization), ("Content-Type", "text/plain")], body: body)
        let response: HTTPResponse
        do {
            response = try http.send(request)
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
        var trimmed = response.body.prefix(200)
        while let last = trimmed.last, last == 0x0A || last == 0x0D || last == 0x20 { trimmed.removeLast() }
        let text = String(decoding: trimmed, as: UTF8.self)
        if let command = response.header("X-TagoTiP-CMD"), !command.isEmpty {
            answers.append(TipAck(status: .cmd, detail: command))
        }
        switch response.status {
        case 200:
            let ack = TipAck(status: .ok, detail: text)
            guard ack.acceptedCount != nil else {
                throw TipTransportError(.misdirected, "\(address) answered 200 with '\(text.prefix(60))', not a TagoTiP count")
            }
            answers.append(ack)
        case 400 where text.hasPrefix("payload_too_large"), 413:
            answers.append(TipAck(status: .err, detail: TipErrorCode.payloadTooLarge.rawValue))
        case 400:
            answers.append(TipAck(status: .err, detail: TipErrorCode.invalidPayload.rawValue))
        case 401:
            answers.append(TipAck(status: .err, detail: TipErrorCode.invalidToken.rawValue))
        case 404 where text == "device_not_found":
            answers.append(TipAck(status: .err, detail: TipErrorCode.deviceNotFound.rawValue))
        case 429:
            answers.append(TipAck(status: .err, detail: TipErrorCode.rateLimited.rawValue))
        case 500...599:
            answers.append(TipAck(status: .err, detail: TipErrorCode.serverError.rawValue))
        default:
            // A 404 without TagoTiP's code, a redirect, a captive portal: not a TagoTiP server.
            throw TipTransportError(.misdirected, "\(address) answered HTTP \(response.status), not as TagoTiP does")
        }
    }

    public func receive(waitMilliseconds: Int32) throws(TipTransportError) -> [TipAck] {
        defer { answers.removeAll() }
        return answers
    }
}
