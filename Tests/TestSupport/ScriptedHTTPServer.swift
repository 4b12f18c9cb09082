#if canImport(Glibc)
import Glibc
#endif
import EdgeCore

/// A real HTTP/1.1 server on loopback that answers each request with the next of a list of raw
/// responses (bytes exactly as written, the last one repeated): for testing what a client does
/// with answers no well-behaved server gives. Records each request's first line.
public final class ScriptedHTTPServer: @unchecked Sendable {
    public let port: UInt16
    private let listener: Int32
    private let lock = Lock()
    private var responses: [[UInt8]]
    private var lines: [String] = []
    private var stopped = false
    private var thread: JoinableThread?

    public init(_ responses: [[UInt8]]) throws {
        self.responses = responses
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(listener, 16) == 0 else { throw SpoolError(.io, path: "127.0.0.1", "cannot listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = UInt16(bigEndian: address.sin_port)
        thread = JoinableThread { [self] in serve() }
    }

    /// A response with a status line, headers and a body (Content-Length added).
    public static func response(_ status: String, headers: [String] = [], body: [UInt8] = []) -> [UInt8] {
        var text = "HTTP/1.1 \(status)\r\n"
        for h in headers { text += h + "\r\n" }
        text += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(text.utf8) + body
    }

    public static func response(_ status: String, headers: [String] = [], text: String) -> [UInt8] {
        response(status, headers: headers, body: Array(text.utf8))
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [String] { lock.withLock { lines } }

    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        thread?.join()
        close(listener)
    }

    deinit { if !lock.withLock({ stopped }) { stop() } }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(fd)
            close(fd)
        }
    }

    private func handle(_ fd: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        // Read the head and the body its Content-Length announces.
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return }
            received += buffer[0..<n]
            guard let end = headEnd(received) else { continue }
            let head = String(decoding: received[0..<end], as: UTF8.self).lowercased()
            var length = 0
            for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                length = Int(line.dropFirst(15).trimmingCharacters(" ")) ?? 0
            }
            if received.count >= end + 4 + length { break }
        }
        let first = String(decoding: received.prefix { $0 != 13 }, as: UTF8.self)
        let reply: [UInt8] = lock.withLock {
            lines.append(first)
            return responses.count > 1 ? responses.removeFirst() : responses.first ?? []
        }
        var offset = 0
        while offset < reply.count {
            let n = reply[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }

    private func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(_ c: Character) -> String { String(drop { $0 == c }.reversed().drop { $0 == c }.reversed()) }
}

/// What a shell command prints on standard output (through popen; for making test inputs).
public func shellOutput(_ command: String) -> [UInt8] {
    guard let pipe = popen(command, "r") else { return [] }
    defer { pclose(pipe) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, pipe)
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

/// Sends `request` as raw bytes to 127.0.0.1:`port` and returns what comes back until the server
/// closes or `timeoutSeconds` pass (for requests no HTTP client library would send).
public func rawExchange(port: UInt16, _ request: [UInt8], timeoutSeconds: Int = 5) -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { return "" }
    var limit = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        out += buffer[0..<n]
        // One response is enough when it said it closes.
        if String(decoding: out, as: UTF8.self).contains("\r\n\r\n") && String(decoding: out, as: UTF8.self).lowercased().contains("connection: close") { break }
    }
    return String(decoding: out, as: UTF8.self)
}
