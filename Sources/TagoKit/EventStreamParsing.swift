// What a server's event stream is made of, parsed as it arrives: server-sent events and HTTP's
// chunked transfer coding. No dependency, so the fuzzer (scripts/fuzz sse) builds it alone.

/// One server-sent event: its `event:` name (default "message") and its `data:` lines joined by "\n".
public struct ServerSentEvent: Sendable, Equatable {
    public var event: String
    public var data: String

    public init(event: String, data: String) {
        self.event = event
        self.data = data
    }
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

/// A malformed chunked body.
public struct ChunkedEncodingError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// HTTP/1.1 chunked transfer coding, decoded as bytes arrive. Throws on a malformed chunk size.
public struct ChunkedDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var remaining = 0
    private var needCRLF = false
    public private(set) var finished = false

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) throws(ChunkedEncodingError) -> [UInt8] {
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
                if buffer.count > 1024 { throw ChunkedEncodingError(message: "a chunk size line longer than 1 KiB") }
                break
            }
            let sizeLine = String((String(decoding: buffer[..<lf], as: UTF8.self).split(separator: ";").first ?? "").filter { $0 != " " && $0 != "\r" && $0 != "\t" })
            buffer.removeFirst(lf + 1)
            guard !sizeLine.isEmpty, sizeLine.count <= 8, let size = Int(sizeLine, radix: 16), size >= 0 else {
                throw ChunkedEncodingError(message: "a chunk size that is not hexadecimal: '\(sizeLine.prefix(20))'")
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
