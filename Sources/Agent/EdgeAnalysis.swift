#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import TagoKit
import Hardware

/// An analysis run at the edge, after TagoIO's analysis model: a program gets a `context`
/// (environment variables, a token, the analysis's name) and a `scope` (the readings that
/// triggered it) as one JSON object on its standard input, and has a time limit (30 s by default,
/// as in TagoIO). What it prints on standard output is its log, except lines that are TagoIO data
/// objects (or arrays of them): those are its output readings. Standard error is log too.
public struct EdgeAnalysis: Sendable, Equatable {
    public var name: String
    /// The executable and its arguments.
    public var program: String
    public var arguments: [String] = []
    public var environment: [(key: String, value: String)] = []
    public var timeoutMilliseconds: Int64 = 30_000
    /// Run when a reading of one of these variables is taken…
    public var variables: [String] = []
    /// …and/or this often (0: never on a timer).
    public var intervalMilliseconds: Int64 = 0
    public var line = 0

    public init(name: String, program: String) {
        self.name = name
        self.program = program
    }

    public static func == (a: EdgeAnalysis, b: EdgeAnalysis) -> Bool {
        a.name == b.name && a.program == b.program && a.arguments == b.arguments && a.timeoutMilliseconds == b.timeoutMilliseconds
            && a.variables == b.variables && a.intervalMilliseconds == b.intervalMilliseconds
            && a.environment.map { "\($0.key)=\($0.value)" } == b.environment.map { "\($0.key)=\($0.value)" }
    }

    /// What standard input receives.
    public func input(scope: [Reading], token: String) -> JSONValue {
        .object([
            ("context", .object([
                ("analysis", .string(name)),
                ("token", .string(token)),
                ("environment", .array(environment.map { .object([("key", .string($0.key)), ("value", .string($0.value))]) })),
            ])),
            ("scope", .array(scope.map(\.dataObject))),
        ])
    }
}

/// How a run went.
public struct AnalysisRun: Sendable {
    /// The exit status, or nil if it was killed (timeout) or could not start.
    public var status: Int32?
    public var timedOut = false
    public var log: [String] = []
    public var readings: [Reading] = []
    /// Output lines that looked like data but were not valid TagoIO data objects, with why.
    public var rejected: [String] = []
    public var milliseconds: Int64 = 0
}

public enum EdgeAnalysisRunner {
    /// Runs `analysis` with `scope`, killing it at its time limit. Never throws: a program that
    /// cannot start is a run with no status and the reason in its log. Output readings are
    /// stamped `now` unless they carry a time.
    public static func run(_ analysis: EdgeAnalysis, scope: [Reading], token: String = "", clock: SystemClock = SystemClock()) -> AnalysisRun {
        var result = AnalysisRun()
        let start = clock.nanoseconds()
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else {
            result.log.append("cannot run \(analysis.program): pipe: \(errnoDescription(errno))")
            return result
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 2)
        for fd in [toChild[0], toChild[1], fromChild[0], fromChild[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
        // Nothing of the agent's reaches the program: its spool, sockets and connections, whether
        // or not each was opened close-on-exec.
        spawnActionsCloseFrom(&actions, 3)
        // The agent blocks SIGTERM and SIGINT in its threads; the analysis must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([analysis.program] + analysis.arguments).map { strdup($0) } + [nil]
        var env: [String] = []
        for key in ["PATH", "HOME", "LANG", "TZ"] { if let v = getenv(key) { env.append("\(key)=\(String(cString: v))") } }
        for (k, v) in analysis.environment { env.append("\(k)=\(v)") }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, analysis.program, &actions, &attributes, argv, envp)
        argv.forEach { free($0) }
        envp.forEach { free($0) }
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        close(toChild[0])
        close(fromChild[1])
        guard rc == 0 else {
            close(toChild[1])
            close(fromChild[0])
            result.log.append("cannot run \(analysis.program): \(errnoDescription(rc))")
            return result
        }
        // The input, then end of file. A program that does not read it must not block us.
        signal(SIGPIPE, SIG_IGN)
        let input = Array(analysis.input(scope: scope, token: token).serialized.utf8) + [10]
        _ = fcntl(toChild[1], F_SETFL, O_NONBLOCK)
        var written = 0
        var output: [UInt8] = []
        let deadline = start + UInt64(max(analysis.timeoutMilliseconds, 1)) * 1_000_000
        var open = true
        while open {
            let now = clock.nanoseconds()
            if now >= deadline {
                result.timedOut = true
                kill(-pid, SIGKILL)  // its whole process group
                kill(pid, SIGKILL)
                break
            }
            var fds = [pollfd(fd: fromChild[0], events: Int16(POLLIN), revents: 0)]
            if written < input.count { fds.append(pollfd(fd: toChild[1], events: Int16(POLLOUT), revents: 0)) }
            let waitMs = Int32(min((deadline - now) / 1_000_000 + 1, 1_000))
            if retryingEINTR({ poll(&fds, nfds_t(fds.count), waitMs) }) < 0 { break }
            if fds.count > 1, fds[1].revents != 0 {
                let n = input[written...].withUnsafeBytes { write(toChild[1], $0.baseAddress, $0.count) }
                if n > 0 { written += n } else if n < 0 && errno != EAGAIN { written = input.count }
                if written >= input.count { close(toChild[1]); toChild[1] = -1 }
            }
            if fds[0].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { b in retryingEINTR { read(fromChild[0], b.baseAddress, b.count) } }
                if n > 0 {
                    if output.count < 1 << 20 { output += chunk.prefix(n) }  // a megabyte of output at most
                } else {
                    open = false
                }
            }
        }
        if toChild[1] >= 0 { close(toChild[1]) }
        close(fromChild[0])
        // The program may close its output and go on: the time limit holds until it has exited.
        var status: Int32 = 0
        while true {
            let r = retryingEINTR { waitpid(pid, &status, WNOHANG) }
            if r == pid || r < 0 { break }
            if r == 0, clock.nanoseconds() >= deadline, !result.timedOut {
                result.timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                _ = retryingEINTR { waitpid(pid, &status, 0) }
                break
            }
            if r == 0 { clock.sleep(microseconds: 10_000) }
        }
        if !result.timedOut, status & 0x7F == 0 { result.status = (status >> 8) & 0xFF }
        result.milliseconds = Int64((clock.nanoseconds() - start) / 1_000_000)
        if result.timedOut { result.log.append("killed after \(formatDuration(analysis.timeoutMilliseconds)) (the time limit)") }
        let now = clock.now()
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            let text = String(line)
            guard text.first == "{" || text.first == "[", let json = try? JSONValue.parse(text) else {
                result.log.append(redacting(token, in: text))
                continue
            }
            let objects = json.arrayValue ?? [json]
            guard objects.allSatisfy({ $0["variable"] != nil }) else {
                result.log.append(redacting(token, in: text))
                continue
            }
            for object in objects {
                do {
                    result.readings.append(try dataObjectToReading(object, now: now))
                } catch {
                    result.rejected.append("\(object.serialized): \(error)")
                }
            }
        }
        return result
    }
}

/// Why a data object is not a reading TagoIO would take.
public struct DataObjectError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A TagoIO data object (as JSON) to a reading, checked with TagoIO's documented rules.
public func dataObjectToReading(_ v: JSONValue, now: Timestamp) throws -> Reading {
    guard case .object = v else { throw DataObjectError(message: "expected a JSON object like {\"variable\": \"t\", \"value\": 21.5}") }
    guard let variable = v["variable"]?.stringValue else { throw DataObjectError(message: "'variable' is missing or not a string") }
    if let problem = tagoVariableNameProblem(variable) { throw DataObjectError(message: "variable '\(variable)' \(problem)") }
    let value: ReadingValue
    switch v["value"] {
    case .number(let n)?: value = .number(n)
    case .bool(let b)?: value = .bool(b)
    case .string(let s)?:
        guard s.utf8.count <= 6_000 else { throw DataObjectError(message: "'value' is longer than TagoIO's 6 kB") }
        value = .string(s)
    default: throw DataObjectError(message: "'value' must be a number, a string or a boolean")
    }
    var unit: String?
    if let u = v["unit"] {
        guard let s = u.stringValue, s.count <= 25 else { throw DataObjectError(message: "'unit' must be a string of at most 25 characters") }
        unit = s
    }
    var time = now
    if let t = v["time"] {
        guard let s = t.stringValue, let parsed = Timestamp(iso8601: s) else { throw DataObjectError(message: "'time' must be an ISO 8601 time such as 2026-11-29T10:00:00Z") }
        time = parsed
    }
    var metadata: [String: String] = [:]
    if let m = v["metadata"] {
        guard case .object(let members) = m else { throw DataObjectError(message: "'metadata' must be an object") }
        for (k, value) in members { metadata[k] = value.stringValue ?? value.serialized }
    }
    return Reading(variable: variable, value: value, unit: unit, time: time, metadata: metadata)
}

/// `text` with every occurrence of `token` replaced by `***` (a program that echoes its context
/// must not put the token in the agent's log).
func redacting(_ token: String, in text: String) -> String {
    guard token.utf8.count >= 4, text.contains(token) else { return text }
    return text.replacingOccurrences(token, with: "***")
}
