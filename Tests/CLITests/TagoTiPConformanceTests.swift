import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit
import TestSupport

/// The shipped bench configuration, every driver on its simulated chip, run by the real binary
/// with `[uplink] transport = "tagotip"` against the emulator's TagoTiP server, whose strict parser
/// reads every body the agent sends: none may be refused, and every reading must be stored.
@Suite(.serialized) struct TagoTiPConformanceTests {
    @Test func everyPayloadOfABenchRunIsAcceptedByTheStrictParser() throws {
        let token = "ate2bd319014b24e0a8aca9f00aea4c0d0"
        let setup = try AgentTestSetup(deviceToken: "conformance-device", tip: (token, "bench-gw"))
        var text = try String(contentsOfFile: CLI.root + "/config/bench.toml", encoding: .utf8)
        text = text.replacingOccurrences(of: "transport = \"http\"", with: "transport = \"tagotip\"\n\n[tagotip]\nserial = \"bench-gw\"\ntoken = \"env:TIP_TOKEN\"\nurl = \"http://127.0.0.1:\(setup.port)\"")
        text = text.replacingOccurrences(of: "http://127.0.0.1:8480", with: "http://127.0.0.1:\(setup.port)")
        text = text.replacingOccurrences(of: "/tmp/tagoedge-bench/spool", with: setup.dir + "/spool")
        text = text.replacingOccurrences(of: "\"../hardware/", with: "\"\(CLI.root)/hardware/")
        try text.write(toFile: setup.dir + "/bench.toml", atomically: true, encoding: .utf8)
        let p = try CLI.startAgent(setup.dir + "/bench.toml", environment: ["TIP_TOKEN": token, "TAGO_DEVICE_TOKEN": "conformance-device"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
        // Every sensor of the bench has sent at least once.
        let sensors = ["env_", "captured_", "climate_", "light_", "adc_", "probe_", "rain_", "door_", "board_", "agent_"]
        var variables: Set<String> = []
        let device = TagoDevice(token: "conformance-device", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(setup.port)"), http: CurlHTTPClient())
        let arrived = waitUntil(seconds: 60) {
            let list = (try? device.find(DataQuery(variables: [], qty: 10_000)).arrayValue) ?? []
            variables = Set(list.compactMap { $0["variable"]?.stringValue })
            return sensors.allSatisfy { prefix in variables.contains { $0.hasPrefix(prefix) } }
        }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(arrived, "variables stored: \(variables.sorted())")
        let answers = setup.emulator.tipAnswers
        #expect(!answers.isEmpty)
        #expect(answers.allSatisfy { $0.hasPrefix("bench-gw OK|") }, "\(answers.filter { !$0.hasPrefix("bench-gw OK|") })")
        #expect(p.terminationStatus == 0)
    }
}
