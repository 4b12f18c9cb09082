// libFuzzer target: the emulator's request parser on any request head (the emulator is a tool
// users run, and anything on the network can talk to it). Properties: no trap; a request it
// accepts declares a body within the limit, has lowercased header names with no line break in
// them, and came with at most one Content-Length.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = findHeaderEnd(bytes)
    switch parseRequestHead(bytes[...], maxBody: 1 << 20) {
    case .request(let request, let length, _):
        if !(0...(1 << 20)).contains(length) { fatalError("accepted a body of \(length) bytes") }
        for (name, value) in request.headers {
            if name != name.lowercased() { fatalError("header name not lowercased: \(name)") }
            if (name + value).utf8.contains(where: { $0 == 10 || $0 == 13 }) { fatalError("a line break inside a header: \(name)") }
        }
        if Set(request.headers.filter { $0.0 == "content-length" }.map { $0.1.trimmingSpaces() }).count > 1 {
            fatalError("two different Content-Length values accepted")
        }
    case .refuse(let status, _):
        if ![400, 413, 501].contains(status) { fatalError("refused with \(status)") }
    }
    return 0
}
