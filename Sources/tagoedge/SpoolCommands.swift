import Agent
import EdgeCore
import Spool

struct SpoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Inspect, dump or append to a spool file.",
        subcommands: [Inspect.self, Dump.self, Append.self]
    )

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a spool's counters (read-only: works while the agent runs).")

        @Argument(help: "The spool file.") var path: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let spool = try FileSpool(path: path, options: .init(readOnly: true))
            let s = spool.stats
            let report = spool.openReport
            if json {
                func seq(_ v: UInt64?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }
                print(JSONValue.object([
                    ("path", .string(path)), ("capacity_bytes", .number(Double(s.capacityBytes))), ("used_bytes", .number(Double(s.usedBytes))),
                    ("records", .number(Double(s.recordCount))), ("oldest_seq", seq(s.oldestSeq)), ("newest_seq", seq(s.newestSeq)),
                    ("acknowledged_through", .number(Double(s.acknowledgedThrough))), ("dropped", .number(Double(s.dropped))),
                    ("damaged", .number(Double(s.damaged))), ("damaged_now", .number(Double(report.damaged))),
                ]).serialized)
                return
            }
            let percent = s.capacityBytes > 4096 ? Double(s.usedBytes) * 100 / Double(s.capacityBytes - 4096) : 0
            print(table([
                ["path", path],
                ["capacity", "\(s.capacityBytes) bytes"],
                ["used", "\(s.usedBytes) bytes (\(JSONValue.format((percent * 10).rounded() / 10))%)"],
                ["records", "\(s.recordCount) unacknowledged"],
                ["oldest seq", s.oldestSeq.map(String.init) ?? "-"],
                ["newest seq", s.newestSeq.map(String.init) ?? "-"],
                ["acknowledged through", "\(s.acknowledgedThrough)"],
                ["dropped", "\(s.dropped) (full spool, over its life)"],
                ["damaged", "\(s.damaged) (cut away, over its life)\(report.damaged > 0 ? "; \(report.damaged) found now" : "")"],
            ]))
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the unacknowledged readings, oldest first, with their sequence numbers.")

        @Argument(help: "The spool file.") var path: String
        @Flag(help: "JSON lines: one TagoIO data object per line, with \"seq\".") var json = false

        func run() throws {
            let spool = try FileSpool(path: path, options: .init(readOnly: true))
            if !json { print(table([["SEQ", "TIME", "VARIABLE", "VALUE", "UNIT"]])) }
            var undecodable = 0
            try spool.forEachRecord { record in
                guard let r = ReadingCodec.decode(record.payload) else {
                    undecodable += 1
                    return true
                }
                if json {
                    guard case .object(let members) = r.dataObject else { return true }
                    print(JSONValue.object([("seq", .number(Double(record.seq)))] + members).serialized)
                } else {
                    print("\(record.seq)  \(r.time.iso8601)  \(r.variable)  \(r.value.display)  \(r.unit ?? "")")
                }
                return true
            }
            if undecodable > 0 { printError("warning: \(undecodable) record(s) are not readings this version can decode") }
        }
    }

    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append readings (TagoIO data objects, one JSON object per line on stdin); print `seq N` once each is durable.",
            discussion: "For scripts on the gateway while the agent is stopped (the spool is locked while open). Exit status 3 if any line was rejected."
        )

        @Argument(help: "The spool file (created if missing).") var path: String
        @Option(help: "always | batch | none (default: the config's, or batch).") var sync: String?
        @Option(help: "Capacity of a new spool, e.g. 64MiB (default: the config's, or 64MiB).") var capacity: String?
        @Option(name: .shortAndLong, help: "Take sync mode and capacity from this configuration file.") var config: String?

        func run() throws {
            var options = FileSpool.Options()
            if let config { options = try AgentConfig.load(path: config).spool.options }
            if let sync {
                guard let mode = SpoolSyncMode(rawValue: sync) else { throw ValidationError("--sync must be always, batch or none") }
                options.sync = mode
            }
            if let capacity {
                guard let bytes = parseByteSize(capacity), bytes >= 64 << 10 else { throw ValidationError("--capacity '\(capacity)' is not a size of at least 64KiB") }
                options.capacityBytes = bytes
            }
            let spool = try FileSpool(path: path, options: options)
            for note in [spool.openReport.reason, spool.openReport.capacityNote].compactMap({ $0 }) { printError("note: \(note)") }
            let clock = SystemClock()
            var waiting: [UInt64] = []
            var rejected = 0
            var lineNumber = 0
            func report(through durable: UInt64) {
                while let first = waiting.first, first <= durable {
                    print("seq \(first)")
                    waiting.removeFirst()
                }
            }
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                do {
                    let reading = try dataObjectToReading(JSONValue.parse(line), now: clock.now())
                    guard let seqs = try spool.append([ReadingCodec.encode(reading)]) else { continue }
                    waiting.append(seqs.upperBound)
                    if options.sync == .batch { try spool.flushIfDue() }
                    report(through: options.sync == .none ? UInt64.max : spool.stats.durableThrough)
                } catch let e as JSONParseError {
                    rejected += 1
                    printError("stdin line \(lineNumber): not JSON: \(e)")
                } catch let e as DataObjectError {
                    rejected += 1
                    printError("stdin line \(lineNumber): \(e.message)")
                }
            }
            try spool.close()
            report(through: UInt64.max)
            if rejected > 0 { throw ExitCode(Exit.partial) }
        }
    }
}

