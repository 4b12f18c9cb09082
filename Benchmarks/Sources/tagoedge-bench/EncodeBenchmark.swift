#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import Spool
import Uplink

/// The MQTT uplink's per-reading work without the network: walking a spool file in place and
/// writing each record's JSON (`ReadingJSONTranscoder`), against the general path (decode to a
/// `Reading`, then `appendDataObjectJSON`) doing the same. Nanoseconds a reading, best of rounds.
func encodeBenchmark() throws {
    let n = Int(argument("--readings", default: "200000")) ?? 200_000
    let rounds = max(1, Int(argument("--rounds", default: "5")) ?? 5)
    let encoded = payloads(n)
    let dir = "/tmp/tagoedge-bench-encode-\(getpid())"
    mkdir(dir, 0o700)
    defer { _ = runProgram("/bin/rm", ["-rf", dir]) }
    let spool = try FileSpool(path: dir + "/spool", options: .init(capacityBytes: max(64 << 20, Int64(n) * 128), sync: .none))
    defer { try? spool.close() }
    try appendInCommits(spool, encoded, of: 100)
    let out = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
    defer { out.deallocate() }
    var sink = 0

    // `--only alone,walk,both,general` runs just those (for profiling one of them).
    let only = argument("--only", default: "alone,walk,both,general").split(separator: ",").map(String.init)
    func best(_ key: String, _ body: () throws -> Void) rethrows -> Double {
        guard only.contains(key) else { return .nan }
        var times: [Double] = []
        for _ in 0..<rounds {
            let t = now()
            try body()
            times.append(now() - t)
        }
        return (times.min() ?? 0) / Double(n) * 1e9
    }
    var transcoder = ReadingJSONTranscoder()
    let alone = best("alone") {
        for r in encoded {
            sink &+= r.withUnsafeBytes { transcoder.write(encoded: $0, into: out) }
        }
    }
    /// Walks the whole spool as the uplink does, a message's worth (100 records) a visit; `each`
    /// gets a record and where the message's bytes so far end, and returns the bytes it adds.
    func walkAll(_ each: (UnsafeRawBufferPointer, Int) -> Int) throws {
        var after: UInt64 = 0
        while true {
            var taken = 0
            var length = 0
            try spool.visit(after: after, maxRecords: 100) { seq, record in
                length += each(record, length)
                after = seq
                taken += 1
                return true
            }
            sink &+= length
            if taken == 0 { break }
        }
    }
    let walk = try best("walk") { try walkAll { record, _ in record.count } }
    let both = try best("both") { try walkAll { record, at in transcoder.write(encoded: record, into: out + at) } }
    let general = best("general") {
        var json: [UInt8] = []
        json.reserveCapacity(256)
        for r in encoded {
            json.removeAll(keepingCapacity: true)
            ReadingCodec.decode(r)?.appendDataObjectJSON(to: &json)
            sink &+= json.count
        }
    }
    print("encode benchmark: \(n) readings of 5 sensors, best of \(rounds) rounds, ns a reading (checksum \(sink % 1000))")
    print("  transcoder alone (records in memory)      \(format(alone, 1))")
    print("  spool file walk alone (visit, CRC checks) \(format(walk, 1))")
    print("  spool file walk + transcoder (the uplink) \(format(both, 1))")
    print("  general path: decode + appendDataObjectJSON \(format(general, 1))")
}
