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
    /// TagoTiP/S: each device's Encryption Key, by serial; the downlink nonce seeds.
    var keys: [String: [UInt8]] = [:]
    var downlinkSeed: [String: UInt32] = [:]
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
        runBrokerClient(host: host, port: port, username: username, password: password, clientID: "tagoedge-emulator-tip-\(getpid())",
                        topics: ["$tip/+/push"], failures: "tagotip_mqtt_connect_failures", retryMicroseconds: 200_000, loopMilliseconds: 50,
                        tick: { [weak self] c in
            // Commands queued for any serial go out now.
            guard let self else { return }
            let queued = self.lock.withLock { () -> [String: [String]] in
                defer { self.tip.commands.removeAll() }
                return self.tip.commands
            }
            for (serial, commands) in queued {
                for command in commands {
                    _ = try? c.publish(topic: "$tip/\(serial)/ack", payload: TipAck(status: .cmd, detail: command).encoded(raw: false))
                }
            }
        }) { [weak self] c, topic, payload in
            guard let self else { return }
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
                // Unparseable: the counter, if one can be read, is echoed; the body `>?` is one the
                // strict parser refuses, so the answer is the server's invalid_payload.
                let head = payload.prefix { $0 != UInt8(ascii: "|") }
                var counter: UInt32?
                if head.first == UInt8(ascii: "!") { counter = UInt32(String(decoding: head.dropFirst(), as: UTF8.self)) }
                ack = self.tipPush(hash: hash, serial: serial, counter: counter, body: Array(">?".utf8))
                ack.counter = counter
            }
            _ = try? c.publish(topic: "$tip/\(serial)/ack", payload: ack.encoded(raw: false))
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

extension Emulator {
    /// One message of the raw binding or a TagoTiP/S envelope, and the answer to send back
    /// (without the transport's framing): plaintext frames start with `P` (PUSH, PULL, PING),
    /// anything else is read as an envelope.
    func tipRaw(_ message: [UInt8]) -> [UInt8] {
        var m = message
        if m.last == 0x0A { m.removeLast() }
        if m.first == UInt8(ascii: "P") { return tipPlain(m) }
        return tipSealed(m)
    }

    private func tipPlain(_ m: [UInt8]) -> [UInt8] {
        let frame: TipFrame
        do {
            frame = try Tip.parseFrame(m)
        } catch {
            countMQTT("tagotip_refused_grammar")
            return TipAck(status: .err, detail: error.kind == .tooLarge ? "payload_too_large" : "invalid_payload").encoded(raw: true)
        }
        var ack: TipAck
        switch frame.method {
        case .push:
            let prefix = "PUSH|" + (frame.counter.map { "!\($0)|" } ?? "") + frame.auth + "|" + frame.serial + "|"
            ack = tipPush(hash: frame.auth.lowercased(), serial: frame.serial, counter: frame.counter, body: Array(m.dropFirst(prefix.utf8.count)))
        case .ping:
            ack = TipAck(status: .pong)
        case .pull:
            ack = TipAck(status: .err, detail: "variable_not_found")
        }
        ack.counter = frame.counter
        var out = ack.encoded(raw: true)
        for command in takeTipCommands(serial: frame.serial) { out += [0x0A] + TipAck(status: .cmd, detail: command).encoded(raw: true) }
        return out
    }

    private func tipSealed(_ m: [UInt8]) -> [UInt8] {
        func plain(_ code: String) -> [UInt8] { Array("ACK|ERR|\(code)".utf8) }
        let header: TipSecure.Header
        do {
            header = try TipSecure.header(m)
        } catch {
            return plain(error.kind == .tooLarge ? "envelope_too_large" : "auth_failed")
        }
        guard header.version == 0 else { return plain("unsupported_version") }
        guard header.cipher == 0 else { return plain("unsupported_cipher") }
        let known = lock.withLock { tip.hashes.contains(Tip.hexString(header.authHash)) }
        let candidates = lock.withLock { tip.keys.filter { TipSecure.deviceHash(serial: $0.key) == header.deviceHash } }
        guard known, !candidates.isEmpty else { return plain("auth_failed") }
        for (serial, key) in candidates.sorted(by: { $0.key < $1.key }) {
            guard let (_, inner) = try? TipSecure.open(m, key: key) else { continue }
            guard let bar = inner.firstIndex(of: Tip.pipe), String(decoding: inner[..<bar], as: UTF8.self) == serial else { return plain("auth_failed") }
            let ack: TipAck = header.method == .push
                ? tipPush(hash: Tip.hexString(header.authHash), serial: serial, counter: header.counter, body: Array(inner[(bar + 1)...]))
                : TipAck(status: .err, detail: "invalid_method")
            let seed = lock.withLock { () -> UInt32 in
                tip.downlinkSeed[serial, default: 0] &+= 1
                return tip.downlinkSeed[serial]!
            }
            return (try? TipSecure.seal(ack.encoded(raw: false), method: .ack, counter: seed, authHash: header.authHash, deviceHash: header.deviceHash, key: key)) ?? plain("server_error")
        }
        return plain("auth_failed")
    }

    /// TagoTiP/S over HTTP: `POST /v1/tips`.
    func tipSecureHTTP(_ r: ServerRequest) -> ServerAction {
        let answer = tipSealed(r.body)
        if answer.first == 0x41 {
            let status = answer.elementsEqual("ACK|ERR|envelope_too_large".utf8) ? 413 : 400
            return .respond(status: status, headers: [("Content-Type", "text/plain")], body: answer)
        }
        return .respond(status: 200, headers: [("Content-Type", "application/octet-stream")], body: answer)
    }

    /// The raw binding on loopback: UDP (a datagram a frame) and TCP (frames ended by LF, or
    /// length-prefixed envelopes); 0 picks free ports. Returns the ports.
    public func serveTagoTiPRaw(udpPort: UInt16 = 0, tcpPort: UInt16 = 0) throws -> (udp: UInt16, tcp: UInt16) {
        let u = try bindSocket(Int32(SOCK_DGRAM.rawValue), udpPort)
        let t = try bindSocket(Int32(SOCK_STREAM.rawValue), tcpPort)
        listen(t.fd, 16)
        startThread { [weak self] in
            defer { close(u.fd) }  // the thread that polls it closes it, once the emulator stops
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while let self, self.isRunning {
                var p = pollfd(fd: u.fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 200) > 0 else { continue }
                var from = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(u.fd, raw.baseAddress, raw.count, 0, $0, &length) } }
                }
                guard n > 0 else { continue }
                let reply = self.tipRaw(Array(buffer.prefix(n)))
                _ = reply.withUnsafeBytes { raw in
                    withUnsafePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(u.fd, raw.baseAddress, raw.count, 0, $0, length) } }
                }
            }
        }
        startThread { [weak self] in
            defer { close(t.fd) }
            while let self, self.isRunning {
                var p = pollfd(fd: t.fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 200) > 0 else { continue }
                let client = accept(t.fd, nil, nil)
                guard client >= 0 else { continue }
                startThread { [weak self] in self?.serveTipStream(client) }
            }
        }
        return (u.port, t.port)
    }

    private func serveTipStream(_ fd: Int32) {
        defer { close(fd) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while isRunning {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) >= 0 else { return }
            guard p.revents != 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            pending += buffer.prefix(n)
            guard pending.count <= 4 * TipSecure.maxEnvelopeBytes else { return }
            while let first = pending.first {
                var reply: [UInt8]
                if first == UInt8(ascii: "P") {
                    guard let lf = pending.firstIndex(of: 0x0A) else { break }
                    reply = tipRaw(Array(pending[..<lf])) + [0x0A]
                    pending.removeSubrange(...lf)
                } else {
                    guard pending.count >= 2 else { break }
                    let length = Int(pending[0]) << 8 | Int(pending[1])
                    guard pending.count >= 2 + length else { break }
                    let answer = tipRaw(Array(pending[2..<(2 + length)]))
                    reply = [UInt8(answer.count >> 8), UInt8(answer.count & 0xFF)] + answer
                    pending.removeSubrange(..<(2 + length))
                }
                var sent = 0
                while sent < reply.count {
                    let w = reply[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard w > 0 else { return }
                    sent += w
                }
            }
        }
    }

    private func bindSocket(_ type: Int32, _ port: UInt16) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw EmulatorSocketError(message: "socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 } }
        guard bound else {
            close(fd)
            throw EmulatorSocketError(message: "cannot bind 127.0.0.1:\(port)")
        }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }
}

struct EmulatorSocketError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
