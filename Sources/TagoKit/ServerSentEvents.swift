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
            let bytes: [UInt8]
            do {
                bytes = chunked ? try decoder.feed(body) : body
            } catch {
                throw TransportError(kind: .other, message: "the event stream: \(error.message)")
            }
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
