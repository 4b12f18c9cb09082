import Foundation
import Testing
import EdgeCore
import Spool

/// Kills a `tagoedge spool append --sync always` child with SIGKILL at random moments and checks
/// that every append it reported durable is recovered, in order, with no duplicate and no gap
/// other than drops by the full policy.
@Suite(.serialized) struct SpoolCrashTests {
    @Test func sigkillNeverLosesAReportedAppend() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = NSTemporaryDirectory() + "tagoedge-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/spool"
        var reported: [UInt64] = []
        var rng = SystemRandomNumberGenerator()
        var nextValue = 0
        let kills = 60
        for iteration in 0..<kills {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["spool", "append", path, "--sync", "always", "--capacity", "96KiB"]
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Feed readings as fast as the child takes them, from another thread.
            let writeFD = input.fileHandleForWriting.fileDescriptor
            let start = nextValue
            let feeder = Thread {
                var v = start
                while true {
                    let line = "{\"variable\":\"counter\",\"value\":\(v)}\n"
                    let n = line.withCString { write(writeFD, $0, strlen($0)) }
                    if n <= 0 { break }
                    v += 1
                }
            }
            feeder.start()
            // Read `seq N` lines until a random count, then kill without warning.
            let want = Int.random(in: 1...40, using: &rng)
            var got = 0
            var buffer: [UInt8] = []
            let readFD = output.fileHandleForReading.fileDescriptor
            var chunk = [UInt8](repeating: 0, count: 4096)
            while got < want {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                buffer += chunk.prefix(n)
                while let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    if line.hasPrefix("seq "), let s = UInt64(line.dropFirst(4)) {
                        reported.append(s)
                        got += 1
                    }
                }
            }
            if Bool.random(using: &rng) { usleep(UInt32.random(in: 0...3000, using: &rng)) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? input.fileHandleForWriting.close()
            nextValue += 1_000_000  // values from each run are distinct and increasing

            let spool = try FileSpool(path: path, options: .init(readOnly: true))
            var seqs: [UInt64] = []
            var values: [Double] = []
            try spool.forEachRecord { r in
                seqs.append(r.seq)
                values.append(ReadingCodec.decode(r.payload)?.value.number ?? -1)
                return true
            }
            let first = try #require(seqs.first, "iteration \(iteration): spool is empty")
            #expect(seqs == Array(first...(seqs.last ?? first)), "iteration \(iteration): a gap or a duplicate in \(seqs.prefix(20))…")
            #expect(values == values.sorted() && Set(values).count == values.count, "iteration \(iteration): readings out of order")
            let missing = reported.filter { $0 >= first && !seqs.contains($0) }
            #expect(missing.isEmpty, "iteration \(iteration): reported durable but lost: \(missing)")
            #expect(seqs.last! >= reported.max()!, "iteration \(iteration): the newest reported append is gone")
            if first > 1 { #expect(spool.stats.dropped > 0, "records before \(first) vanished without being counted as dropped") }
            try spool.close()
        }
        #expect(reported.count >= kills)
    }
}
