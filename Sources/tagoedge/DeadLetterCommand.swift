import EdgeCore
import Uplink

struct DeadLetterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letter",
        abstract: "List the readings TagoIO refused, which the uplink set aside so the rest could flow.",
        discussion: "The file is JSON lines: seq, at, status, reason and the data object. Default path: <spool path>.dead-letter.jsonl."
    )

    @Argument(help: "The dead-letter file.") var path: String
    @Flag(help: "Print the JSON lines as stored.") var json = false

    func run() throws {
        let entries = try DeadLetterFile.read(path)
        if json {
            for e in entries { print(e.serialized) }
            return
        }
        if entries.isEmpty {
            print("\(path): no readings were refused")
            return
        }
        var rows = [["SEQ", "AT", "STATUS", "VARIABLE", "REASON"]]
        for e in entries {
            rows.append([e["seq"]?.numberValue.map { JSONValue.format($0) } ?? "-", e["at"]?.stringValue ?? "-",
                         e["status"]?.numberValue.map { JSONValue.format($0) } ?? "local", e["object"]?["variable"]?.stringValue ?? "-",
                         e["reason"]?.stringValue ?? ""])
        }
        print(table(rows))
    }
}
