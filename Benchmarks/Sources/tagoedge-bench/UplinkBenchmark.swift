#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Emulator
import Spool
import TagoKit
import Uplink

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Drains spooled readings into the emulator over real HTTP on loopback.
func uplinkBenchmark() throws {
    let n = Int(argument("--readings", default: "100000")) ?? 100_000
    let batchSize = Int(argument("--batch", default: "2000")) ?? 2000
    let dir = argument("--dir", default: "/var/tmp")
    var options = Emulator.Options()
    options.deviceTokens = ["bench-token"]
    options.rateLimits = [:]
    options.mutableRecordLimit = Int.max
    let emulator = try Emulator(options: options)
    let port = try emulator.start()
    defer { emulator.stop() }

    let path = "\(dir)/bench-uplink.spool"
    removeFiles([path])
    let spool = try FileSpool(path: path, options: .init(capacityBytes: 64 << 20, sync: .none))
    defer { removeFiles([path, path + ".dead"]) }
    let readings = payloads(n)
    try appendInCommits(spool, readings, of: 1000)
    var policy = UplinkPolicy()
    policy.maxRecords = batchSize
    let device = TagoDevice(token: "bench-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
    let uplink = HTTPUplink(spool: spool, device: device, deadLetters: DeadLetterFile(path: path + ".dead"), policy: policy)
    let cpu0 = threadCPUSeconds(), process0 = processCPUSeconds(), t0 = now()
    loop: while true {
        switch uplink.step() {
        case .idle: break loop
        case .sent: continue
        case .wait(let ms, let reason, _): fail("the uplink had to wait \(ms) ms: \(reason)")
        }
    }
    let seconds = now() - t0, cpu = threadCPUSeconds() - cpu0, processCPU = processCPUSeconds() - process0
    print("uplink benchmark: \(n) spooled readings drained into the emulator over HTTP on loopback, up to \(batchSize) per request")
    print("  readings/s:                 \(format(Double(uplink.delivered) / seconds))  [>= 50000]")
    print("  requests:                   \(uplink.requests) (\(format(Double(uplink.delivered) / Double(uplink.requests))) readings each)")
    print("  uplink CPU per reading:     \(format(cpu / Double(n) * 1e6, 2)) µs (the draining thread: spool, JSON, libcurl)")
    print("  process CPU per reading:    \(format(processCPU / Double(n) * 1e6, 2)) µs (with the emulator's parsing and storing)")
    print("  wall time:                  \(format(seconds * 1000, 1)) ms")
}
