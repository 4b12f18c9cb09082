#if canImport(Glibc)
import Glibc
#endif
import EdgeCore

/// A new empty folder under /tmp, removed with everything in it when the test process exits
/// (a caller may remove it sooner). Runtimes' spools are 64 MiB by default: left behind, one run
/// of the suite used to leave almost 1 GB in /tmp.
public func makeTemporaryDirectory(_ prefix: String = "tagoedge-test") -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    TemporaryDirectories.shared.add(path)
    return path
}

/// The folders `makeTemporaryDirectory` made, removed at exit.
final class TemporaryDirectories: @unchecked Sendable {
    static let shared: TemporaryDirectories = {
        atexit { TemporaryDirectories.shared.removeAll() }
        return TemporaryDirectories()
    }()
    private let lock = Lock()
    private var paths: [String] = []

    func add(_ path: String) { lock.withLock { paths.append(path) } }

    func removeAll() {
        for path in lock.withLock({ paths }) { removeTree(path) }
    }
}

/// Removes `path` and everything under it (no shell, no symlink followed).
public func removeTree(_ path: String) {
    guard let dir = opendir(path) else { unlink(path); return }
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != ".", name != ".." else { continue }
        let child = path + "/" + name
        if e.pointee.d_type == UInt8(DT_DIR) { removeTree(child) } else { unlink(child) }
    }
    closedir(dir)
    rmdir(path)
}

/// Waits until `condition` holds, checking it often, for at most `seconds` of real time. Returns
/// whether it held. For awaiting another thread's reaction, never as a fixed sleep.
@discardableResult
public func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let clock = SystemClock()
    let deadline = clock.nanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        if clock.nanoseconds() > deadline { return false }
        sched_yield()
        clock.sleep(microseconds: 200)
    }
    return true
}

/// Advances a manual clock in `step`s up to `total` milliseconds; after each step, waits until
/// `sleepers` threads sleep on `signal` having seen the new time (every service has acted on the
/// step), then calls `afterEach`. Returns false if they did not settle.
public func advance(_ clock: ManualClock, by total: Int64, step: Int64, parked signal: StopSignal, sleepers: Int, afterEach: () -> Void = {}) -> Bool {
    guard settle(clock, signal, sleepers) else { return false }
    var moved: Int64 = 0
    while moved < total {
        let d = min(step, total - moved)
        clock.advance(milliseconds: d)
        moved += d
        guard settle(clock, signal, sleepers) else { return false }
        afterEach()
    }
    return true
}

/// Waits until `sleepers` threads sleep on `signal` having seen the clock's current time.
public func settle(_ clock: ManualClock, _ signal: StopSignal, _ sleepers: Int) -> Bool {
    waitUntil { signal.parked(seen: clock.nanoseconds()) >= sleepers }
}

/// A seeded generator (SplitMix64) that says its seed, so a failing randomized test can be
/// replayed: set `TAGOEDGE_SEED` to the printed value.
public struct SeededRandom: RandomNumberGenerator {
    public let seed: UInt64
    private var state: UInt64

    public init(_ label: String) {
        let fromEnvironment = getenv("TAGOEDGE_SEED").flatMap { UInt64(String(cString: $0)) }
        seed = fromEnvironment ?? UInt64.random(in: 1...UInt64.max)
        state = seed
        print("\(label): seed \(seed) (replay with TAGOEDGE_SEED=\(seed))")
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Appends TagoTiP payloads, one a line, to the file `TAGOEDGE_TIP_CORPUS` names (when set), for
/// `scripts/tagotip-crosscheck` to run through TagoIO's reference codec.
public func recordTagoTiPCorpus(_ payloads: [[UInt8]]) {
    guard let path = getenv("TAGOEDGE_TIP_CORPUS").map({ String(cString: $0) }), let f = fopen(path, "a") else { return }
    for p in payloads {
        _ = p.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fputc(0x0A, f)
    }
    fclose(f)
}
