// libFuzzer target: TagoTiP's strict parser on any bytes (frames, MQTT payloads, answers,
// TagoTiP/S envelopes). Built by scripts/fuzz with the TagoTiP module's sources in one module.
// Property: a frame that parses is rebuilt by the builder into a frame that parses again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTagoTiP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let frame = try? Tip.parseFrame(bytes) {
        guard let rebuilt = try? Tip.encode(frame), (try? Tip.parseFrame(rebuilt)) != nil else {
            fatalError("a frame that parsed did not rebuild into one that parses: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
    }
    if let (counter, body) = try? Tip.parseMQTTPush(bytes), (try? Tip.mqttPush(counter: counter, body: body)) == nil {
        fatalError("an MQTT payload that parsed did not rebuild")
    }
    _ = try? Tip.parseAck(bytes, raw: true)
    _ = try? Tip.parseAck(bytes, raw: false)
    _ = try? TipSecure.open(bytes, key: [UInt8](repeating: 7, count: 16))
    return 0
}
