// libFuzzer target: a server's answer as the uplinks read it. The input is a status (its first two
// bytes), the raw header block (up to the first NUL byte) and the body (the rest). Properties: no
// trap; header names lowercased, no line break in a name or a value; only TagoIO's refusals of
// the data itself (a 400 in TagoIO's envelope, a 413, a 2xx envelope saying `"status": false`)
// are classed as what the uplink dead-letters; a wait a server asks for is finite and at most an
// hour.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 2 else { return 0 }
    let status = 100 + (Int(bytes[0]) << 8 | Int(bytes[1])) % 500
    let rest = bytes.dropFirst(2)
    let nul = rest.firstIndex(of: 0) ?? rest.endIndex
    let raw = String(decoding: rest[..<nul], as: UTF8.self)
    let body = nul < rest.endIndex ? Array(rest[(nul + 1)...]) : []
    let headers = parseHeaderLines(raw)
    for (name, value) in headers {
        if name != name.lowercased() { fatalError("header name not lowercased: \(name)") }
        if (name + value).utf8.contains(where: { $0 == 10 || $0 == 13 }) { fatalError("a line break inside a header: \(name)") }
    }
    let now = Timestamp(millisecondsSince1970: 1_780_000_000_000)
    if let value = headers.first?.1, let wait = Envelope.retryAfterSeconds(value, now: now), !(wait.isFinite && (0...3_600).contains(wait)) {
        fatalError("Retry-After \(value) gave a wait of \(wait) s")
    }
    do {
        _ = try Envelope.decode(HTTPResponse(status: status, headers: headers, body: body), operation: "POST /data", now: now)
    } catch {
        switch error.kind {
        case .validation, .payloadTooLarge:
            let envelopeSaysFalse = (200..<300).contains(status)
            if status != 400 && status != 413 && !envelopeSaysFalse { fatalError("HTTP \(status) classed as a refusal of the data (\(error.kind))") }
        default: break
        }
        if let wait = error.retryAfterSeconds, !(wait.isFinite && (0...3_600).contains(wait)) { fatalError("a wait of \(wait) s") }
    }
    return 0
}
