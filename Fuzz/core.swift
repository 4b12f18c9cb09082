// libFuzzer target: what EdgeCore parses from outside — JSON (server answers, downlink, emulator
// requests, state files), spool records, HTTP and ISO dates, durations and sizes from configs and
// remote params. Property: JSON that parses serializes to JSON that parses to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCore(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    if let value = try? JSONValue.parse(text), (try? JSONValue.parse(value.serialized)) != value {
        fatalError("JSON round trip changed \(text.prefix(200))")
    }
    _ = ReadingCodec.decode(bytes)
    _ = Timestamp(httpDate: text)
    _ = Timestamp(iso8601: text)
    _ = parseDuration(text)
    _ = parseByteSize(text)
    return 0
}
