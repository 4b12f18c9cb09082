import Glibc

// libFuzzer target: what the cloud and the broker can make the agent change at run time: a
// downlink message (key=value lines or a JSON object), each setting validated and applied, and the
// saved settings file read back. Properties: no trap; every setting applied passes validation;
// what the runtime then reads (intervals, windows, deadbands, log level) is within its bounds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSettings(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let sensors = ["env", "rain"]
    let remote = RemoteSettings(path: nil, sensors: sensors, outputs: ["relay"])
    let (settings, _) = parseDownlinkSettings(text)
    if settings.count > 32 { fatalError("\(settings.count) settings taken from one message") }
    for (key, value) in settings where remote.problem(key: key, value: value) == nil {
        remote.apply(key: key, value: value)
    }
    check(remote, sensors)
    // The same text as the saved settings file, read at start (when it could be one: a file
    // write per input would slow the rest tenfold).
    guard text.hasPrefix("{") else { return 0 }
    let path = "/tmp/fuzz-settings-\(getpid()).json"
    if let fd = Optional(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)), fd >= 0 {
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
        check(RemoteSettings(path: path, sensors: sensors, outputs: ["relay"], warn: { _ in }), sensors)
    }
    return 0
}

func check(_ remote: RemoteSettings, _ sensors: [String]) {
    for sensor in sensors {
        let interval = remote.intervalMilliseconds(sensor: sensor, default: 1_000)
        if !(100...maxDurationMilliseconds).contains(interval) { fatalError("interval \(interval) ms for \(sensor)") }
        let r = remote.report(sensor: sensor, base: ReportSettings())
        for ms in [r.heartbeatMilliseconds, r.windowMilliseconds].compactMap({ $0 }) where !(1_000...maxDurationMilliseconds).contains(ms) {
            fatalError("a report duration of \(ms) ms for \(sensor)")
        }
        for d in [r.delta, r.deltaPercent].compactMap({ $0 }) where !(d.isFinite && d > 0) { fatalError("a deadband of \(d) for \(sensor)") }
        _ = remote.enabled(sensor: sensor, default: true)
    }
    let upload = remote.uploadIntervalMilliseconds(default: 5_000)
    if !(100...maxDurationMilliseconds).contains(upload) { fatalError("upload interval \(upload) ms") }
    _ = remote.logLevel(default: .info)
    _ = remote.output("relay", default: false)
}
