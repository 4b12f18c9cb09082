import Agent
import EdgeCore

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this gateway, from its configuration to TagoIO, and say how to fix what is wrong.",
        discussion: """
            Checks: the config is valid; the token is readable and accepted (GET /info); each bus exists and the \
            service user may use it; each sensor answers with the expected chip; the clock is synchronised; the API \
            and the MQTT broker are reachable with TLS verified; the spool directory is writable with room to spare; \
            the systemd unit is installed and enabled. Changes nothing. Exit status: 0 no check failed (warnings \
            allowed), 1 some check failed.
            """
    )

    @Option(name: .shortAndLong, help: "The configuration file.")
    var config = "/etc/tagoedge/tagoedge.toml"

    @Flag(help: "Print JSON: {\"checks\": [{check, subject, status, detail, fix}], \"failed\": N, \"warnings\": N}.")
    var json = false

    @Flag(help: "Do not read the sensors (only check that their buses are there).")
    var noRead = false

    @Option(help: "The user the service runs as.")
    var serviceUser = "tagoedge"

    @Option(help: ArgumentHelp("A prefix for system paths (/dev, /sys, /etc): a gateway's SD card mounted here, or a test's folder.", visibility: .hidden))
    var systemRoot = ""

    func run() throws {
        var options = DoctorOptions(configPath: config)
        options.systemRoot = systemRoot
        options.serviceUser = serviceUser
        options.readSensors = !noRead
        let checks = Doctor(options: options).run()
        let failed = checks.filter { $0.status == .failed }.count
        let warnings = checks.filter { $0.status == .warning }.count
        if json {
            print(JSONValue.object([("checks", .array(checks.map(\.json))), ("failed", .number(Double(failed))),
                                    ("warnings", .number(Double(warnings)))]).serialized)
        } else {
            print("tagoedge doctor: \(config)")
            for c in checks {
                let mark: String
                switch c.status {
                case .ok: mark = "ok  "
                case .warning: mark = "WARN"
                case .failed: mark = "FAIL"
                case .skipped: mark = "skip"
                }
                print("\(mark)  \(c.check.padding(8))\(c.subject): \(c.detail)")
                if let fix = c.fix, c.status == .failed || c.status == .warning { print("      \("".padding(8))fix: \(fix)") }
            }
            print(failed == 0 && warnings == 0 ? "all checks passed" : "\(failed) failed, \(warnings) warning(s)")
        }
        if failed > 0 { throw ExitCode(Exit.failure) }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
