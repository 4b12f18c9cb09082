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
    private let key: [UInt8]?
    private let authHash: [UInt8]
    private var answers: [TipAck] = []

    /// With `key`, TagoTiP/S: the sealed envelope to `POST {base}/v1/tips`, answered sealed.
    public init(baseURL: String, authorizationToken token: String, serial: String, http: HTTPClient, key: [UInt8]? = nil) {
        var b = baseURL
        while b.hasSuffix("/") { b.removeLast() }
        self.base = b
        self.serial = serial
        self.authorization = "TagoTiP " + Tip.authorizationHash(token: token)
        self.http = http
        self.key = key
        self.authHash = TipSecure.authHash(token: token)
    }

    public var address: String { "TagoTiP\(key == nil ? "" : "/S") over HTTP \(base)" }
    public var carriesCounter: Bool { false }
    public var isOpen: Bool { true }
    public func open() throws(TipTransportError) {}
    public func close() {}

    public func push(counter: UInt32, body: [UInt8]) throws(TipTransportError) {
        if let key { return try pushSealed(counter: counter, body: body, key: key) }
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

    private func pushSealed(counter: UInt32, body: [UInt8], key: [UInt8]) throws(TipTransportError) {
        let envelope: [UInt8]
        do {
            envelope = try TipSecure.seal(Array(serial.utf8) + [Tip.pipe] + body, method: .push, counter: counter, authHash: authHash,
                                          deviceHash: TipSecure.deviceHash(serial: serial), key: key)
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
        let response: HTTPResponse
        do {
            response = try http.send(HTTPRequest(method: "POST", url: "\(base)/v1/tips", headers: [("Content-Type", "application/octet-stream")], body: envelope))
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
        do {
            if response.body.first == 0x41 {
                answers.append(try Tip.parseAck(response.body, raw: true))  // a plaintext fallback: auth_failed, unsupported_…
            } else if response.status == 200 {
                let (header, inner) = try TipSecure.open(response.body, key: key)
                guard header.method == .ack else { throw TipError(.grammar, "an envelope that is not an ACK") }
                answers.append(try Tip.parseAck(inner, raw: false))
            } else {
                throw TipError(.grammar, "HTTP \(response.status)")
            }
        } catch {
            throw TipTransportError(.misdirected, "\(address) answered in a way TagoTiP/S does not (\(error))")
        }
    }
}

/// The raw binding (TagoTipServers.md §4) over UDP (a datagram a frame) or TCP (frames ended by
/// LF; with TLS when asked): `PUSH|!N|hash|serial|BODY`, answered `ACK|!N|STATUS|DETAIL`. With a
/// key, TagoTiP/S instead: the headless `serial|BODY` sealed with AES-128-CCM, the counter in the
/// envelope (length-prefixed on TCP), answers sealed the same way or a plaintext `ACK|ERR|…`.
public final class TipRawTransport: TipTransport {
    public enum Kind: Sendable { case udp, tcp(tls: Bool) }
    private let kind: Kind
    private let host: String
    private let port: Int
    private let serial: String
    private let hash: String
    private let key: [UInt8]?
    private let authHash: [UInt8]
    private let deviceHash: [UInt8]
    private let connectTimeoutMilliseconds: Int
    private let caFile: String?
    private let insecure: Bool
    private var udp = UDPSocket()
    private var stream = CurlStream()
    private var buffer: [UInt8] = []
    /// Answers that could not be read (the last few), for the status.
    public private(set) var unreadable: [String] = []

    public init(_ kind: Kind, host: String, port: Int, authorizationToken token: String, serial: String, key: [UInt8]? = nil,
                connectTimeoutMilliseconds: Int = 10_000, caFile: String? = nil, insecure: Bool = false) {
        self.kind = kind
        self.host = host
        self.port = port
        self.serial = serial
        self.hash = Tip.authorizationHash(token: token)
        self.key = key
        self.authHash = TipSecure.authHash(token: token)
        self.deviceHash = TipSecure.deviceHash(serial: serial)
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.caFile = caFile
        self.insecure = insecure
    }

    public var address: String {
        let scheme = switch kind {
        case .udp: "UDP"
        case .tcp(let tls): tls ? "TCP (TLS)" : "TCP"
        }
        return "TagoTiP\(key == nil ? "" : "/S") over \(scheme) \(host):\(port)"
    }
    /// Plaintext answers echo `!N`; TagoTiP/S answers do not (one request at a time, §9).
    public var carriesCounter: Bool { key == nil }
    public var isOpen: Bool {
        switch kind {
        case .udp: udp.isOpen
        case .tcp: stream.isOpen
        }
    }

    public func open() throws(TipTransportError) {
        buffer.removeAll()
        do {
            switch kind {
            case .udp: try udp.open(host: host, port: port)
            case .tcp(let tls): try stream.open(host: host, port: port, tls: tls, connectTimeoutMilliseconds: connectTimeoutMilliseconds, caFile: caFile, insecure: insecure)
            }
        } catch {
            throw TipTransportError(.failed, "\(address): \(error)")
        }
    }

    public func push(counter: UInt32, body: [UInt8]) throws(TipTransportError) {
        var message: [UInt8]
        if let key {
            do {
                message = try TipSecure.seal(Array(serial.utf8) + [Tip.pipe] + body, method: .push, counter: counter, authHash: authHash, deviceHash: deviceHash, key: key)
            } catch {
                throw TipTransportError(.failed, "\(address): \(error)")
            }
            if case .tcp = kind { message = [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message }
        } else {
            message = Array("PUSH|!\(counter)|\(hash)|\(serial)|".utf8) + body
            if case .tcp = kind { message.append(0x0A) }
        }
        do {
            switch kind {
            case .udp: try udp.send(message)
            case .tcp: try stream.send(message, timeoutMilliseconds: connectTimeoutMilliseconds)
            }
        } catch {
            close()
            throw TipTransportError(.failed, "\(address): \(error)")
        }
    }

    public func receive(waitMilliseconds: Int32) throws(TipTransportError) -> [TipAck] {
        var messages: [[UInt8]] = []
        do {
            switch kind {
            case .udp:
                var wait = Int(waitMilliseconds)
                while let datagram = try udp.receive(timeoutMilliseconds: wait) {
                    messages.append(datagram)
                    wait = 0
                }
            case .tcp:
                var wait = Int(waitMilliseconds)
                while true {
                    let got = try stream.receive(timeoutMilliseconds: wait)
                    if got.isEmpty { break }
                    buffer += got
                    wait = 0
                    if buffer.count > 4 * TipSecure.maxEnvelopeBytes { throw TransportError(kind: .tooLarge, message: "the server sent more than it should") }
                }
                messages = splitStream()
            }
        } catch {
            close()
            throw TipTransportError(.failed, "\(address): \(error)")
        }
        var answers: [TipAck] = []
        for m in messages {
            do {
                if let key, m.first != 0x41 {
                    let (header, inner) = try TipSecure.open(m, key: key)
                    guard header.method == .ack else { throw TipError(.grammar, "an envelope that is not an ACK") }
                    answers.append(try Tip.parseAck(inner, raw: false))
                } else {
                    answers.append(try Tip.parseAck(m, raw: true))
                }
            } catch {
                unreadable = Array((unreadable + ["\(error)"]).suffix(4))
            }
        }
        return answers
    }

    /// Whole messages out of the TCP buffer: LF-ended frames, or length-prefixed envelopes.
    private func splitStream() -> [[UInt8]] {
        var out: [[UInt8]] = []
        if key == nil {
            while let lf = buffer.firstIndex(of: 0x0A) {
                out.append(Array(buffer[..<lf]))
                buffer.removeSubrange(...lf)
            }
        } else {
            while buffer.count >= 2 {
                let length = Int(buffer[0]) << 8 | Int(buffer[1])
                guard buffer.count >= 2 + length else { break }
                out.append(Array(buffer[2..<(2 + length)]))
                buffer.removeSubrange(..<(2 + length))
            }
        }
        return out
    }

    public func close() {
        udp.close()
        stream.close()
        buffer.removeAll()
    }
}
