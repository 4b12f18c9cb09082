import CCurlShim
import EdgeCore

/// One HTTP request.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// A request that must never be sent twice (one that creates something): it gets a connection
    /// of its own. libcurl resends a request, silently, when a reused connection dies before any
    /// answer; for a device creation that would make two devices.
    public var once: Bool

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = [], once: Bool = false) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.once = once
    }
}

/// One HTTP response; header names lowercased.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.0 == lower }?.1
    }
}

/// No HTTP response arrived.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case timeout, dns, refused, tls, reset, other, tooLarge = "too large" }
    public var kind: Kind
    public var message: String
    public var description: String { "\(kind.rawValue): \(message)" }

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Sends HTTP requests. Implementations are thread safe.
public protocol HTTPClient: AnyObject, Sendable {
    func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse
}

/// HTTP over libcurl: one kept-alive connection, TLS verified against the system CA store (or
/// `caFile`) unless `insecure` is set by the user.
public final class CurlHTTPClient: HTTPClient, @unchecked Sendable {
    public struct Options: Sendable {
        public var connectTimeoutMilliseconds = 10_000
        public var timeoutMilliseconds = 30_000
        public var caFile: String?
        public var insecure = false
        public init() {}
    }

    public let options: Options
    private let lock = Lock()
    private let handle: UnsafeMutableRawPointer?

    public init(options: Options = Options()) {
        self.options = options
        handle = tecurl_new()
    }

    deinit { tecurl_free(handle) }

    public func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        guard let handle else { throw TransportError(kind: .other, message: "libcurl could not be initialised") }
        let result: Result<HTTPResponse, TransportError> = lock.withLock {
            var response = tecurl_response()
            let lines = request.headers.map { "\($0.0): \($0.1)" }
            var cLines = lines.map { strdupSwift($0) }
            defer { cLines.forEach { $0?.deallocate() } }
            let rc: Int32 = cLines.withUnsafeMutableBufferPointer { linePointers in
                linePointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constLines in
                    request.body.withUnsafeBytes { body in
                        tecurl_perform(handle, request.method, request.url, constLines.baseAddress, Int32(lines.count),
                                       body.baseAddress, body.count, options.connectTimeoutMilliseconds, options.timeoutMilliseconds,
                                       options.caFile, options.insecure ? 1 : 0, request.once ? 1 : 0, &response)
                    }
                }
            }
            defer { tecurl_response_free(&response) }
            guard rc == 0 else {
                let message = withUnsafeBytes(of: response.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                let kinds: [TransportError.Kind] = [.other, .timeout, .dns, .refused, .tls, .reset, .other, .tooLarge]
                let kind = Int(response.transport_kind) < kinds.count ? kinds[Int(response.transport_kind)] : .other
                return .failure(TransportError(kind: kind, message: message))
            }
            let body = response.body.map { Array(UnsafeRawBufferPointer(start: $0, count: response.body_length)) } ?? []
            let rawHeaders = response.headers.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: response.headers_length), as: UTF8.self) } ?? ""
            return .success(HTTPResponse(status: Int(response.status), headers: parseHeaderLines(rawHeaders), body: body))
        }
        return try result.get()
    }
}

private func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar>? {
    let utf8 = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return p
}

/// Header lines of the last response (after redirects or `100 Continue`), names lowercased,
/// values without surrounding blanks.
///
/// Split on the bytes, not the characters: Swift keeps `\r\n` as one `Character`, so splitting
/// the `String` on `"\n"` found no line break at all in a real response.
public func parseHeaderLines(_ raw: String) -> [(String, String)] {
    var headers: [(String, String)] = []
    for line in raw.utf8.split(separator: UInt8(ascii: "\n")) {
        var bytes = line[...]
        while let last = bytes.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        if bytes.starts(with: "HTTP/".utf8) { headers.removeAll(); continue }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { continue }
        let name = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        let value = bytes[bytes.index(after: colon)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        headers.append((name, String(decoding: value, as: UTF8.self)))
    }
    return headers
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
public func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let hex = String(b, radix: 16, uppercase: true)
            out += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return out
}

/// Decodes `%XX` and `+` in a query component.
public func percentDecode<S: StringProtocol>(_ s: S) -> String {
    var bytes: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let b = it.first {
        it = it.dropFirst()
        if b == UInt8(ascii: "+") { bytes.append(32); continue }
        if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
            continue
        }
        bytes.append(b)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// `a=1&b=2` from ordered pairs.
public func queryString(_ items: [(String, String)]) -> String {
    items.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
}
