import EdgeCore

/// One server-sent event: its `event:` name (default "message") and its `data:` lines joined by "\n".
public struct ServerSentEvent: Sendable, Equatable {
    public var event: String
    public var data: String
}

/// The text/event-stream format (WHATWG HTML, "server-sent events"), fed bytes as they arrive:
/// lines end in LF, CR LF or CR; `data:` lines accumulate, a blank line dispatches, `:` lines
/// are comments (keep-alives), one space after the colon is dropped. Bounded: an event larger
/// than `maxEvent` bytes is dropped whole, never buffered without end.
public struct ServerSentEventParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var event = ""
    private var lastWasCR = false
    private var dropping = false
    public let maxEvent: Int
    /// Events dropped for their size.
    public private(set) var dropped = 0

    public init(maxEvent: Int = 1 << 20) { self.maxEvent = maxEvent }

    public mutating func feed(_ bytes: [UInt8]) -> [ServerSentEvent] {
        var out: [ServerSentEvent] = []
        for b in bytes {
            if b == 10 && lastWasCR {
                lastWasCR = false
                continue
            }
            lastWasCR = b == 13
            if b == 10 || b == 13 {
                if let e = endLine() { out.append(e) }
                continue
            }
            if line.count + data.count >= maxEvent {
                if !dropping { dropped += 1 }
                dropping = true
                line.removeAll()
                data.removeAll()
                continue
            }
            line.append(b)
        }
        return out
    }

    private mutating func endLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            // Dispatch.
            defer {
                data.removeAll()
                hasData = false
                event = ""
                dropping = false
            }
            guard hasData, !dropping else { return nil }
            return ServerSentEvent(event: event.isEmpty ? "message" : event, data: String(decoding: data, as: UTF8.self))
        }
        if line.first == UInt8(ascii: ":") || dropping { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        let field = String(decoding: line[..<colon], as: UTF8.self)
        var value = colon < line.count ? Array(line[(colon + 1)...]) : []
        if value.first == 32 { value.removeFirst() }
        switch field {
        case "data":
            if hasData { data.append(10) }
            data += value
            hasData = true
        case "event":
            event = String(decoding: value, as: UTF8.self)
        default:
            break  // id, retry: not used
        }
        return nil
    }
}

/// HTTP/1.1 chunked transfer coding, decoded as bytes arrive. Throws on a malformed chunk size.
public struct ChunkedDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var remaining = 0
    private var needCRLF = false
    public private(set) var finished = false

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) throws(TransportError) -> [UInt8] {
        buffer += bytes
        var out: [UInt8] = []
        while !finished {
            if needCRLF {
                guard buffer.count >= 2 else { break }
                buffer.removeFirst(2)
                needCRLF = false
            }
            if remaining > 0 {
                let n = min(remaining, buffer.count)
                if n == 0 { break }
                out += buffer.prefix(n)
                buffer.removeFirst(n)
                remaining -= n
                if remaining == 0 { needCRLF = true }
                continue
            }
            guard let lf = buffer.firstIndex(of: 10) else {
                if buffer.count > 1024 { throw TransportError(kind: .other, message: "a chunk size line longer than 1 KiB") }
                break
            }
            let sizeLine = String((String(decoding: buffer[..<lf], as: UTF8.self).split(separator: ";").first ?? "").filter { $0 != " " && $0 != "\r" && $0 != "\t" })
            buffer.removeFirst(lf + 1)
            guard !sizeLine.isEmpty, sizeLine.count <= 8, let size = Int(sizeLine, radix: 16), size >= 0 else {
                throw TransportError(kind: .other, message: "a chunk size that is not hexadecimal: '\(sizeLine.prefix(20))'")
            }
            if size == 0 {
                finished = true
                break
            }
            remaining = size
        }
        return out
    }
}

/// A client of TagoIO's server-sent events (`{sse}/events?channels=…&token=…`, as the current SDKs
/// open them for an analysis run externally): connects over libcurl's stream (TLS verified as for
/// HTTPS), reads the response head, then hands each event to `onEvent` until the server closes,
/// `keepGoing` says stop, or nothing (not even a keep-alive) arrives for `idleMilliseconds`.
public final class ServerSentEventClient {
    public let url: String
    private let stream = CurlStream()
    public var caFile: String?
    public var insecure = false

    /// - Parameter url: the full URL, query and token included. Never logged: it carries the token.
    public init(url: String) { self.url = url }

    /// Connects and reads events. Throws why the stream ended, unless `keepGoing` stopped it.
    public func run(idleMilliseconds: Int = 90_000, keepGoing: () -> Bool, onOpen: () -> Void = {}, onEvent: (ServerSentEvent) -> Void) throws(TransportError) {
        guard let parts = splitURL(url) else { throw TransportError(kind: .other, message: "not an http(s) URL") }
        try stream.open(host: parts.host, port: parts.port, tls: parts.tls, connectTimeoutMilliseconds: 15_000, caFile: caFile, insecure: insecure)
        defer { stream.close() }
        let request = "GET \(parts.target) HTTP/1.1\r\nHost: \(parts.host)\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: tagoedge\r\nConnection: close\r\n\r\n"
        try stream.send(Array(request.utf8), timeoutMilliseconds: 15_000)
        var head: [UInt8] = []
        var body: [UInt8] = []
        var idle = 0
        // The response head.
        while true {
            let got = try stream.receive(timeoutMilliseconds: 1_000)
            if got.isEmpty {
                idle += 1_000
                if idle >= 15_000 { throw TransportError(kind: .timeout, message: "no answer to the event stream request") }
                if !keepGoing() { return }
                continue
            }
            head += got
            if let end = findCRLFCRLF(head) {
                body = Array(head[(end + 4)...])
                head = Array(head[..<end])
                break
            }
            if head.count > 64 << 10 { throw TransportError(kind: .other, message: "a response head larger than 64 KiB") }
        }
        let text = String(decoding: head, as: UTF8.self)
        let lines = text.split(separator: "\r\n").map(String.init)
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        guard status == 200 else {
            throw TransportError(kind: status == 401 || status == 403 ? .refused : .other,
                                 message: "the event stream answered HTTP \(status)\(status == 401 || status == 403 ? " (is the analysis token right?)" : "")")
        }
        let chunked = lines.contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        var decoder = ChunkedDecoder()
        var parser = ServerSentEventParser()
        onOpen()
        idle = 0
        while keepGoing() {
            let bytes = try chunked ? decoder.feed(body) : body
            for event in parser.feed(bytes) { onEvent(event) }
            if decoder.finished { throw TransportError(kind: .reset, message: "the server ended the event stream") }
            body = try stream.receive(timeoutMilliseconds: 1_000)
            if body.isEmpty {
                idle += 1_000
                if idle >= idleMilliseconds { throw TransportError(kind: .timeout, message: "nothing on the event stream for \(idleMilliseconds / 1000) s") }
            } else {
                idle = 0
            }
        }
    }
}

func findCRLFCRLF(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}

/// `http(s)://host[:port]/path?query` → host, port, TLS, and the request target.
func splitURL(_ url: String) -> (host: String, port: Int, tls: Bool, target: String)? {
    let tls: Bool
    var rest: Substring
    if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) } else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) } else { return nil }
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    let authority = rest[..<slash]
    rest = rest[slash...]
    var host = String(authority)
    var port = tls ? 443 : 80
    if let colon = authority.lastIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(p) {
        host = String(authority[..<colon])
        port = p
    }
    guard !host.isEmpty else { return nil }
    return (host, port, tls, rest.isEmpty ? "/" : String(rest))
}
