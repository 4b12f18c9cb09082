import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit
import TestSupport

/// `tagoedge analysis serve` against the emulator's analysis_trigger channel: a run, an interval
/// action and a condition action each trigger the program over the same event stream; its output
/// reaches the device and its log the console route; a slow program is killed at its limit.
@Suite(.serialized) struct AnalysisServeTests {
    func program(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "tagoedge-serve-\(UUID().uuidString).sh"
        try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func serve(_ program: String, port: UInt16, analysisToken: String, deviceToken: String, extra: [String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["analysis", "serve", program, "--token", "env:SERVE_ANALYSIS_TOKEN", "--device-token", "env:SERVE_DEVICE_TOKEN",
                       "--api", "http://127.0.0.1:\(port)"] + extra
        p.environment = ProcessInfo.processInfo.environment.merging(["SERVE_ANALYSIS_TOKEN": analysisToken, "SERVE_DEVICE_TOKEN": deviceToken]) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return (p, out)
    }

    /// An emulator with one profile token; stopped when the returned value goes.
    final class LocalAccount {
        let emulator: Emulator
        let port: UInt16
        init() throws {
            var options = Emulator.Options()
            options.profileTokens = ["p-serve"]
            emulator = try Emulator(options: options)
            port = try emulator.start()
        }
        deinit { emulator.stop() }
        var endpoint: TagoEndpoint { TagoEndpoint(api: "http://127.0.0.1:\(port)") }
        var account: TagoAccount { TagoAccount(token: "p-serve", endpoint: endpoint, http: CurlHTTPClient()) }
    }

    @Test func triggersFromARunAnIntervalAndAnActionRunTheProgram() throws {
        let local = try LocalAccount()
        let (emulator, port) = (local.emulator, local.port)
        let (endpoint, account) = (local.endpoint, local.account)
        let (deviceID, deviceToken) = try account.createDevice(NewDevice(name: "gateway"))
        var new = NewAnalysis(name: "doubler")
        new.variables = [("factor", "2")]
        let (analysis, token) = try account.createAnalysis(new)
        let analysisToken = try #require(token)
        // The program: reads context and scope, logs, prints one data object per trigger.
        let path = try program("""
        read input
        echo "context: $(echo "$input" | grep -o '"key":"factor"' | head -1) scope: $(echo "$input" | grep -o '"value":31' | head -1)"
        echo '{"variable":"served","value":1}'
        """)
        defer { unlink(path) }
        let (p, out) = try serve(path, port: port, analysisToken: analysisToken, deviceToken: deviceToken, extra: ["--count", "3"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(waitUntil(seconds: 20) { emulator.openTriggerStreams == 1 }, "serve never opened the event stream")

        // 1. TagoIO runs the analysis (analysis.run) with a scope.
        try account.runAnalysis(analysis, scope: [.object([("variable", .string("temperature")), ("value", .number(31))])])
        let device = TagoDevice(token: deviceToken, endpoint: endpoint, http: CurlHTTPClient())
        func served() -> Int { (try? device.find(DataQuery(variables: ["served"], qty: 100)).arrayValue?.count) ?? 0 }
        #expect(waitUntil(seconds: 20) { served() == 1 })
        // 2. An action on a condition: data above 30 on the device starts it.
        _ = try account.createAction(NewAction(name: "hot", kind: .script([analysis]),
                                               triggers: [.condition(device: deviceID, variable: "temperature", is: ">", value: "30")]))
        _ = try device.insert([Reading(variable: "temperature", value: .number(35), time: SystemClock().now())])
        #expect(waitUntil(seconds: 20) { served() == 2 })
        // 3. An interval action.
        _ = try account.createAction(NewAction(name: "every second", kind: .script([analysis]), triggers: [.interval("1 second")]))
        #expect(waitUntil(seconds: 20) { served() >= 3 })
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let console = emulator.serviceOutbox.filter { $0.service == "console" }.compactMap { $0.message["message"]?.stringValue }
        #expect(console.contains { $0.contains(#"context: "key":"factor" scope: "value":31"#) }, "\(console)")
        #expect(console.filter { $0.contains("exit status 0") }.count == 3, "\(console)")
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!output.contains(analysisToken), "the token never appears in the output")
    }

    @Test func aSlowProgramIsKilledAtItsLimitAndSaysSo() throws {
        let local = try LocalAccount()
        let (emulator, port) = (local.emulator, local.port)
        let account = local.account
        let (_, deviceToken) = try account.createDevice(NewDevice(name: "gateway"))
        let (analysis, token) = try account.createAnalysis(NewAnalysis(name: "slow"))
        let path = try program("sleep 30\n")
        defer { unlink(path) }
        let (p, _) = try serve(path, port: port, analysisToken: try #require(token), deviceToken: deviceToken, extra: ["--count", "1", "--timeout", "500ms"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(waitUntil(seconds: 20) { emulator.openTriggerStreams == 1 })
        try account.runAnalysis(analysis)
        #expect(waitUntil(seconds: 20) {
            emulator.serviceOutbox.contains { $0.message["message"]?.stringValue?.contains("killed at its time limit (500ms)") == true }
        })
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test func aWrongTokenIsSaidAndRetried() throws {
        let local = try LocalAccount()
        let (emulator, port) = (local.emulator, local.port)
        let (p, out) = try serve("/bin/true", port: port, analysisToken: "a-nonexistent", deviceToken: "x", extra: [])
        #expect(waitUntil(seconds: 10) { emulator.counters["responses_401"] ?? 0 >= 2 })
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("HTTP 401 (is the analysis token right?); connecting again in 1 s"), "\(output)")
        #expect(!output.contains("a-nonexistent"))
    }
}
