import Foundation
import Testing
import EdgeCore
import Emulator
import TagoKit

@Suite(.serialized) struct ProvisionTests {
    @Test func provisionsAFleetIdempotently() throws {
        var options = Emulator.Options()
        options.profileTokens = ["p-fleet-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let dir = NSTemporaryDirectory() + "tagoedge-fleet-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func manifest(_ siteOfThird: String) throws {
            try """
            serial,name,tags,params,template
            SN001,Greenhouse 1,site=north;row=1,interval=30s,raspberry-pi.toml
            SN002,Greenhouse 2,site=north,,
            SN003,"Barn, east",site=\(siteOfThird),env.enabled=false,
            SN004,Pump house,,,
            """.write(toFile: dir + "/fleet.csv", atomically: true, encoding: .utf8)
        }
        try manifest("east")
        let args = ["provision", "--manifest", dir + "/fleet.csv", "--out", dir + "/bundles", "--api", "http://127.0.0.1:\(port)",
                    "--plan", "scale", "--json", "--profile-token", "env:FLEET_TOKEN", "--templates", CLI.root + "/config"]
        func run() throws -> (Int32, [JSONValue]) {
            let r = try CLI.run(args, environment: ["FLEET_TOKEN": "p-fleet-token"])
            return (r.status, try r.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) })
        }
        let (status1, first) = try run()
        #expect(status1 == 0)
        #expect(first.prefix(4).compactMap { $0["status"]?.stringValue } == ["created", "created", "created", "created"])
        #expect(first.last?["summary"]?["created"]?.numberValue == 4)

        // A bundle holds a working token, written 0600, and the rendered template.
        let bundle = dir + "/bundles/SN001"
        let token = try String(contentsOfFile: bundle + "/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let info = try TagoDevice(token: token, endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient()).info()
        #expect(info["name"]?.stringValue == "Greenhouse 1")
        let attrs = try FileManager.default.attributesOfItem(atPath: bundle + "/tagoedge.toml")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let config = try String(contentsOfFile: bundle + "/tagoedge.toml", encoding: .utf8)
        #expect(config.contains(#"token = "file:/etc/tagoedge/token""#))
        #expect(config.contains(#"driver = "bme280""#))
        #expect(try CLI.run(["check-config", bundle + "/tagoedge.toml"]).status == 0)
        let account = TagoAccount(token: "p-fleet-token", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        let barn = try #require(try account.devices(tags: [("serial", "SN003")]).first?["id"]?.stringValue)
        #expect(try account.params(deviceID: barn).map(\.key) == ["env.enabled"])

        // Again: nothing created twice, tokens kept.
        let (status2, second) = try run()
        #expect(status2 == 0)
        #expect(second.prefix(4).compactMap { $0["status"]?.stringValue } == ["present", "present", "present", "present"])
        #expect(try account.devices(amount: 100).count == 4)
        #expect(try String(contentsOfFile: bundle + "/token", encoding: .utf8).contains(token))

        // A changed tag is brought to the manifest.
        try manifest("west")
        let (_, third) = try run()
        #expect(third[2]["status"]?.stringValue == "updated")
        #expect(try account.device(id: barn)["tags"]?.arrayValue?.contains { $0["value"]?.stringValue == "west" } == true)

        // Rotate a token: the new one works, the old one no longer does.
        let common = ["--api", "http://127.0.0.1:\(port)", "--profile-token", "env:FLEET_TOKEN"]
        let rotated = try CLI.run(["provision", "rotate-token", "SN001", "--out", dir + "/bundles"] + common, environment: ["FLEET_TOKEN": "p-fleet-token"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let fresh = try String(contentsOfFile: bundle + "/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fresh != token)
        let endpoint = TagoEndpoint(api: "http://127.0.0.1:\(port)")
        #expect(try TagoDevice(token: fresh, endpoint: endpoint, http: CurlHTTPClient()).info()["name"]?.stringValue == "Greenhouse 1")
        #expect(throws: TagoError.self) { try TagoDevice(token: token, endpoint: endpoint, http: CurlHTTPClient()).info() }

        // Deprovision refuses without --yes off a terminal, then deletes device and tokens.
        #expect(try CLI.run(["provision", "deprovision", "SN004"] + common, environment: ["FLEET_TOKEN": "p-fleet-token"]).status == 2)
        let gone = try CLI.run(["provision", "deprovision", "SN004", "--yes"] + common, environment: ["FLEET_TOKEN": "p-fleet-token"])
        #expect(gone.status == 0, "\(gone.stderr)")
        #expect(try account.devices(tags: [("serial", "SN004")]).isEmpty)
    }

    @Test func manifestErrorsNameTheLine() throws {
        let path = try CLI.temporaryConfig("serial,name,colour\nSN1,One,red\n", extension: "csv")
        let r = try CLI.run(["provision", "--manifest", path, "--out", "/tmp/x", "--profile-token", "p-x"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path):1: colour: unknown column"))
        let dup = try CLI.temporaryConfig("serial,name\nSN1,One\nSN1,Again\n,NoSerial\n", extension: "csv")
        let d = try CLI.run(["provision", "--manifest", dup, "--out", "/tmp/x", "--profile-token", "p-x"])
        #expect(d.status == 2)
        #expect(d.stderr.contains("\(dup):3: serial: 'SN1' also on line 2"))
        #expect(d.stderr.contains("\(dup):4: serial and name are required"))
    }
}

@Suite(.serialized) struct ProvisionRecoveryTests {
    @Test func aRunThatFailedHalfwayIsFinishedByTheNextWithoutDuplicates() throws {
        var options = Emulator.Options()
        options.profileTokens = ["p-flaky"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let dir = NSTemporaryDirectory() + "tagoedge-flaky-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = (1...12).map { "GW\($0),Gateway \($0),site=s\($0 % 3)" }.joined(separator: "\n")
        try ("serial,name,tags\n" + rows + "\n").write(toFile: dir + "/fleet.csv", atomically: true, encoding: .utf8)
        let args = ["provision", "--manifest", dir + "/fleet.csv", "--out", dir + "/out", "--api", "http://127.0.0.1:\(port)",
                    "--plan", "scale", "--json", "--profile-token", "env:T"]
        emulator.setFaults(try EmulatorFaults(spec: "error-rate=0.5", now: 0))  // all 12 creations succeeding: 1 in 4,096
        let flaky = try CLI.run(args, environment: ["T": "p-flaky"])
        #expect(flaky.status == 1)  // some gateways failed, and said so
        #expect(flaky.stdout.contains(#""status":"failed""#))
        emulator.setFaults(EmulatorFaults())
        let again = try CLI.run(args, environment: ["T": "p-flaky"])
        #expect(again.status == 0, "\(again.stdout)")
        let account = TagoAccount(token: "p-flaky", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        let devices = try account.devices(amount: 100, fields: ["id", "name", "tags"])
        #expect(devices.count == 12, "exactly one device per gateway")
        for i in 1...12 {
            #expect(FileManager.default.fileExists(atPath: dir + "/out/GW\(i)/token"))
        }
    }
}

/// Where bundles go, and what a bundle that cannot be written leaves behind in TagoIO.
@Suite(.serialized) struct ProvisionOutputTests {
    func emulator() throws -> (Emulator, UInt16) {
        var options = Emulator.Options()
        options.profileTokens = ["p-out"]
        let emulator = try Emulator(options: options)
        return (emulator, try emulator.start())
    }

    func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "tagoedge-out-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "serial,name\nGW1,Gateway 1\nGW2,Gateway 2\n".write(toFile: dir + "/fleet.csv", atomically: true, encoding: .utf8)
        return dir
    }

    func mode(_ path: String) -> Int? { (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int }

    /// The README's own example (`--out bundles/`, relative, with a trailing slash) and a path with
    /// spaces, in a folder that does not exist yet: bundles 0600 in 0700 folders.
    @Test func relativeAndSpacedOutPathsWork() throws {
        let (emulator, port) = try emulator()
        defer { emulator.stop() }
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for out in ["bundles/", "new folder/with spaces", dir + "/abs//"] {
            let r = try CLI.run(["provision", "--manifest", "fleet.csv", "--out", out, "--api", "http://127.0.0.1:\(port)", "--plan", "scale",
                                 "--json", "--profile-token", "env:T"], environment: ["T": "p-out"], directory: dir)
            #expect(r.status == 0, "\(out): \(r.stdout) \(r.stderr)")
            let base = out.hasPrefix("/") ? out : dir + "/" + out
            for serial in ["GW1", "GW2"] {
                let bundle = base + "/" + serial
                #expect(mode(bundle) == 0o700, "\(bundle)")
                #expect(mode(bundle + "/token") == 0o600, "\(bundle)/token")
                #expect(mode(bundle + "/tagoedge.toml") == 0o600)
            }
        }
    }

    /// A gateway whose folder cannot be made is refused before anything is made for it in TagoIO
    /// (the dry run says the same); one whose bundle fails after its token was made gets the
    /// token revoked, so reruns never pile up live tokens.
    @Test func aBundleThatCannotBeWrittenLeavesNoTokenBehind() throws {
        let (emulator, port) = try emulator()
        defer { emulator.stop() }
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let account = TagoAccount(token: "p-out", endpoint: TagoEndpoint(api: "http://127.0.0.1:\(port)"), http: CurlHTTPClient())
        let args = ["provision", "--manifest", "fleet.csv", "--out", "out", "--api", "http://127.0.0.1:\(port)", "--plan", "scale",
                    "--json", "--profile-token", "env:T"]
        func run(_ extra: [String] = []) throws -> (Int32, [String: JSONValue]) {
            let r = try CLI.run(args + extra, environment: ["T": "p-out"], directory: dir)
            var bySerial: [String: JSONValue] = [:]
            for line in r.stdout.split(separator: "\n") {
                let v = try JSONValue.parse(String(line))
                if let s = v["serial"]?.stringValue { bySerial[s] = v }
            }
            return (r.status, bySerial)
        }

        // GW2's folder is a file: known before any call.
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        try "in the way".write(toFile: dir + "/out/GW2", atomically: true, encoding: .utf8)
        let (dryStatus, dry) = try run(["--dry-run"])
        #expect(dryStatus == 1)
        #expect(dry["GW2"]?["detail"]?.stringValue?.contains("out/GW2 is not a folder") == true, "\(dry)")
        let (status, first) = try run()
        #expect(status == 1)
        #expect(first["GW1"]?["status"]?.stringValue == "created")
        #expect(first["GW2"]?["detail"]?.stringValue?.contains("cannot write the bundle in out/GW2") == true, "\(first)")
        #expect(try account.devices(tags: [("serial", "GW2")]).isEmpty, "nothing was made in TagoIO for GW2")

        // GW2's folder is fine but its token cannot be written (a folder named token is in the
        // way): the device is made, its token is revoked, and every rerun does the same.
        try FileManager.default.removeItem(atPath: dir + "/out/GW2")
        try FileManager.default.createDirectory(atPath: dir + "/out/GW2/token/busy", withIntermediateDirectories: true)
        for attempt in 1...4 {
            let (status, outcome) = try run()
            #expect(status == 1)
            #expect(outcome["GW2"]?["detail"]?.stringValue?.contains("the token made for it was revoked") == true, "\(outcome)")
            let id = try #require(try account.devices(tags: [("serial", "GW2")]).first?["id"]?.stringValue)
            let count = try account.tokens(deviceID: id).count
            #expect(count <= 1, "after run \(attempt): \(count) tokens")
        }
        // Once the way is clear, the next run hands out one token.
        try FileManager.default.removeItem(atPath: dir + "/out/GW2/token")
        let (okStatus, _) = try run()
        #expect(okStatus == 0)
        let id = try #require(try account.devices(tags: [("serial", "GW2")]).first?["id"]?.stringValue)
        let tokens = try account.tokens(deviceID: id)
        #expect(tokens.count == 1)
        let written = try String(contentsOfFile: dir + "/out/GW2/token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(tokens.first?["token"]?.stringValue == written)
    }
}
