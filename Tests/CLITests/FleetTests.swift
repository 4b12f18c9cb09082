import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit

/// Fleet provisioning at scale against the emulator's Account API: TOML manifests with defaults,
/// a manifest refused before any API call, a 200-gateway run interrupted and finished, and 500
/// gateways at the Free plan's pace.
@Suite(.serialized) struct FleetTests {
    final class Fleet {
        let emulator: Emulator
        let port: UInt16
        let dir = NSTemporaryDirectory() + "tagoedge-fleet-\(UUID().uuidString)"
        var api: String { "http://127.0.0.1:\(port)" }
        var account: TagoAccount { TagoAccount(token: "p-fleet", endpoint: TagoEndpoint(api: api), http: CurlHTTPClient()) }

        init(limits: [String: Int] = Emulator.scalePlanLimits, windowMilliseconds: Int64 = 60_000) throws {
            var options = Emulator.Options()
            options.profileTokens = ["p-fleet"]
            options.rateLimits = limits
            options.rateWindowMilliseconds = windowMilliseconds
            emulator = try Emulator(options: options)
            port = try emulator.start()
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }

        deinit {
            emulator.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }

        func arguments(_ manifest: String, plan: String = "scale", extra: [String] = []) -> [String] {
            ["provision", "--manifest", manifest, "--out", dir + "/out", "--api", api, "--plan", plan, "--json",
             "--profile-token", "env:FLEET_PROFILE", "--templates", CLI.root + "/config"] + extra
        }

        func run(_ manifest: String, plan: String = "scale", extra: [String] = []) throws -> (status: Int32, lines: [JSONValue], stderr: String) {
            let r = try CLI.run(arguments(manifest, plan: plan, extra: extra), environment: ["FLEET_PROFILE": "p-fleet"])
            return (r.status, r.stdout.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }, r.stderr)
        }

        func stats() throws -> JSONValue {
            let r = try CurlHTTPClient().send(HTTPRequest(method: "GET", url: api + "/_emulator/stats"))
            return try #require(try JSONValue.parse(String(decoding: r.body, as: UTF8.self))["result"])
        }

        func allDevices() throws -> [JSONValue] {
            var all: [JSONValue] = []
            var page = 1
            while true {
                let batch = try account.devices(page: page, amount: 100, fields: ["id", "name", "tags", "type", "network", "connector"])
                all += batch
                if batch.count < 100 { return all }
                page += 1
            }
        }

        /// Every gateway has exactly one device, and its bundle's token reaches that device.
        func expectComplete(_ serials: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let devices = try allDevices()
            #expect(devices.count == serials.count, "devices: \(devices.count)", sourceLocation: sourceLocation)
            var bySerial: [String: [String]] = [:]
            for d in devices {
                let serial = d["tags"]?.arrayValue?.first { $0["key"]?.stringValue == "serial" }?["value"]?.stringValue ?? "?"
                bySerial[serial, default: []].append(d["id"]?.stringValue ?? "")
            }
            for serial in serials {
                guard let ids = bySerial[serial], ids.count == 1 else {
                    Issue.record("\(serial): \(bySerial[serial]?.count ?? 0) devices", sourceLocation: sourceLocation)
                    continue
                }
                let token = try String(contentsOfFile: "\(dir)/out/\(serial)/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                let info = try TagoDevice(token: token, endpoint: TagoEndpoint(api: api), http: CurlHTTPClient()).info()
                #expect(info["id"]?.stringValue == ids[0], "\(serial)'s bundle token is another device's", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func aTOMLManifestWithDefaults() throws {
        let fleet = try Fleet()
        let manifest = fleet.dir + "/fleet.toml"
        try """
        [defaults]
        template = "raspberry-pi.toml"
        type = "immutable"
        connector = "62333bd36977fc001a2990c8"
        token_permission = "write"
        token_expire = "1 year"
        tags = { site = "north", owner = "ops" }
        params = { interval = "60s" }

        [[gateway]]
        serial = "TOML-1"
        name = "Greenhouse 1"
        tags = { row = "1", site = "south" }
        params = { "env.interval" = "30s" }

        [[gateway]]
        serial = "TOML-2"
        name = "Greenhouse 2"
        type = "mutable"
        token_permission = "full"
        token_expire = "never"
        """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let first = try fleet.run(manifest)
        #expect(first.status == 0, "\(first.lines) \(first.stderr)")
        #expect(first.lines.prefix(2).compactMap { $0["status"]?.stringValue } == ["created", "created"])

        let account = fleet.account
        let one = try #require(try account.devices(fields: ["id", "name", "tags", "type", "network", "connector"], tags: [("serial", "TOML-1")]).first)
        #expect(one["type"]?.stringValue == "immutable")
        #expect(one["connector"]?.stringValue == "62333bd36977fc001a2990c8")
        #expect(one["network"]?.stringValue == "5bbd0d144051a50034cd19fb", "TagoIO's generic HTTPS network by default")
        let tags = Set((one["tags"]?.arrayValue ?? []).map { "\($0["key"]?.stringValue ?? "")=\($0["value"]?.stringValue ?? "")" })
        #expect(tags == ["serial=TOML-1", "site=south", "owner=ops", "row=1"], "the gateway's tags over the defaults'")
        let oneID = try #require(one["id"]?.stringValue)
        #expect(Set(try account.params(deviceID: oneID).map { "\($0.key)=\($0.value)" }) == ["interval=60s", "env.interval=30s"])
        // One token, with the manifest's permission and expiry (the one made with the device is gone).
        let tokens = try account.tokens(deviceID: oneID)
        #expect(tokens.count == 1)
        #expect(tokens.first?["permission"]?.stringValue == "write")
        #expect(tokens.first?["expire_time"]?.stringValue == "1 year")
        let two = try #require(try account.devices(fields: ["id", "type"], tags: [("serial", "TOML-2")]).first)
        #expect(two["type"]?.stringValue == "mutable")

        // Again: nothing to do; the write-only token (which may not read GET /info) is kept.
        let kept = try String(contentsOfFile: fleet.dir + "/out/TOML-1/token", encoding: .utf8)
        let second = try fleet.run(manifest)
        #expect(second.status == 0)
        #expect(second.lines.prefix(2).compactMap { $0["status"]?.stringValue } == ["present", "present"])
        #expect(second.lines.first?["detail"]?.stringValue == "")
        #expect(try String(contentsOfFile: fleet.dir + "/out/TOML-1/token", encoding: .utf8) == kept)
        #expect(try CLI.run(["check-config", fleet.dir + "/out/TOML-1/tagoedge.toml"]).status == 0)

        // A rotated token keeps the write-only permission and the expiry the manifest asked for.
        let rotated = try CLI.run(["provision", "rotate-token", "TOML-1", "--out", fleet.dir + "/out", "--api", fleet.api, "--profile-token", "p-fleet"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let after = try account.tokens(deviceID: oneID)
        #expect(after.count == 1, "the old token is revoked")
        #expect(after.first?["permission"]?.stringValue == "write")
        #expect(after.first?["expire_time"]?.stringValue == "1 year")
        #expect(try String(contentsOfFile: fleet.dir + "/out/TOML-1/token", encoding: .utf8) != kept)
    }

    @Test func eachGatewayGetsItsDashboardAndAccessRuleOnce() throws {
        let fleet = try Fleet()
        let manifest = fleet.dir + "/dash.toml"
        try """
            [defaults]
            dashboard = "dashboard-gateway.json"
            access_rule = "access-site-users.json"

            [[gateway]]
            serial = "D1"
            name = "Greenhouse"
            tags = { site = "north" }

            [[gateway]]
            serial = "D2"
            name = "Barn"
            tags = { site = "east" }
            access_rule = "no-such-rule.json"
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let refused = try fleet.run(manifest)
        #expect(refused.status == 2 && refused.stderr.contains("dash.toml:10: access_rule: no template 'no-such-rule.json'"), "\(refused.stderr)")
        try String(contentsOfFile: manifest, encoding: .utf8).replacingOccurrences(of: "access_rule = \"no-such-rule.json\"", with: "")
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let first = try fleet.run(manifest)
        #expect(first.status == 0, "\(first.lines) \(first.stderr)")
        #expect(first.lines.first?["detail"]?.stringValue == "dashboard created; access rule created")
        let account = fleet.account
        let device = try #require(try account.devices(tags: [("serial", "D1")]).first?["id"]?.stringValue)
        let dashboards = try account.dashboards.list(fields: ["id", "label", "tags"], tags: [("serial", "D1")])
        #expect(dashboards.count == 1)
        #expect(dashboards.first?["label"]?.stringValue == "Greenhouse (D1)")
        let dashboard = try #require(dashboards.first?["id"]?.stringValue)
        let rule = try #require(try account.accessRules.list(fields: ["id", "name", "targets", "permissions"], tags: [("serial", "D1")]).first)
        #expect(rule["name"]?.stringValue == "D1: users of site north see its dashboard")
        #expect(rule["targets"]?.serialized.contains(#""value":"north""#) == true)
        #expect(rule["permissions"]?.serialized.contains(dashboard) == true)
        #expect(rule["permissions"]?.serialized.contains(device) == true)
        // Again: nothing made twice.
        let second = try fleet.run(manifest)
        #expect(second.status == 0)
        #expect(second.lines.prefix(2).allSatisfy { $0["detail"]?.stringValue == "" }, "\(second.lines)")
        #expect(try account.dashboards.list(amount: 100).count == 2)
        #expect(try account.accessRules.list(amount: 100).count == 2)
    }

    @Test func aTerminalGetsAProgressBar() throws {
        let fleet = try Fleet()
        let manifest = fleet.dir + "/bar.csv"
        try "serial,name\nBAR1,One\nBAR2,Two\nBAR3,Three\n".write(toFile: manifest, atomically: true, encoding: .utf8)
        var args = fleet.arguments(manifest)
        args.removeAll { $0 == "--json" }
        // `script` runs the command on a pseudo-terminal, as an operator would.
        let command = ([CLI.binary] + args).map { "'\($0)'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qefc", command, "/dev/null"]
        process.environment = ProcessInfo.processInfo.environment.merging(["FLEET_PROFILE": "p-fleet"]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("\r\u{1B}[K[") && text.contains("] 0/3  0%"), "the bar is drawn in place: \(text.debugDescription)")
        #expect(text.contains("] 3/3  100%") && text.contains("done in"))
        #expect(text.contains("done: created 3, present 0, updated 0, planned 0, failed 0"))
        #expect(!text.contains("{\"serial\""), "no JSON lines on a terminal")
    }

    @Test func aBadManifestIsRefusedWholeBeforeAnyAPICall() throws {
        let fleet = try Fleet()
        let manifest = fleet.dir + "/bad.toml"
        try """
        [defaults]
        token_permision = "write"

        [[gateway]]
        serial = "A1"
        name = "One"
        template = "no-such-template.toml"

        [[gateway]]
        serial = "A2"
        name = "Two"
        tags = { serial = "other" }

        [[gateway]]
        serial = "A1"
        name = "One again"
        type = "eternal"

        [[gateway]]
        serial = "A 4"
        name = "Four"
        token_expire = "someday"
        """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let r = try fleet.run(manifest)
        #expect(r.status == 2)
        for expected in [
            "bad.toml:2: defaults.token_permision: unknown key (did you mean 'token_permission'?)",
            "bad.toml:4: template: no template 'no-such-template.toml'",
            "bad.toml:9: tags: the serial tag comes from the serial column",
            "bad.toml:14: serial: 'A1' also on line 4",
            "bad.toml:14: type: 'eternal' is not valid",
            "bad.toml:19: serial: 'A 4' cannot name a folder",
            "bad.toml:19: token_expire: 'someday' is not valid",
        ] {
            #expect(r.stderr.contains(expected), "missing: \(expected)\n\(r.stderr)")
        }
        #expect(try fleet.stats()["requests"]?.numberValue == nil, "no API call was made")
        // (The counter exists once a request is made.)
        _ = try? fleet.account.devices()
        #expect(try fleet.stats()["requests"]?.numberValue == 1)

        let csv = fleet.dir + "/bad.csv"
        try "serial,name,tags,template\nB1,One,site=;=x,\nB2,Two,,missing.toml\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let c = try fleet.run(csv)
        #expect(c.status == 2)
        #expect(c.stderr.contains("bad.csv:2: tags: a tag has no key (=x)"), "\(c.stderr)")
        #expect(c.stderr.contains("bad.csv:3: template: no template 'missing.toml'"))
        #expect(try fleet.stats()["requests"]?.numberValue == 1, "still only the one above")
    }

    @Test func twoHundredGatewaysInterruptedThenFinishedWithoutDuplicates() throws {
        let fleet = try Fleet()
        let serials = (1...200).map { String(format: "GW%03d", $0) }
        let manifest = fleet.dir + "/fleet.csv"
        try ("serial,name,tags,params,template\n" + serials.enumerated().map { i, s in
            "\(s),Gateway \(i + 1),site=s\(i % 7);row=\(i / 7),interval=\(30 + i % 3 * 30)s,\(i % 2 == 0 ? "raspberry-pi.toml" : "bench.toml")"
        }.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)

        // 1. Killed part-way.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = fleet.arguments(manifest)
        process.environment = ProcessInfo.processInfo.environment.merging(["FLEET_PROFILE": "p-fleet"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var created = 0
        for _ in 0..<400 where created < 40 {
            usleep(25_000)
            created = (try? fleet.allDevices().count) ?? 0
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let afterKill = try fleet.allDevices().count
        #expect(afterKill > 0 && afterKill < 200, "the kill landed part-way (\(afterKill) devices)")

        // 2. A run against a flaky server: some gateways fail and say so.
        fleet.emulator.setFaults(try EmulatorFaults(spec: "error-rate=0.15,drop-response-rate=0.05", now: 0))
        let flaky = try fleet.run(manifest)
        #expect(flaky.status == 1)
        #expect(flaky.lines.contains { $0["status"]?.stringValue == "failed" })

        // 3. A clean run, with the server throttling at first: 429s are waited out.
        fleet.emulator.setFaults(try EmulatorFaults(spec: "throttle=2s", now: Int64(SystemClock().now().millisecondsSince1970)))
        let last = try fleet.run(manifest)
        #expect(last.status == 0, "\(last.lines.filter { $0["status"]?.stringValue == "failed" })")
        let summary = try #require(last.lines.last?["summary"])
        #expect((summary["rate_limited"]?.numberValue ?? 0) >= 1, "the throttle was met and waited out")
        #expect(summary["failed"]?.numberValue == 0)
        try fleet.expectComplete(serials)

        // Every bundle is a valid configuration (what `tagoedge check-config` checks).
        var invalid: [String] = []
        for s in serials where try CLI.run(["check-config", "\(fleet.dir)/out/\(s)/tagoedge.toml"]).status != 0 { invalid.append(s) }
        #expect(invalid.isEmpty, "invalid bundles: \(invalid)")
    }

    @Test func fiveHundredGatewaysAtTheFreePlansPaceFinish() throws {
        // The Free plan's limits (10 device creations a minute, 50 listings), enforced by the
        // emulator with 429s, with the minute shortened to 400 ms on both sides so the run takes
        // seconds: 500 creations need at least 49 windows.
        let window: Int64 = 400
        let fleet = try Fleet(limits: Emulator.freePlanAccountLimits, windowMilliseconds: window)
        let serials = (1...500).map { "FREE\($0)" }
        let manifest = fleet.dir + "/free.csv"
        try ("serial,name\n" + serials.map { "\($0),Unit \($0)" }.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let started = SystemClock().nanoseconds()
        let r = try fleet.run(manifest, plan: "free", extra: ["--rate-window", "\(window)ms"])
        let seconds = Double(SystemClock().nanoseconds() - started) / 1e9
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(r.lines.last?["summary"])
        #expect(summary["created"]?.numberValue == 500)
        #expect(summary["failed"]?.numberValue == 0)
        #expect(seconds >= Double(49 * window) / 1000, "finished in \(seconds) s: faster than the plan allows")
        let stats = try fleet.stats()
        #expect((stats["route POST /device"]?.numberValue ?? 0) >= 500)
        #expect((stats["rate_limited"]?.numberValue ?? 0) <= 5, "the client paced itself instead of leaning on 429s: \(stats)")
        try fleet.expectComplete(serials)
    }
}
