import Agent
import EdgeCore

struct AnalysisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analysis",
        abstract: "Analyses at the edge, after TagoIO's analysis model.",
        subcommands: [RunAnalysis.self]
    )
}

struct RunAnalysis: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run any executable as an analysis: context and scope as JSON on its standard input, its log captured.",
        discussion: """
            The program reads {"context": {"analysis", "token", "environment": [{key, value}]}, "scope": [data objects]} \
            from standard input. Lines it prints that are TagoIO data objects (or arrays of them) are its output \
            readings; every other line, and standard error, is its log. It is killed at --timeout (30 s, as in TagoIO). \
            Exit status: the program's; 1 if it was killed or could not start.
            """
    )

    @Argument(help: "The executable (a path, or a name on PATH).") var program: String
    @Option(name: .customLong("arg"), help: "An argument for the program (repeatable).") var arguments: [String] = []
    @Option(name: .customLong("env"), help: "KEY=VALUE in the context's environment (repeatable).") var environment: [String] = []
    @Option(help: "A file holding the scope: a JSON array of TagoIO data objects ('-' for standard input).") var scope: String?
    @Option(help: "The time limit.") var timeout = "30s"
    @Option(help: "The token the context carries (a device token, for the program's own API calls): env:NAME or file:/path; a literal is visible to every user in ps and is warned about.") var token = ""
    @Flag(help: "Print the output readings as JSON lines, and the log on standard error.") var json = false

    func run() throws {
        var analysis = EdgeAnalysis(name: program.split(separator: "/").last.map(String.init) ?? program, program: program)
        analysis.arguments = arguments
        for pair in environment {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw ValidationError("--env '\(pair)': expected KEY=VALUE") }
            analysis.environment.append((kv[0], kv[1]))
        }
        guard let ms = parseDuration(timeout), ms >= 100 else { throw ValidationError("--timeout '\(timeout)' is not a duration of at least 100ms") }
        analysis.timeoutMilliseconds = ms
        var readings: [Reading] = []
        if let scope {
            let text: String
            do {
                text = scope == "-" ? readAllStandardInput() : try readTextFile(scope)
            } catch {
                throw ValidationError("--scope: \(error)")
            }
            let now = SystemClock().now()
            do {
                let parsed = try JSONValue.parse(text)
                for (i, object) in (parsed.arrayValue ?? [parsed]).enumerated() {
                    do {
                        readings.append(try dataObjectToReading(object, now: now))
                    } catch {
                        throw ValidationError("--scope item \(i + 1): \(error)")
                    }
                }
            } catch let e as ValidationError {
                throw e
            } catch {
                throw ValidationError("--scope: not JSON: \(error)")
            }
        }
        var contextToken = ""
        if !token.isEmpty {
            let source = TokenSource(token)
            if case .literal = source {
                printError("warning: --token with the token itself puts it on the command line, where every user sees it (ps); use --token env:NAME or --token file:/path")
            }
            do {
                contextToken = try source.resolve().token
            } catch {
                throw ValidationError("--token: \(error)")
            }
        }
        let result = EdgeAnalysisRunner.run(analysis, scope: readings, token: contextToken)
        for line in result.log {
            if json { printError(line) } else { print("log: \(line)") }
        }
        for problem in result.rejected { printError("output refused: \(problem)") }
        for r in result.readings {
            if json {
                print(r.dataObject.serialized)
            } else {
                print("reading: \(r.variable) = \(r.value.display)\(r.unit.map { " " + $0 } ?? "")  (\(r.time.iso8601))")
            }
        }
        if !json { printError("\(analysis.name): \(result.timedOut ? "killed at its time limit" : result.status.map { "exit status \($0)" } ?? "did not start") after \(result.milliseconds) ms") }
        guard let status = result.status else { throw ExitCode(Exit.failure) }
        if status != 0 { throw ExitCode(status) }
    }
}

func readAllStandardInput() -> String {
    var lines: [String] = []
    while let line = readLine(strippingNewline: false) { lines.append(line) }
    return lines.joined()
}
