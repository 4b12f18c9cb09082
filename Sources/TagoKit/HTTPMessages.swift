// HTTP's messages and what is parsed from a server's answer (header lines, query components).
// No dependency, so the fuzzer (scripts/fuzz http) builds it with TagoError.swift and EdgeCore.

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

/// Header lines of the last response (after redirects or `100 Continue`), names lowercased,
/// values without surrounding blanks and with no CR or LF inside.
///
/// Split on the bytes, not the characters: Swift keeps `\r\n` as one `Character`, so splitting
/// the `String` on `"\n"` found no line break at all in a real response.
public func parseHeaderLines(_ raw: String) -> [(String, String)] {
    var headers: [(String, String)] = []
    for line in raw.utf8.split(separator: UInt8(ascii: "\n")) {
        var bytes = line[...]
        while let last = bytes.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        if bytes.starts(with: "HTTP/".utf8) { headers.removeAll(); continue }
        // A bare CR inside a line is replaced with a space (RFC 9112, 2.2): no line break reaches
        // a value that is logged or parsed.
        let line = bytes.map { $0 == UInt8(ascii: "\r") ? UInt8(ascii: " ") : $0 }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        let value = line[line.index(after: colon)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
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
