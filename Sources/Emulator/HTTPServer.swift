#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore
import TagoKit

/// What the server does with a request: answer, or misbehave on purpose.
public enum ServerAction: Sendable {
    case respond(status: Int, headers: [(String, String)], body: [UInt8])
    /// Close the connection with a TCP reset, answering nothing.
    case reset
    /// Keep the connection open and never answer (until the client gives up or the server stops).
    case blackHole
    /// A long answer written as it comes (server-sent events): the head, then each chunk `events`
    /// yields, a keep-alive comment every `keepAliveSeconds` of silence, until the client goes,
    /// the queue closes or the server stops. `tick` runs about once a second meanwhile.
    case stream(headers: [(String, String)], events: EventQueue, keepAliveSeconds: Int, tick: @Sendable () -> Void)
}

/// What a streamed answer writes: pushed by any thread, taken by the connection's.
public final class EventQueue: @unchecked Sendable {
    private var items: [[UInt8]] = []
    private var closed = false
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    public init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }
    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    public func push(_ bytes: [UInt8]) {
        pthread_mutex_lock(&mutex)
        if !closed && items.count < 1000 { items.append(bytes) }
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    public func close() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
    }

    public var isClosed: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return closed
    }

    /// The next item, waiting at most `milliseconds`; [] when none came; nil once closed.
    func pop(milliseconds: Int) -> [UInt8]? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if items.isEmpty && !closed {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var deadline = timespec(tv_sec: now.tv_sec + milliseconds / 1000, tv_nsec: now.tv_nsec + (milliseconds % 1000) * 1_000_000)
            if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
            pthread_cond_timedwait(&cond, &mutex, &deadline)
        }
        if !items.isEmpty { return items.removeFirst() }
        return closed ? nil : []
    }
}

/// A small HTTP/1.1 server over POSIX sockets, one thread per connection, keep-alive,
/// Content-Length bodies. Enough for the local TagoIO emulator; binds to loopback by default.
public final class HTTPServer: @unchecked Sendable {
    public let host: String
    public private(set) var port: UInt16 = 0
    private let handler: @Sendable (ServerRequest) -> ServerAction
    private var listener: Int32 = -1
    private let lock = Lock()
    private var connections: Set<Int32> = []
    private var stopped = false
    public static let maxBody = 16 << 20
    /// Connections served at once (a thread each); more are answered 503 and closed.
    public static let maxConnections = 256
    /// A connection that sends nothing for this long is closed.
    public static let idleTimeoutSeconds = 30

    public init(host: String = "127.0.0.1", port: UInt16 = 0, handler: @escaping @Sendable (ServerRequest) -> ServerAction) throws {
        self.host = host
        self.handler = handler
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw SystemError(subject: "\(host):\(port)", operation: "socket", errno: errno) }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            close(listener)
            throw SystemError(subject: host, operation: "parse address", errno: EINVAL, detail: "give an IPv4 address such as 127.0.0.1")
        }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(listener, 128) == 0 else {
            let e = errno
            close(listener)
            throw SystemError(subject: "\(host):\(port)", operation: "bind", errno: e)
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        self.port = UInt16(bigEndian: bound.sin_port)
    }

    /// Accepts connections on a thread of its own.
    public func start() {
        startThread { [self] in acceptLoop() }
    }

    /// Stops accepting and closes every connection.
    public func stop() {
        let open: [Int32] = lock.withLock {
            stopped = true
            return Array(connections)
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            let accepted: Bool? = lock.withLock {
                if stopped { return nil }
                if connections.count >= Self.maxConnections { return false }
                connections.insert(fd)
                return true
            }
            guard let accepted else { close(fd); return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            guard accepted else {
                // Too many at once: refused in a word, so a flood of clients cannot exhaust the threads.
                write(fd, status: 503, headers: [("Connection", "close"), ("Retry-After", "1")],
                      body: Array(#"{"status":false,"message":"Too many connections to the emulator"}"#.utf8), keepAlive: false)
                close(fd)
                continue
            }
            // A client that goes quiet mid-request (or idles on keep-alive) is let go.
            var idle = timeval(tv_sec: Self.idleTimeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            startThread { [self] in serve(fd) }
        }
    }

    private func finish(_ fd: Int32) {
        lock.withLock { _ = connections.remove(fd) }
        close(fd)
    }

    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            buffer += chunk.prefix(n)
            return true
        }
        while true {
            // Headers.
            var headerEnd: Int?
            while headerEnd == nil {
                headerEnd = findHeaderEnd(buffer)
                if headerEnd == nil {
                    if buffer.count > maxRequestHead || !fill() { finish(fd); return }
                }
            }
            let parsed = parseRequestHead(buffer[0..<headerEnd!], maxBody: Self.maxBody)
            buffer.removeFirst(headerEnd! + 4)
            var request: ServerRequest, length: Int, keepAlive: Bool
            switch parsed {
            case .request(let r, let l, let k): (request, length, keepAlive) = (r, l, k)
            case .refuse(let status, let message):
                let body = JSONValue.object([("status", .bool(false)), ("message", .string(message))]).serialized
                write(fd, status: status, headers: [("Connection", "close")], body: Array(body.utf8), keepAlive: false)
                finish(fd)
                return
            }
            while buffer.count < length { if !fill() { finish(fd); return } }
            request.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
            switch handler(request) {
            case .respond(let status, let h, let b):
                if !write(fd, status: status, headers: h, body: b, keepAlive: keepAlive) || !keepAlive { finish(fd); return }
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                finish(fd)
                return
            case .blackHole:
                // Say nothing; wait until the client hangs up or the server stops.
                while fill() {}
                finish(fd)
                return
            case .stream(let h, let events, let keepAlive, let tick):
                streamAnswer(fd, headers: h, events: events, keepAliveSeconds: keepAlive, tick: tick)
                events.close()
                finish(fd)
                return
            }
        }
    }

    /// Writes a streamed answer (close-delimited, no length) until the client goes or the queue closes.
    private func streamAnswer(_ fd: Int32, headers: [(String, String)], events: EventQueue, keepAliveSeconds: Int, tick: () -> Void) {
        var head = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        guard sendAll(fd, Array(head.utf8)) else { return }
        var silent = 0
        while !lock.withLock({ stopped }) {
            guard let item = events.pop(milliseconds: 1000) else { return }
            tick()
            if item.isEmpty {
                silent += 1
                if silent >= max(keepAliveSeconds, 1) {
                    silent = 0
                    guard sendAll(fd, Array(":keep-alive\n\n".utf8)) else { return }
                }
                // A client that hung up: recv sees the end without blocking.
                var probe: UInt8 = 0
                if recv(fd, &probe, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) == 0 { return }
                continue
            }
            silent = 0
            guard sendAll(fd, item) else { return }
        }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { b in retryingEINTR { send(fd, b.baseAddress! + sent, b.count - sent, Int32(MSG_NOSIGNAL)) } }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    @discardableResult
    private func write(_ fd: Int32, status: Int, headers: [(String, String)], body: [UInt8], keepAlive: Bool) -> Bool {
        var head = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Length: \(body.count)\r\n"
        head += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        return sendAll(fd, Array(head.utf8) + body)
    }
}

func reason(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 201: "Created"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 413: "Payload Too Large"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 503: "Service Unavailable"
    default: "Status"
    }
}
