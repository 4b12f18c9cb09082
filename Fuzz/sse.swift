// libFuzzer target: what `tagoedge analysis serve` reads from a server — an event stream
// (server-sent events) in HTTP's chunked transfer coding. The input is split at an arbitrary point
// the first byte picks, as bytes arrive in pieces. Properties: no trap; an event is never larger
// than the parser's bound; feeding a stream in two pieces gives the same events as in one.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSE(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    let cut = body.isEmpty ? 0 : Int(first) % (body.count + 1)
    var whole = ServerSentEventParser(maxEvent: 4096)
    let all = whole.feed(body)
    var split = ServerSentEventParser(maxEvent: 4096)
    let pieces = split.feed(Array(body[..<cut])) + split.feed(Array(body[cut...]))
    if all != pieces { fatalError("events differ when fed in two pieces at \(cut)") }
    for e in all where e.data.utf8.count > 4096 { fatalError("an event of \(e.data.utf8.count) bytes passed a 4096 bound") }
    var decoder = ChunkedDecoder()
    if let decoded = try? decoder.feed(Array(body[..<cut])) + decoder.feed(Array(body[cut...])) {
        var p = ServerSentEventParser(maxEvent: 4096)
        _ = p.feed(decoded)
    }
    return 0
}
