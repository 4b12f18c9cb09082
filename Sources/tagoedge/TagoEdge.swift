import Agent
import EdgeCore

#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Exit codes scripts rely on (docs: README "Exit codes").
enum Exit {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let partial: Int32 = 3
}

@main
struct TagoEdge: ParsableCommand {
    init() {}
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "tagoedge",
        abstract: "An edge-gateway agent for TagoIO: reads sensors, spools readings, uploads them.",
        discussion: """
        Start here. On a laptop, with no hardware and no account: `tagoedge run --config config/bench.toml \
        --bench` (simulated sensors, a local TagoIO). On a gateway with the package installed: edit \
        /etc/tagoedge/tagoedge.toml (its [device] token), check with `sudo tagoedge doctor`, then \
        `sudo systemctl enable --now tagoedge`; `tagoedge scan --bus 1` lists the chips on /dev/i2c-1. \
        README.md, "In the field", goes step by step.
        """,
        version: version,
        subcommands: [Run.self, Status.self, DoctorCommand.self, BudgetCommand.self, Provision.self, Read.self, Scan.self, CheckConfig.self, SpoolCommand.self, EmulatorCommand.self, DeadLetterCommand.self, AnalysisCommand.self]
    )

    /// Runs the command line, mapping errors to the documented exit codes (2 for bad usage).
    static func main() {
        lineBufferStandardOutput()
        do {
            let command = try CommandLineParser.parse(TagoEdge.self, Array(CommandLine.arguments.dropFirst()))
            try command.run()
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch let errors as ConfigErrors {
            printError(errors.description)
            Glibc.exit(Exit.usage)
        } catch let usage as ValidationError {
            printError("error: \(usage.message)\nsee: tagoedge --help")
            Glibc.exit(Exit.usage)
        } catch {
            printError("error: \(error)")
            Glibc.exit(Exit.failure)
        }
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    var bytes = Array(line.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}

/// Standard output line by line, also into pipes and journald (Swift's print is otherwise
/// block-buffered there, and a long-running command would show nothing).
func lineBufferStandardOutput() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
