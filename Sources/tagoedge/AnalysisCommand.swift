#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Agent
import EdgeCore
import TagoKit

struct AnalysisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analysis",
        abstract: "Analyses at the edge, after TagoIO's analysis model.",
        subcommands: [RunAnalysis.self, ServeAnalysis.self]
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

/// A TagoIO analysis set to run externally, run on this machine when TagoIO triggers it.
struct ServeAnalysis: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Wait for TagoIO to trigger an analysis (run externally) and run a program for each trigger.",
        discussion: """
            Listens on TagoIO's analysis_trigger channel with the analysis token, as TagoIO's current SDKs do for an \
            analysis that runs externally (server-sent events at <sse>/events). Each trigger runs the program as \
            `tagoedge analysis run` does: {"context": {"analysis", "token", "environment"}, "scope"} on its standard \
            input, killed at --timeout. Its log lines go to the analysis's console in TagoIO; the data objects it prints \
            go to the device of --device-token. Reconnects with backoff (1 s doubling to 1 min). SIGINT/SIGTERM stop it.
            """
    )

    @Argument(help: "The executable (a path, or a name on PATH).") var program: String
    @Option(name: .customLong("arg"), help: "An argument for the program (repeatable).") var arguments: [String] = []
    @Option(help: "The analysis token: env:NAME or file:/path.") var token = "env:TAGO_ANALYSIS_TOKEN"
    @Option(name: .customLong("device-token"), help: "Where the program's output readings go: a device token, env:NAME or file:/path (none: they are logged only).")
    var deviceToken: String?
    @Option(help: "TagoIO API base (default: $TAGOIO_API, else https://api.tago.io).") var api: String?
    @Option(help: "TagoIO's event stream base (default: from the API: https://sse.tago.io for api.tago.io, https://sse.<region>.tago.io for a region, else the API itself).")
    var sse: String?
    @Option(help: "The time limit of a run.") var timeout = "30s"
    @Option(help: "Stop after this many triggers (0: never; for tests and scripts).") var count = 0

    func run() throws {
        let apiBase = api ?? getenv("TAGOIO_API").map { String(cString: $0) } ?? "https://api.tago.io"
        let sseBase = sse ?? Self.sseBase(forAPI: apiBase)
        func resolve(_ source: String, _ option: String) throws -> String {
            if case .literal = TokenSource(source) { throw ValidationError("\(option): give env:NAME or file:/path; a token on the command line is visible to every user (ps)") }
            do { return try TokenSource(source).resolve().token } catch { throw ValidationError("\(option): \(error)") }
        }
        let analysisToken = try resolve(token, "--token")
        let device = try deviceToken.map { TagoDevice(token: try resolve($0, "--device-token"), endpoint: TagoEndpoint(api: apiBase), http: CurlHTTPClient()) }
        guard let ms = parseDuration(timeout), ms >= 100 else { throw ValidationError("--timeout '\(timeout)' is not a duration of at least 100ms") }
        if apiBase.hasPrefix("http://") && !isLoopbackURL(apiBase) { printError("warning: \(apiBase) is plain HTTP: the analysis token crosses the network in clear") }
        let endpoint = TagoEndpoint(api: apiBase)
        let services = TagoServices(analysisToken: analysisToken, endpoint: endpoint, http: CurlHTTPClient())
        let stop = installStopSignals()
        var backoff: UInt32 = 1
        var runs = 0
        let url = sseBase + "/events?channels=analysis_trigger&token=" + percentEncodeQuery(analysisToken)
        while !stop() && (count == 0 || runs < count) {
            let client = ServerSentEventClient(url: url)
            do {
                try client.run(keepGoing: { !stop() && (count == 0 || runs < count) }, onOpen: {
                    print("analysis serve: listening for triggers on \(sseBase)")
                    backoff = 1
                }) { event in
                    guard let payload = (try? JSONValue.parse(event.data))?["payload"] else { return }
                    runs += 1
                    serveOne(payload, timeoutMilliseconds: ms, services: services, device: device)
                }
            } catch {
                if stop() || (count > 0 && runs >= count) { break }
                printError("analysis serve: \(error.description.replacingOccurrences(analysisToken, with: "…")); connecting again in \(backoff) s")
                for _ in 0..<(backoff * 10) where !stop() { usleep(100_000) }
                backoff = min(backoff * 2, 60)
            }
        }
    }

    /// One trigger: the program with TagoIO's context and scope; its log to the console, its output to the device.
    func serveOne(_ payload: JSONValue, timeoutMilliseconds: Int64, services: TagoServices, device: TagoDevice?) {
        var analysis = EdgeAnalysis(name: payload["analysis_id"]?.stringValue ?? "analysis", program: program)
        analysis.arguments = arguments
        analysis.timeoutMilliseconds = timeoutMilliseconds
        for e in payload["environment"]?.arrayValue ?? [] {
            if let k = e["key"]?.stringValue, !k.isEmpty { analysis.environment.append((k, e["value"]?.stringValue ?? "")) }
        }
        let now = SystemClock().now()
        let scope = (payload["data"]?.arrayValue ?? []).compactMap { try? dataObjectToReading($0, now: now) }
        let result = EdgeAnalysisRunner.run(analysis, scope: scope, token: payload["token"]?.stringValue ?? "")
        let outcome = result.timedOut ? "killed at its time limit (\(formatDuration(timeoutMilliseconds)))" : result.status.map { "exit status \($0)" } ?? "did not start"
        var lines = result.log + result.rejected.map { "output refused: \($0)" }
        lines.append("\(analysis.name): \(outcome) after \(result.milliseconds) ms, \(result.readings.count) output reading(s)")
        for line in lines {
            print("analysis \(analysis.name): \(line)")
            do { try services.log(line) } catch { printError("analysis serve: console: \(error)") }
        }
        guard !result.readings.isEmpty else { return }
        if let device {
            do { _ = try device.insert(result.readings) } catch { printError("analysis serve: output readings not stored: \(error)") }
        }
    }

    static func sseBase(forAPI api: String) -> String {
        if api == "https://api.tago.io" { return "https://sse.tago.io" }
        if api.hasPrefix("https://api."), api.hasSuffix(".tago.io") { return "https://sse." + api.dropFirst("https://api.".count) }
        return api
    }
}

/// Whether a URL's host is this machine.
func isLoopbackURL(_ url: String) -> Bool {
    let host = url.split(separator: "/").dropFirst(1).first.map { $0.split(separator: ":").first.map(String.init) ?? "" } ?? ""
    return host == "127.0.0.1" || host == "localhost" || host == "[::1]"
}

/// A query value, percent-encoded (letters, digits and `-._~` stay).
func percentEncodeQuery(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        if (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == 45 || b == 46 || b == 95 || b == 126 {
            out.append(Character(UnicodeScalar(b)))
        } else {
            out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
        }
    }
    return out
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
