// tagoedge-bench: measurements apart from the tests, each against a baseline in the same run.
//
//   swift run -c release tagoedge-bench spool [--readings N] [--fsync-readings M] [--dir DIR]
//
// Prints a table and the ratios the spool's targets are stated in (docs/benchmarks.md).
#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import Emulator
import TagoKit
import Uplink
import EdgeCore
import Spool

// MARK: helpers

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Bytes this process caused to be sent to storage (/proc/self/io write_bytes).
func writeBytes() -> Int64 {
    guard let text = try? readTextFile("/proc/self/io") else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("write_bytes:") {
        return Int64(line.split(separator: " ").last ?? "0") ?? 0
    }
    return 0
}


func removeFiles(_ paths: [String]) { for p in paths { unlink(p) } }

func fail(_ message: String) -> Never {
    let text = "tagoedge-bench: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

struct Result {
    var name: String
    var readings: Int
    var appendSeconds: Double
    var drainSeconds: Double
    var bytesWritten: Int64
    var commits: Int

    var appendRate: Double { Double(readings) / appendSeconds }
    var drainRate: Double { Double(readings) / drainSeconds }
    var bytesPerReading: Double { Double(bytesWritten) / Double(readings) }
}

let batch = 100

/// Typical readings, encoded as the agent stores them.
/// The benchmarks' readings: five sensors in turn, one a second, values with two decimals as
/// the agent stores them (it keeps seven significant digits, so a value is the double nearest
/// its decimal text, as `2150 / 100` is).
func payloads(_ n: Int) -> [[UInt8]] {
    let names = ["env_temperature", "env_pressure", "env_humidity", "light_illuminance", "adc_ain0"]
    return (0..<n).map { i in
        ReadingCodec.encode(Reading(variable: names[i % names.count], value: .number(Double(2150 + i % 1000) / 100), unit: "°C",
                                    time: Timestamp(millisecondsSince1970: 1_780_000_000_000 + Int64(i) * 1000)))
    }
}

// MARK: spool

func runSpool(_ mode: SpoolSyncMode, _ data: [[UInt8]], dir: String) throws -> Result {
    let path = "\(dir)/bench-\(mode.rawValue).spool"
    removeFiles([path])
    let capacity = Int64(max(64 << 20, data.count * 128))
    let spool = try FileSpool(path: path, options: .init(capacityBytes: capacity, sync: mode))
    let before = writeBytes()
    let t0 = now()
    var i = 0
    while i < data.count {
        try spool.append(Array(data[i..<min(i + batch, data.count)]))
        i += batch
    }
    let t1 = now()
    while true {
        let records = try spool.peek(maxRecords: batch, maxBytes: 1 << 20)
        guard let last = records.last else { break }
        try spool.acknowledge(through: last.seq)
    }
    try spool.close()
    let t2 = now()
    let result = Result(name: "spool \(mode.rawValue)", readings: data.count, appendSeconds: t1 - t0, drainSeconds: t2 - t1,
                        bytesWritten: writeBytes() - before, commits: (data.count + batch - 1) / batch)
    removeFiles([path])
    return result
}

// MARK: SQLite, the same work

final class SQLite {
    var db: OpaquePointer?
    init(_ path: String, synchronous: String) {
        guard sqlite3_open(path, &db) == SQLITE_OK else { fail("sqlite3_open \(path)") }
        exec("PRAGMA journal_mode=WAL")
        exec("PRAGMA synchronous=\(synchronous)")
        exec("CREATE TABLE IF NOT EXISTS spool(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    }

    func exec(_ sql: String) {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &err) != SQLITE_OK { fail("\(sql): \(String(cString: err!))") }
    }

    func prepare(_ sql: String) -> OpaquePointer? {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else { fail("prepare \(sql)") }
        return stmt
    }

    deinit { sqlite3_close(db) }
}

func runSQLite(_ synchronous: String, _ data: [[UInt8]], dir: String) throws -> Result {
    let path = "\(dir)/bench-\(synchronous).sqlite"
    removeFiles([path, path + "-wal", path + "-shm"])
    let before = writeBytes()
    var t0 = 0.0, t1 = 0.0
    do {
        let db = SQLite(path, synchronous: synchronous)
        let insert = db.prepare("INSERT INTO spool(seq, payload) VALUES(?, ?)")
        let select = db.prepare("SELECT seq, payload FROM spool ORDER BY seq LIMIT \(batch)")
        let delete = db.prepare("DELETE FROM spool WHERE seq <= ?")
        t0 = now()
        var i = 0
        var seq: Int64 = 0
        while i < data.count {
            db.exec("BEGIN")
            for p in data[i..<min(i + batch, data.count)] {
                seq += 1
                sqlite3_bind_int64(insert, 1, seq)
                _ = p.withUnsafeBytes { sqlite3_bind_blob(insert, 2, $0.baseAddress, Int32($0.count), tagoedge_sqlite_transient()) }
                guard sqlite3_step(insert) == SQLITE_DONE else { fail("insert") }
                sqlite3_reset(insert)
            }
            db.exec("COMMIT")
            i += batch
        }
        t1 = now()
        while true {
            var last: Int64 = -1
            var payloadBytes = 0
            while sqlite3_step(select) == SQLITE_ROW {
                last = sqlite3_column_int64(select, 0)
                payloadBytes += Int(sqlite3_column_bytes(select, 1))
                _ = sqlite3_column_blob(select, 1)
            }
            sqlite3_reset(select)
            if last < 0 { break }
            sqlite3_bind_int64(delete, 1, last)
            guard sqlite3_step(delete) == SQLITE_DONE else { fail("delete") }
            sqlite3_reset(delete)
        }
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        sqlite3_finalize(insert)
        sqlite3_finalize(select)
        sqlite3_finalize(delete)
    }
    let t2 = now()
    let result = Result(name: "sqlite WAL \(synchronous)", readings: data.count, appendSeconds: t1 - t0, drainSeconds: t2 - t1,
                        bytesWritten: writeBytes() - before, commits: (data.count + batch - 1) / batch)
    removeFiles([path, path + "-wal", path + "-shm"])
    return result
}

// MARK: the disk's ceiling

/// A bare loop of pwrite + fdatasync of the spool's commit size: what the disk allows.
func runCeiling(commits: Int, bytesPerCommit: Int, dir: String) -> Result {
    let path = "\(dir)/bench-ceiling.bin"
    removeFiles([path])
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    // Prepared like a new spool file: blocks allocated up front (posix_fallocate).
    _ = posix_fallocate(fd, 0, off_t(commits * bytesPerCommit + 4096))
    let buffer = [UInt8](repeating: 0x5A, count: bytesPerCommit)
    let before = writeBytes()
    let t0 = now()
    for c in 0..<commits {
        _ = buffer.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(4096 + c * bytesPerCommit)) }
        fdatasync(fd)
    }
    let t1 = now()
    close(fd)
    removeFiles([path])
    return Result(name: "bare pwrite+fdatasync", readings: commits * batch, appendSeconds: t1 - t0, drainSeconds: .nan,
                  bytesWritten: writeBytes() - before, commits: commits)
}

// MARK: recovery

func recoveryTime(dir: String) throws -> (seconds: Double, records: Int, cold: Bool) {
    let path = "\(dir)/bench-recovery.spool"
    removeFiles([path])
    do {
        let spool = try FileSpool(path: path, options: .init(capacityBytes: 64 << 20, sync: .none))
        let data = payloads(10_000)
        // Fill the ring and go around it once, so recovery meets a wrapped, full spool.
        for _ in 0..<160 { try spool.append(data) }
        try spool.close()
    }
    var times: [Double] = []
    var records = 0
    var cold = false
    for attempt in 0..<3 {
        if attempt == 0 {
            // Drop the page cache if allowed (root), so the first open reads the disk.
            let fd = open("/proc/sys/vm/drop_caches", O_WRONLY)
            if fd >= 0 {
                sync()
                cold = write(fd, "3", 1) == 1
                close(fd)
            }
        }
        let t0 = now()
        let spool = try FileSpool(path: path, options: .init(capacityBytes: 64 << 20, readOnly: true))
        times.append(now() - t0)
        records = spool.stats.recordCount
        try spool.close()
    }
    removeFiles([path])
    return (times.max() ?? 0, records, cold)
}

// MARK: main

func argument(_ name: String, default value: String) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    return value
}

func flag(_ name: String) -> Bool { CommandLine.arguments.contains(name) }

/// Appends `records` to the spool in commits of `size`, as a gateway's sampling rounds would.
func appendInCommits(_ spool: Spool, _ records: [[UInt8]], of size: Int) throws {
    var i = 0
    while i < records.count {
        try spool.append(Array(records[i..<min(i + size, records.count)]))
        i += size
    }
}

func format(_ v: Double, _ decimals: Int = 0) -> String {
    guard v.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (v * scale).rounded() / scale
    return decimals == 0 ? String(Int64(r)) : String(r)
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }

func spoolBenchmark() throws {
    let n = Int(argument("--readings", default: "200000")) ?? 200_000
    let m = Int(argument("--fsync-readings", default: "20000")) ?? 20_000
    let dir = argument("--dir", default: "/var/tmp")

    let data = payloads(n)
    let fsyncData = Array(data.prefix(m))
    let payloadAverage = Double(data.reduce(0) { $0 + $1.count }) / Double(n)
    print("spool benchmark: \(n) readings without fsync per commit, \(m) with (median of 3 interleaved runs); commits of \(batch) readings; payload \(format(payloadAverage, 1)) bytes; in \(dir)")

    // Runs on a shared disk are noisy: each runs three times, interleaved, and the median is kept.
    var results: [Result] = []
    var noneRuns: [Result] = [], batchRuns: [Result] = [], normalRuns: [Result] = []
    for _ in 0..<3 {
        noneRuns.append(try runSpool(.none, data, dir: dir))
        batchRuns.append(try runSpool(.batch, data, dir: dir))
        normalRuns.append(try runSQLite("NORMAL", data, dir: dir))
    }
    let commitBytes = Int((Double(batch) * ((16 + payloadAverage + 7) / 8 * 8) / 512).rounded(.up)) * 512
    var alwaysRuns: [Result] = [], fullRuns: [Result] = [], ceilingRuns: [Result] = []
    for _ in 0..<3 {
        ceilingRuns.append(runCeiling(commits: m / batch, bytesPerCommit: commitBytes, dir: dir))
        alwaysRuns.append(try runSpool(.always, fsyncData, dir: dir))
        fullRuns.append(try runSQLite("FULL", fsyncData, dir: dir))
    }
    func median(_ runs: [Result]) -> Result { runs.sorted { $0.appendRate < $1.appendRate }[runs.count / 2] }
    let spoolNone = median(noneRuns); results.append(spoolNone)
    let spoolBatch = median(batchRuns); results.append(spoolBatch)
    let sqliteNormal = median(normalRuns); results.append(sqliteNormal)
    let spoolAlways = median(alwaysRuns); results.append(spoolAlways)
    let sqliteFull = median(fullRuns); results.append(sqliteFull)
    let ceiling = median(ceilingRuns); results.append(ceiling)

    print("")
    print(pad("run", 24) + pad("append r/s", 14) + pad("drain r/s", 14) + pad("commits/s", 12) + "bytes written/reading")
    for r in results {
        print(pad(r.name, 24) + pad(format(r.appendRate), 14) + pad(format(r.drainRate), 14) + pad(format(Double(r.commits) / r.appendSeconds), 12)
              + format(r.bytesPerReading, 1))
    }
    print("")
    print("ratios (targets in brackets):")
    print("  spool batch / sqlite NORMAL, append:   \(format(spoolBatch.appendRate / sqliteNormal.appendRate, 2))x  [>= 5]")
    print("  spool none  / sqlite NORMAL, append:   \(format(spoolNone.appendRate / sqliteNormal.appendRate, 2))x  [>= 5]")
    print("  spool always / sqlite FULL, append:    \(format(spoolAlways.appendRate / sqliteFull.appendRate, 2))x  [>= 1.5]")
    print("  spool always / disk ceiling, commits:  \(format(spoolAlways.appendRate / ceiling.appendRate * 100, 1))%  [>= 80%]")
    print("  bytes/reading spool batch / sqlite NORMAL: \(format(spoolBatch.bytesPerReading / sqliteNormal.bytesPerReading, 2))  [<= 0.5]")
    print("  bytes/reading spool always / sqlite FULL:  \(format(spoolAlways.bytesPerReading / sqliteFull.bytesPerReading, 2))  [<= 0.5]")
    print("  sqlite NORMAL writes \(format(sqliteNormal.bytesPerReading / payloadAverage, 1))x the payload; spool batch \(format(spoolBatch.bytesPerReading / payloadAverage, 1))x")
    let recovery = try recoveryTime(dir: dir)
    print("  recovery of a full, wrapped 64 MiB spool (\(recovery.records) records, \(recovery.cold ? "first open with a cold page cache" : "warm page cache")): \(format(recovery.seconds * 1000, 1)) ms  [< 500 ms]")

}

let command = CommandLine.arguments.dropFirst().first ?? "spool"
switch command {
case "spool": try spoolBenchmark()
case "uplink": try uplinkBenchmark()
case "mqtt": try mqttBenchmark()
case "footprint": try footprintBenchmark()
case "encode": try encodeBenchmark()
case "tagotip": try tagoTiPBenchmark()
case "report": try reportBenchmark()
default: fail("usage: tagoedge-bench report [--config FILE] [--hours N] | spool [--readings N] [--fsync-readings M] [--dir DIR] | uplink [--readings N] [--batch N] | mqtt [--readings N] [--batch N] [--inflight N] [--python PATH] | encode [--readings N] [--only alone,walk,both,general] | tagotip [--readings N] [--rounds N] | footprint")
}
