#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import MQTT
import TagoTiP

/// The emulator as a TagoTiP server (TagoTiP.md, TagoTipServers.md): it resolves the profile by
/// the Authorization Hash, the device by its serial (`serie_number`), refuses a counter that does
/// not increase, parses every body with the strict parser, stores the data points as TagoIO
/// would, and answers as the spec says. Commands queued for a serial go out with the next answer
/// (HTTP `X-TagoTiP-CMD`) or at once (MQTT `$tip/{serial}/ack`).
final class TipServerState: @unchecked Sendable {
    /// Authorization Hashes of the profile tokens the server knows.
    var hashes: Set<String> = []
    var lastCounter: [String: UInt32] = [:]
    var commands: [String: [String]] = [:]
    /// Every answer given, as `serial answer` (for tests and the stats).
    var answers: [String] = []
}

extension Emulator {
    /// Handles one PUSH: the answer without its counter (the binding adds it).
    func tipPush(hash: String, serial: String, counter: UInt32?, body: [UInt8]) -> TipAck {
        lock.withLock {
            let ack = tipPushLocked(hash: hash, serial: serial, counter: counter, body: body)
            tip.answers.append("\(serial) \(String(decoding: ack.encoded(raw: false), as: UTF8.self))")
            if tip.answers.count > 10_000 { tip.answers.removeFirst(5_000) }
            count("tagotip_\(ack.status == .ok ? "ok" : "err_" + (ack.detail ?? ""))")
            return ack
        }
    }

    private func tipPushLocked(hash: String, serial: String, counter: UInt32?, body: [UInt8]) -> TipAck {
        func err(_ code: TipErrorCode) -> TipAck { TipAck(status: .err, detail: code.rawValue) }
        guard tip.hashes.contains(hash) else { return err(.invalidToken) }
        guard Tip.isValidSerial(serial), let device = devices.values.first(where: { $0.serial == serial }) else { return err(.deviceNotFound) }
        let t = now()
        if t < faults.throttleUntil { return err(.rateLimited) }
        if faults.errorRate > 0, random() < faults.errorRate { return err(.serverError) }
        if body.count > Tip.maxFrameBytes { return err(.payloadTooLarge) }
        if let counter {
            if let last = tip.lastCounter[serial], counter <= last { return err(.invalidSeq) }
            tip.lastCounter[serial] = counter
        }
        let parsed: TipPushBody
        do {
            parsed = try Tip.parsePushBody(body)
        } catch {
            count("tagotip_refused_grammar")
            return err(error.kind == .tooLarge ? .payloadTooLarge : .invalidPayload)
        }
        guard case .structured(let structured) = parsed else {
            return TipAck(status: .ok, detail: "0")  // passthrough goes to a payload parser the emulator does not run
        }
        let objects = structured.resolved.map(\.dataObject)
        switch insert(objects, into: device) {
        case .success: return TipAck(status: .ok, detail: String(objects.count))
        case .failure: return err(.invalidPayload)  // atomic: one bad variable refuses the frame
        }
    }

    /// Queues a command for a serial (`POST /_emulator/tagotip/cmd?serial=…`, body the command).
    public func queueTipCommand(serial: String, _ command: String) {
        lock.withLock { tip.commands[serial, default: []].append(command) }
    }

    func takeTipCommands(serial: String) -> [String] {
        lock.withLock { tip.commands.removeValue(forKey: serial) ?? [] }
    }

    /// Answers given so far, `serial answer` each.
    public var tipAnswers: [String] { lock.withLock { tip.answers } }

    /// The HTTP binding: `POST /v1/tip/{serial}` and `HEAD /v1/tip/{serial}`.
    func tipHTTP(_ r: ServerRequest) -> ServerAction {
        let serial = String(r.path.dropFirst("/v1/tip/".count))
        var headers: [(String, String)] = [("Content-Type", "text/plain")]
        func answer(_ status: Int, _ text: String) -> ServerAction {
            if let command = takeTipCommands(serial: serial).first { headers.append(("X-TagoTiP-CMD", command)) }
            return .respond(status: status, headers: headers, body: Array(text.utf8))
        }
        let auth = r.header("authorization") ?? ""
        guard auth.hasPrefix("TagoTiP "), case let hash = String(auth.dropFirst(8)), lock.withLock({ tip.hashes.contains(hash) }) else {
            return answer(401, "invalid_token")
        }
        switch r.method {
        case "HEAD":
            let pending = lock.withLock { !(tip.commands[serial] ?? []).isEmpty }
            return answer(pending ? 200 : 204, "")
        case "POST":
            let ack = tipPush(hash: hash, serial: serial, counter: nil, body: r.body)
            switch ack.error {
            case nil: return answer(200, ack.detail ?? "0")
            case .invalidToken?: return answer(401, "invalid_token")
            case .deviceNotFound?: return answer(404, "device_not_found")
            case .rateLimited?: return answer(429, "rate_limited")
            case .payloadTooLarge?: return answer(413, "payload_too_large")
            case .serverError?: return answer(500, "server_error")
            default: return answer(400, ack.detail ?? "invalid_payload")
            }
        default:
            return .respond(status: 405, headers: headers, body: Array("POST (PUSH) or HEAD (PING)".utf8))
        }
    }

    /// The MQTT binding, through a broker: subscribes `$tip/+/push` and answers on
    /// `$tip/{serial}/ack`. The broker checks the login (a password file holding the hash split in
    /// two); every client it lets in belongs to the first profile token's context (§3.1).
    public func serveTagoTiPOverMQTT(host: String, port: Int, username: String? = nil, password: String? = nil) {
        let hash = lock.withLock { tip.hashes.sorted().first } ?? ""
        startThread { [weak self] in
            var connection: MQTTConnection?
            while let self, self.isRunning {
                if connection?.isConnected != true {
                    var options = MQTTOptions()
                    options.host = host
                    options.port = port
                    options.username = username
                    options.password = password
                    options.clientID = "tagoedge-emulator-tip-\(getpid())"
                    options.connectTimeoutMilliseconds = 2_000
                    let c = try? MQTTConnection(options: options)
                    c?.onMessage = { [weak self, weak c] topic, payload in
                        guard let self, let c else { return }
                        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
                        guard parts.count == 3, parts[0] == "$tip", parts[2] == "push" else { return }
                        let serial = String(parts[1])
                        var ack: TipAck
                        do {
                            let (counter, _) = try Tip.parseMQTTPush(payload)
                            let bodyStart = counter.map { "!\($0)|".utf8.count } ?? 0
                            ack = self.tipPush(hash: hash, serial: serial, counter: counter, body: Array(payload[bodyStart...]))
                            ack.counter = counter
                        } catch {
                            // Unparseable: the counter, if one can be read, is echoed.
                            let head = payload.prefix { $0 != UInt8(ascii: "|") }
                            var counter: UInt32?
                            if head.first == UInt8(ascii: "!") { counter = UInt32(String(decoding: head.dropFirst(), as: UTF8.self)) }
                            ack = self.tipPush(hash: hash, serial: serial, counter: counter, body: Array(">?".utf8))
                            ack.counter = counter
                        }
                        _ = try? c.publish(topic: "$tip/\(serial)/ack", payload: ack.encoded(raw: false))
                    }
                    do {
                        try c?.connect()
                        try c?.subscribe("$tip/+/push")
                        connection = c
                    } catch {
                        connection = nil
                        self.countMQTT("tagotip_mqtt_connect_failures")
                        usleep(200_000)
                        continue
                    }
                }
                // Commands queued for any serial go out now.
                let queued = self.lock.withLock { () -> [String: [String]] in
                    defer { self.tip.commands.removeAll() }
                    return self.tip.commands
                }
                for (serial, commands) in queued {
                    for command in commands {
                        _ = try? connection?.publish(topic: "$tip/\(serial)/ack", payload: TipAck(status: .cmd, detail: command).encoded(raw: false))
                    }
                }
                do { try connection?.loop(timeoutMilliseconds: 50) } catch { connection = nil }
            }
            connection?.disconnect()
        }
    }
}

extension TipVariable {
    /// The TagoIO data object this data point is stored as.
    var dataObject: JSONValue {
        var m: [(String, JSONValue)] = [("variable", .string(name))]
        switch value {
        case .number(let text): m.append(("value", .number(Double(text) ?? 0)))
        case .string(let s): m.append(("value", .string(s)))
        case .bool(let b): m.append(("value", .bool(b)))
        case .location(let lat, let lng, _):
            m.append(("location", .object([("lat", .number(Double(lat) ?? 0)), ("lng", .number(Double(lng) ?? 0))])))
        }
        if let unit { m.append(("unit", .string(unit))) }
        if let timestamp { m.append(("time", .string(Timestamp(millisecondsSince1970: Int64(clamping: timestamp)).iso8601))) }
        if let group { m.append(("group", .string(group))) }
        if !metadata.isEmpty { m.append(("metadata", .object(metadata.map { ($0.key, .string($0.value)) }))) }
        return .object(m)
    }
}
