#if canImport(Glibc)
import Glibc
#endif
import CCurlShim
import EdgeCore

/// A TCP connection, with TLS verified as for HTTPS when asked, made by libcurl (CONNECT_ONLY):
/// for protocols of the agent's own over TCP (TagoTiP's raw binding). One thread uses it.
public final class CurlStream {
    private var handle: UnsafeMutableRawPointer?
    public private(set) var isOpen = false

    public init() { handle = tecurl_new() }
    deinit { tecurl_free(handle) }

    public func open(host: String, port: Int, tls: Bool, connectTimeoutMilliseconds: Int, caFile: String?, insecure: Bool) throws(TransportError) {
        guard let handle else { throw TransportError(kind: .other, message: "libcurl could not be initialised") }
        var error = [CChar](repeating: 0, count: 256)
        var kind: Int32 = 0
        let rc = tecurl_stream_open(handle, host, Int32(port), tls ? 1 : 0, connectTimeoutMilliseconds, caFile, insecure ? 1 : 0, &error, &kind)
        guard rc == 0 else {
            isOpen = false
            let kinds: [TransportError.Kind] = [.other, .timeout, .dns, .refused, .tls, .reset, .other, .tooLarge]
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TransportError(kind: Int(kind) < kinds.count ? kinds[Int(kind)] : .other, message: "\(host):\(port): \(message)")
        }
        isOpen = true
    }

    public func send(_ bytes: [UInt8], timeoutMilliseconds: Int) throws(TransportError) {
        guard isOpen, let handle else { throw TransportError(kind: .reset, message: "not connected") }
        let rc = bytes.withUnsafeBytes { tecurl_stream_send(handle, $0.baseAddress, $0.count, timeoutMilliseconds) }
        if rc != 0 {
            isOpen = false
            throw TransportError(kind: rc == 28 ? .timeout : .reset, message: "the connection failed while sending")
        }
    }

    /// What arrived within `timeoutMilliseconds` (empty: nothing yet).
    public func receive(max: Int = 16_384, timeoutMilliseconds: Int) throws(TransportError) -> [UInt8] {
        guard isOpen, let handle else { throw TransportError(kind: .reset, message: "not connected") }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { tecurl_stream_recv(handle, $0.baseAddress, $0.count, timeoutMilliseconds) }
        if n < 0 {
            isOpen = false
            throw TransportError(kind: .reset, message: "the server closed the connection")
        }
        return Array(buffer.prefix(n))
    }

    /// Closes the connection (libcurl keeps it in the handle's cache otherwise).
    public func close() {
        isOpen = false
        tecurl_free(handle)
        handle = tecurl_new()
    }
}

/// A connected UDP socket: one datagram a message.
public final class UDPSocket {
    private var fd: Int32 = -1
    public var isOpen: Bool { fd >= 0 }

    public init() {}
    deinit { close() }

    public func open(host: String, port: Int) throws(TransportError) {
        close()
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw TransportError(kind: .dns, message: "\(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s >= 0 {
                if Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    fd = s
                    return
                }
                Glibc.close(s)
            }
            entry = a.pointee.ai_next
        }
        throw TransportError(kind: .refused, message: "\(host):\(port): \(String(cString: strerror(errno)))")
    }

    public func send(_ bytes: [UInt8]) throws(TransportError) {
        guard fd >= 0 else { throw TransportError(kind: .reset, message: "not open") }
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 { throw TransportError(kind: .refused, message: "send: \(String(cString: strerror(errno)))") }
    }

    /// One datagram that arrived within `timeoutMilliseconds`, or nil.
    public func receive(timeoutMilliseconds: Int) throws(TransportError) -> [UInt8]? {
        guard fd >= 0 else { throw TransportError(kind: .reset, message: "not open") }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let n = retryingEINTR { poll(&p, 1, Int32(timeoutMilliseconds)) }
        guard n > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if got < 0 {
            // ECONNREFUSED: an ICMP port unreachable from an earlier datagram; nobody listens.
            throw TransportError(kind: .refused, message: "recv: \(String(cString: strerror(errno)))")
        }
        return Array(buffer.prefix(got))
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
