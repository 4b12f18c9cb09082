import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit

/// Analyses at the edge: `tagoedge analysis run`, and `[[analysis]]` in the agent.
@Suite(.serialized) struct EdgeAnalysisTests {
    func script(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "analysis-\(UUID().uuidString).py"
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aProgramGetsContextAndScopeAndItsOutputBecomesReadings() throws {
        let program = try script("""
            import json, sys
            data = json.load(sys.stdin)
            env = {e["key"]: e["value"] for e in data["context"]["environment"]}
            print("analysis", data["context"]["analysis"], "token", data["context"]["token"], "threshold", env["threshold"])
            hot = [r for r in data["scope"] if r["value"] > float(env["threshold"])]
            print(json.dumps([{"variable": "alarm", "value": True, "metadata": {"source": r["variable"]}} for r in hot]))
            print(json.dumps({"variable": "bad name", "value": 1}))
            print(json.dumps({"not": "data"}))
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """)
        let scope = try CLI.temporaryConfig(#"[{"variable":"env_temperature","value":31.5,"unit":"°C"},{"variable":"env_humidity","value":20}]"#, extension: "json")
        // The token from the environment, never on the command line (where ps shows it).
        let r = try CLI.run(["analysis", "run", "python3", "--arg", program, "--env", "threshold=30", "--scope", scope, "--token", "env:ANALYSIS_TOKEN", "--json"],
                            environment: ["ANALYSIS_TOKEN": "t-123"])
        #expect(r.status == 3, "the program's exit status: \(r.stderr)")
        let readings = r.stdout.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        #expect(readings.count == 1)
        #expect(readings.first?["variable"]?.stringValue == "alarm")
        #expect(readings.first?["metadata"]?["source"]?.stringValue == "env_temperature")
        #expect(r.stderr.contains("token *** threshold 30"), "a line that echoes the token is logged without it")
        #expect(!r.stderr.contains("t-123"))
        #expect(r.stderr.contains("to stderr"))
        #expect(r.stderr.contains(#"{"not": "data"}"#), "JSON that is not a data object is log")
        #expect(r.stderr.contains("output refused") && r.stderr.contains("bad name"))
        #expect(!r.stderr.contains("warning: --token"))
        let literal = try CLI.run(["analysis", "run", "/bin/true", "--token", "t-456"])
        #expect(literal.stderr.contains("warning: --token") && !literal.stderr.contains("t-456"))
    }

    @Test func aSlowProgramIsKilledAtItsTimeLimit() throws {
        let started = Date()
        let r = try CLI.run(["analysis", "run", "/bin/sh", "--arg", "-c", "--arg", "sleep 30 & sleep 30", "--timeout", "500ms"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("killed after 500ms"))
        #expect(Date().timeIntervalSince(started) < 5, "the child and its own children are gone")
        let missing = try CLI.run(["analysis", "run", "/nonexistent/program"])
        #expect(missing.status == 1 && missing.stdout.contains("cannot run /nonexistent/program"))
    }

    @Test func theAgentRunsAnalysesOnReadingsAndOnATimerOffline() throws {
        let setup = try AgentTestSetup(deviceToken: "analysis-token")
        let doubler = try script("""
            import json, sys
            data = json.load(sys.stdin)
            for r in data["scope"]:
                print(json.dumps({"variable": "doubled", "value": r["value"] * 2, "time": r["time"]}))
            """)
        let ticker = try script("""
            import json
            print(json.dumps({"variable": "tick", "value": 1}))
            """)
        let path = setup.dir + "/agent.toml"
        try setup.config(tokenVariable: "ANALYSIS_TOKEN", """
            [[sensor]]
            name = "count"
            driver = "board"
            interval = "300ms"
            [sensor.simulate]
            signal = "counter"
            [[analysis]]
            name = "double"
            program = "python3"
            arguments = ["\(doubler)"]
            variables = ["count_temperature"]
            [[analysis]]
            name = "tick"
            program = "python3"
            arguments = ["\(ticker)"]
            interval = "1s"
            [[analysis]]
            name = "stuck"
            program = "/bin/sleep"
            arguments = ["60"]
            variables = ["count_temperature"]
            timeout = "200ms"
            """).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["check-config", path]).status == 0)
        let (status, log) = try CLI.runAgent(path, environment: ["ANALYSIS_TOKEN": "analysis-token"], seconds: 4)
        #expect(status == 0)
        #expect(log.contains("analysis 'stuck' was killed at its time limit"), "\(log)")

        let device = TagoDevice(token: "analysis-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(setup.port)"), http: CurlHTTPClient())
        func values(_ variable: String) throws -> [Double] {
            var q = DataQuery(variables: [variable], qty: 1000)
            q.ordination = "ascending"
            return (try device.find(q).arrayValue ?? []).compactMap { $0["value"]?.numberValue }
        }
        let counts = try values("count_temperature"), doubled = try values("doubled")
        #expect(counts.count >= 5, "sampling went on beside a stuck analysis: \(counts)")
        #expect(!doubled.isEmpty)
        #expect(Set(doubled).isSubset(of: Set(counts.map { $0 * 2 })), "each output is twice a reading: \(doubled) vs \(counts)")
        #expect(try values("tick").count >= 2, "the timed analysis ran about once a second")

        // Offline (nothing listens at the API): analyses still run, their readings wait in the spool.
        let offline = setup.dir + "/offline.toml"
        try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "http://127.0.0.1:\(setup.port)", with: "http://127.0.0.1:1")
            .replacingOccurrences(of: "\(setup.dir)/spool", with: "\(setup.dir)/offline-spool")
            .write(toFile: offline, atomically: true, encoding: .utf8)
        _ = try CLI.runAgent(offline, environment: ["ANALYSIS_TOKEN": "analysis-token"], seconds: 2.5)
        let dump = try CLI.run(["spool", "dump", setup.dir + "/offline-spool", "--json"])
        #expect(dump.stdout.contains(#""variable":"doubled""#), "\(dump.stdout.prefix(300))")
        #expect(dump.stdout.contains(#""variable":"tick""#))
    }

    @Test func analysisConfigErrorsNameTheLine() throws {
        let path = try CLI.temporaryConfig("""
            [[analysis]]
            name = "a"
            program = "x"
            timeout = "forever"

            [[analysis]]
            name = "b"
            program = "y"
            variables = "t"
            """)
        let r = try CLI.run(["check-config", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains(":4: analysis[0].timeout: 'forever' is not a duration"), "\(r.stderr)")
        #expect(r.stderr.contains(":1: analysis[0].variables: give the variables that trigger it, an interval, or both"))
        #expect(r.stderr.contains(":9: analysis[1].variables: expected an array"))
    }
}
