// The emulator's HTTP/1.1 request parser: a request's head (the bytes before the blank line) to a
// request, or the answer that refuses it. Needs only TagoKit's percentDecode, so the fuzzer
// (scripts/fuzz request) compiles it with TagoKit's HTTPMessages.swift in one module.
#if canImport(TagoKit)
import TagoKit
#endif

/// A request as the server received it; header names lowercased, query decoded, in order.
public struct ServerRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [(String, String)]
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? { headers.last { $0.0 == name }?.1 }
    public func queryValues(_ name: String) -> [String] { query.filter { $0.0 == name }.map(\.1) }
    public func queryValue(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
}

/// A request's head, parsed: the request (its body still to read) or the answer that refuses it.
enum RequestHead {
    case request(ServerRequest, contentLength: Int, keepAlive: Bool)
    case refuse(status: Int, message: String)
}

/// The longest request head the server reads (request line and headers).
let maxRequestHead = 64 << 10

/// Parses a request head: `METHOD SP target SP version`, then `name: value` lines (names
/// lowercased; lines end in CR LF or LF; a CR elsewhere is refused). Content-Length must be one non-negative decimal number
/// within `maxBody`; a body in any other framing (Transfer-Encoding) is not supported.
func parseRequestHead(_ head: ArraySlice<UInt8>, maxBody: Int) -> RequestHead {
    var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
        line.last == UInt8(ascii: "\r") ? line.dropLast() : line
    }
    // A CR anywhere but before an LF is refused (RFC 9112, 2.2): it would let a value carry a line.
    guard !lines.contains(where: { $0.contains(UInt8(ascii: "\r")) }) else {
        return .refuse(status: 400, message: "a bare CR in the request head")
    }
    let requestLine = (lines.isEmpty ? [] : lines.removeFirst()).split(separator: UInt8(ascii: " "))
    guard requestLine.count == 3 || requestLine.count == 2,
          requestLine[0].allSatisfy({ (65...90).contains($0) }) else {
        return .refuse(status: 400, message: "the request line must be METHOD TARGET HTTP/1.1")
    }
    var headers: [(String, String)] = []
    for line in lines {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
        let value = line[line.index(after: colon)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        headers.append((String(decoding: line[..<colon], as: UTF8.self).lowercased(), String(decoding: value, as: UTF8.self)))
    }
    // Content-Length: digits only (no sign, no blanks inside), one value, within the limit.
    let lengths = headers.filter { $0.0 == "content-length" }.map { $0.1.trimmingSpaces() }
    let declared = lengths.first ?? "0"
    let digits = !declared.isEmpty && declared.utf8.count <= 12 && declared.utf8.allSatisfy { (48...57).contains($0) }
    guard digits, Set(lengths).count <= 1, let length = Int(declared) else {
        return .refuse(status: 400, message: "Content-Length must be one non-negative decimal number")
    }
    if headers.contains(where: { $0.0 == "transfer-encoding" }) { return .refuse(status: 501, message: "Request body not supported by the emulator") }
    if length > maxBody { return .refuse(status: 413, message: "Request body larger than the emulator's \(maxBody) bytes") }
    let (path, query) = splitTarget(String(decoding: requestLine[1], as: UTF8.self))
    let version = requestLine.count == 3 ? String(decoding: requestLine[2], as: UTF8.self) : "HTTP/1.0"
    let request = ServerRequest(method: String(decoding: requestLine[0], as: UTF8.self), path: path, query: query, headers: headers, body: [])
    let keepAlive = request.header("connection")?.lowercased() != "close" && version != "HTTP/1.0"
    return .request(request, contentLength: length, keepAlive: keepAlive)
}

/// Where the blank line that ends a request head starts (CR LF CR LF), if it has arrived.
func findHeaderEnd(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}

/// `/a%20b?x=1&y` → ("/a b", [("x", "1"), ("y", "")]).
func splitTarget(_ target: String) -> (String, [(String, String)]) {
    guard let q = target.firstIndex(of: "?") else { return (percentDecode(target), []) }
    let path = percentDecode(target[..<q])
    let items = target[target.index(after: q)...].split(separator: "&").map { pair -> (String, String) in
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return (percentDecode(parts[0]), parts.count > 1 ? percentDecode(parts[1]) : "")
    }
    return (path, items)
}

extension String {
    /// Without leading and trailing blanks (spaces and tabs).
    func trimmingSpaces() -> String {
        String(decoding: utf8.drop { $0 == 32 || $0 == 9 }.reversed().drop { $0 == 32 || $0 == 9 }.reversed(), as: UTF8.self)
    }
}
