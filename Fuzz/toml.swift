// libFuzzer target: the configuration file's TOML parser on any text (a config file is bad input
// as much as a server's answer is).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTOML(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = try? TOML.parse(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self))
    return 0
}
