import Agent
import EdgeCore

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the running agent reports: last reading per sensor, last upload, spool, recent errors.",
        discussion: "Reads the status file `tagoedge run` rewrites every five seconds: in its runtime directory under systemd (/run/tagoedge), else <spool path>.status.json."
    )

    @Option(name: .shortAndLong, help: "The configuration file (to find the spool).") var config: String
    @Flag(help: "Print the status file's JSON.") var json = false

    func run() throws {
        let agentConfig = try AgentConfig.load(path: config)
        let candidates = statusFileCandidates(spool: agentConfig.spool.path)
        guard let text = candidates.lazy.compactMap({ try? readTextFile($0) }).first else {
            printError("no status at \(candidates.joined(separator: " or ")): is `tagoedge run --config \(config)` running?")
            throw ExitCode(Exit.failure)
        }
        let status = try JSONValue.parse(text)
        if json {
            print(status.serialized)
            return
        }
        func n(_ v: JSONValue?) -> String { v?.numberValue.map { JSONValue.format($0) } ?? "-" }
        let updated = status["updated"]?.stringValue ?? "-"
        var rows = [["updated", updated], ["sampled", n(status["sampled"])], ["acknowledged by TagoIO", n(status["acknowledged"])],
                    ["last upload", status["last_upload"]?.stringValue ?? "never"],
                    ["spool", "\(n(status["spool"]?["records"])) waiting, \(n(status["spool"]?["dropped"])) dropped, \(n(status["spool"]?["damaged"])) damaged"],
                    ["sensor failures", n(status["sensor_failures"])]]
        // What was sent, a day at this pace: records (after the report settings) and requests.
        if let up = status["uptime_seconds"]?.numberValue, up >= 60 {
            func perDay(_ v: Double) -> String { JSONValue.format((v * 86_400 / up).rounded()) }
            let spooled = status["spooled"]?.numberValue ?? 0, withheld = status["withheld"]?.numberValue ?? 0
            rows.append(["records", "\(JSONValue.format(spooled)) spooled, \(JSONValue.format(withheld)) withheld by report settings; \(perDay(spooled)) a day at this pace"])
            for (route, count) in status["requests"]?.objectValue ?? [] {
                rows.append(["requests", "\(route): \(n(count)), \(perDay(count.numberValue ?? 0)) a day (plan \(status["plan"]?.stringValue ?? "none"), \(n(status["plan_waits"])) wait(s) for its limit)"])
            }
        }
        if let age = status["updated"]?.stringValue.flatMap(Timestamp.init(iso8601:)), SystemClock().now().millisecondsSince1970 - age.millisecondsSince1970 > 30_000 {
            rows.append(["warning", "the status is older than 30 s: the agent may not be running"])
        }
        print(table(rows))
        let readings = status["last_readings"]?.arrayValue ?? []
        if !readings.isEmpty {
            print("")
            var table2 = [["VARIABLE", "VALUE", "UNIT", "TIME"]]
            for r in readings {
                table2.append([r["variable"]?.stringValue ?? "", r["value"].map { $0.numberValue.map(JSONValue.format) ?? $0.stringValue ?? $0.serialized } ?? "",
                               r["unit"]?.stringValue ?? "", r["time"]?.stringValue ?? ""])
            }
            print(table(table2))
        }
        for e in status["recent_errors"]?.arrayValue ?? [] { print("error: \(e.stringValue ?? "")") }
    }
}
