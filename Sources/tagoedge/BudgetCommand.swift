import Agent
import EdgeCore
import TagoKit

struct BudgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Data records, bytes and requests a day for a configuration, against the TagoIO plan's limits.",
        discussion: """
        For every enabled sensor: readings a day at its interval, and records sent a day under its \
        [sensor.report] settings (windows exactly; a deadband between its heartbeat and every \
        reading, or by simulating 24 hours when the sensor is simulated). Then the requests a \
        minute against the plan's per-minute limit ([device] plan) and the days until a mutable \
        device holds TagoIO's 50,000 records. `tagoedge status` shows what was actually sent.
        """
    )

    @Option(name: .shortAndLong, help: "The configuration file.") var config: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let agentConfig = try AgentConfig.load(path: config)
        let b = estimateBudget(agentConfig)
        let limit = b.plan?[b.route]
        let paramsPerMinute = 60_000 / Double(max(b.paramsIntervalMilliseconds, 1))
        func requests(_ records: Double) -> Double { b.requestsPerMinute(recordsPerDay: records) }
        if json {
            let vars: [JSONValue] = b.variables.map { v in
                .object([("sensor", .string(v.sensor)), ("variable", .string(v.variable)), ("read_per_day", .number(v.readPerDay.rounded())),
                         ("sent_per_day", .number(v.sentPerDay.rounded())), ("sent_at_least_per_day", .number(v.sentAtLeast.rounded())),
                         ("simulated", .bool(v.simulated))])
            }
            func side(_ records: Double) -> JSONValue {
                .object([("records_per_day", .number(records.rounded())), ("records_per_month", .number((records * 30).rounded())),
                         ("bytes_per_day", .number(b.bytesPerDay(recordsPerDay: records).rounded())),
                         ("requests_per_minute", .number((requests(records) * 10).rounded() / 10))])
            }
            print(JSONValue.object([
                ("plan", b.plan.map { .string($0.name) } ?? .null), ("route", .string(b.route.rawValue)), ("limit_per_minute", limit.map { .number(Double($0)) } ?? .null),
                ("params_requests_per_minute", .number(paramsPerMinute)),
                ("as_read", side(b.readPerDay)), ("with_report", side(b.sentPerDay)), ("variables", .array(vars)),
            ]).serialized)
            return
        }
        print("budget for \(config): plan \(b.plan?.name ?? "none") (TagoIO's limits a minute, shared by every device of the profile)")
        var rows = [["SENSOR", "VARIABLE", "READ/DAY", "SENT/DAY", "HOW"]]
        for v in b.variables {
            let how: String
            if v.sentPerDay == v.readPerDay && v.sentAtLeast == v.readPerDay {
                how = "every reading"
            } else if v.sentAtLeast == v.sentPerDay {
                how = "window"
            } else if v.simulated {
                how = "deadband, 24 h simulated (at least \(count(v.sentAtLeast)))"
            } else {
                how = "deadband: between \(count(v.sentAtLeast)) and \(count(v.sentPerDay)), by the signal"
            }
            rows.append([v.sensor, v.variable, count(v.readPerDay), count(v.sentPerDay), how])
        }
        printTable(rows)
        print("")
        for (label, records) in [("as read", b.readPerDay), ("with the report settings", b.sentPerDay)] {
            let perMinute = requests(records)
            let share = limit.map { " of \($0) (\(Int((perMinute / Double($0) * 100).rounded()))%)" } ?? ""
            let fill = records > 0 ? " · a mutable device's \(count(Double(PlanLimits.mutableDeviceRecords))) records in \(days(Double(PlanLimits.mutableDeviceRecords) / records))" : ""
            print("\(label): \(count(records)) records a day, \(count(records * 30)) a month · \(megabytes(b.bytesPerDay(recordsPerDay: records))) a day · \(b.route.rawValue) at most \(oneDecimal(perMinute)) a minute\(share)\(fill)")
        }
        if let p = b.plan?[.params] { print("configuration_params: \(oneDecimal(paramsPerMinute)) GET /device/params a minute of \(p)") }
        if let limit, requests(b.sentPerDay) > Double(limit) {
            print("over the plan: the agent keeps to \(limit) a minute, and readings wait in the spool; raise upload_interval or batch_size, or add report settings")
        }
    }

    func count(_ v: Double) -> String {
        let n = Int(v.rounded())
        var s = String(n)
        var i = s.count - 3
        while i > 0 { s.insert(",", at: s.index(s.startIndex, offsetBy: i)); i -= 3 }
        return s
    }

    func oneDecimal(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return "\(t / 10).\(t % 10)"
    }

    func megabytes(_ bytes: Double) -> String { bytes >= 1_000_000 ? "\(oneDecimal(bytes / 1_000_000)) MB" : "\(Int((bytes / 1000).rounded())) kB" }

    func days(_ d: Double) -> String { d >= 2 ? "\(Int(d.rounded())) days" : "\(oneDecimal(d * 24)) hours" }

    func printTable(_ rows: [[String]]) {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        for r in rows {
            print(r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  "))
        }
    }
}
