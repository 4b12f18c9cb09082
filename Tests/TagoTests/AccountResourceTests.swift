import Testing
import EdgeCore
import Emulator
import TagoKit

/// The Account API beyond devices, each call over real HTTP against the emulator.
@Suite(.serialized) struct AccountResourceTests {
    /// Buckets are reached through /device today (`/bucket` is gone): the list, info, edit and
    /// delete every resource has, on devices, and the records a device holds (`data_amount`).
    @Test func bucketsAreDevicesAndTheCallsEveryResourceHas() throws {
        let tago = try LocalTago()
        let account = tago.account
        var d = NewDevice(name: "Greenhouse data")
        d.tags = [("site", "north")]
        let (id, token) = try account.createDevice(d)
        let second = try account.createDevice(NewDevice(name: "Barn data")).id
        #expect(try account.buckets.list(name: "*data").compactMap { $0["name"]?.stringValue }.sorted() == ["Barn data", "Greenhouse data"])
        #expect(try account.buckets.list(name: "Green*").compactMap { $0["id"]?.stringValue } == [id])
        try account.buckets.edit(id, .object([("name", .string("Greenhouse (north)"))]))
        let edited = try account.buckets.info(id)
        #expect(edited["name"]?.stringValue == "Greenhouse (north)")
        #expect(edited["tags"]?.arrayValue?.first?["value"]?.stringValue == "north", "an edit changes only what it names")
        #expect(try account.dataAmount(device: id) == 0)
        let device = TagoDevice(token: token, endpoint: tago.endpoint, http: tago.http)
        try device.insert([Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1_796_119_200_000)),
                           Reading(variable: "t", value: .number(2), time: Timestamp(millisecondsSince1970: 1_796_119_260_000))])
        #expect(try account.dataAmount(device: id) == 2)
        try account.buckets.delete(id)
        #expect { try account.buckets.info(id) } throws: { ($0 as? TagoError)?.kind == .notFound }
        #expect(try account.buckets.list(name: "*data").compactMap { $0["id"]?.stringValue } == [second])
    }

    @Test func actionsWithEveryTriggerAndType() throws {
        let tago = try LocalTago()
        let account = tago.account
        let analysis = try account.createAnalysis(NewAnalysis(name: "on alarm")).id
        let kinds: [ActionKind] = [
            .notification(subject: "Hot", message: "$VALUE$ °C"), .notificationRun(runUsers: ["u1"], subject: "Hot", message: "m"),
            .email(to: ["ops@example.com"], subject: "Hot", message: "m"), .emailRun(runUsers: ["u1"], subject: "s", message: "m"),
            .sms(to: ["+5511999999999"], message: "m"), .script([analysis]), .post(url: "https://example.com/hook", headers: [("X-Key", "k")]),
            .mqtt(topic: "alarms", payload: "$VALUE$"), .insertBucket,
        ]
        let triggers: [ActionTrigger] = [
            .condition(device: "dev1", variable: "env_temperature", is: ">", value: "30"),
            .condition(device: "dev1", variable: "env_temperature", is: "><", value: "10", secondValue: "20", unlock: true),
            .interval("5 minutes"), .schedule(cron: "0 8 * * *", timezone: "America/Sao_Paulo"), .mqttTopic("gw/+/alarm"),
        ]
        var ids: [String] = []
        for (i, kind) in kinds.enumerated() {
            var action = NewAction(name: "action \(i)", kind: kind, triggers: [triggers[i % triggers.count]])
            action.tags = [("kind", "\(i)")]
            ids.append(try account.createAction(action))
        }
        // TagoIO's current model: what starts it in `type`, what it does in `action: {type, …}`.
        let email = try account.actions.info(ids[2])
        #expect(email["type"]?.stringValue == "interval")
        #expect(email["action"]?["type"]?.stringValue == "email")
        #expect(email["action"]?["to"]?.stringValue == "ops@example.com")
        #expect(email["trigger"]?.arrayValue?.first?["interval"]?.stringValue == "5 minutes")
        let between = try account.actions.info(ids[1])
        #expect(between["type"]?.stringValue == "condition")
        #expect(between["action"]?["run_user"]?.stringValue == "u1")
        #expect(between["action"]?["subject"]?.stringValue == "Hot")
        #expect(between["trigger"]?.arrayValue?.first?["is"]?.stringValue == "><")
        #expect(between["trigger"]?.arrayValue?.first?["second_value"]?.stringValue == "20")
        #expect(between["trigger"]?.arrayValue?.first?["unlock"]?.boolValue == true)
        let script = try account.actions.info(ids[5])
        #expect(script["action"]?["script"]?.arrayValue?.first?.stringValue == analysis)
        #expect(script["trigger"]?.arrayValue?.first?["is"]?.stringValue == ">")
        #expect(try account.actions.info(ids[3])["trigger"]?.arrayValue?.first?["cron"]?.stringValue == "0 8 * * *")
        #expect(try account.actions.info(ids[4])["trigger"]?.arrayValue?.first?["topic"]?.stringValue == "gw/+/alarm")
        #expect(try account.actions.list(amount: 50).count == kinds.count)
        try account.actions.edit(ids[0], .object([("active", .bool(false))]))
        #expect(try account.actions.info(ids[0])["active"]?.boolValue == false)
        #expect { try account.actions.edit(ids[0], .object([("type", .string("teleport"))])) } throws: { ($0 as? TagoError)?.message.contains("type must be one of") == true }
        #expect(try account.actions.info(ids[4])["type"]?.stringValue == "mqtt_topic")
        try account.actions.delete(ids[0])
        #expect(try account.actions.list(amount: 50).count == kinds.count - 1)
    }

    @Test func analysesRunWithAScope() throws {
        let tago = try LocalTago()
        let account = tago.account
        var new = NewAnalysis(name: "daily report")
        new.runtime = .python
        new.variables = [("threshold", "30")]
        let (id, token) = try account.createAnalysis(new)
        #expect(token != nil)
        #expect(try account.analyses.info(id)["runtime"]?.stringValue == "python")
        let scope: [JSONValue] = [.object([("variable", .string("env_temperature")), ("value", .number(31))])]
        try account.runAnalysis(id, scope: scope)
        #expect(tago.emulator.analysisRuns.count == 1)
        #expect(tago.emulator.analysisRuns.first?.scope["scope"]?.arrayValue == scope)
        #expect { try account.runAnalysis("000000000000000000000000") } throws: { ($0 as? TagoError)?.kind == .notFound }
        var bad = NewAnalysis(name: "x")
        bad.runtime = .deno
        _ = try account.createAnalysis(bad)
        try account.analyses.edit(id, .object([("name", .string("weekly report"))]))
        #expect(try account.analyses.list().compactMap { $0["name"]?.stringValue } == ["weekly report", "x"])
        try account.analyses.delete(id)
        #expect(try account.analyses.list().count == 1)
    }

    @Test func dashboardsAndWidgets() throws {
        let tago = try LocalTago()
        let account = tago.account
        var dash = NewDashboard(label: "Greenhouse")
        dash.tags = [("site", "north")]
        let dashboard = try account.createDashboard(dash)
        var widget = NewWidget(label: "Temperature", type: "line")
        widget.data = [(origin: "dev1", variables: ["env_temperature"])]
        let w = try account.createWidget(dashboard: dashboard, widget)
        #expect(try account.widgets(dashboard: dashboard).info(w)["type"]?.stringValue == "line")
        #expect(try account.widgets(dashboard: dashboard).info(w)["data"]?.arrayValue?.first?["origin"]?.stringValue == "dev1")
        try account.widgets(dashboard: dashboard).edit(w, .object([("label", .string("Air temperature"))]))
        #expect(try account.widgets(dashboard: dashboard).info(w)["label"]?.stringValue == "Air temperature")
        #expect { try account.createWidget(dashboard: dashboard, NewWidget(label: "", type: "gauge")) } throws: { ($0 as? TagoError)?.kind == .validation }
        #expect { try account.createWidget(dashboard: "000000000000000000000000", widget) } throws: { ($0 as? TagoError)?.kind == .notFound }
        try account.widgets(dashboard: dashboard).delete(w)
        #expect { try account.widgets(dashboard: dashboard).info(w) } throws: { ($0 as? TagoError)?.kind == .notFound }
        try account.dashboards.edit(dashboard, .object([("label", .string("Greenhouse north"))]))
        #expect(try account.dashboards.list(fields: ["id", "label"]).first?["label"]?.stringValue == "Greenhouse north")
        try account.dashboards.delete(dashboard)
        #expect(try account.dashboards.list().isEmpty)
    }

    @Test func accessRulesRunUsersAndTheirNotifications() throws {
        let tago = try LocalTago()
        let account = tago.account
        let rule = try account.createAccessRule(NewAccessRule(
            name: "technicians see the dashboards",
            targets: .array([.array([.string("run_user"), .string("tag"), .object([("key", .string("role")), ("value", .string("technician"))])])]),
            permissions: .array([.object([("effect", .string("allow")), ("action", .array([.string("access")])), ("resource", .array([.string("dashboard")]))])])))
        #expect(try account.accessRules.info(rule)["targets"]?.arrayValue?.count == 1)
        #expect { try account.createAccessRule(NewAccessRule(name: "bad", targets: .string("all"), permissions: .array([]))) } throws: { ($0 as? TagoError)?.kind == .validation }
        try account.accessRules.delete(rule)

        #expect(try account.runInfo()["name"]?.stringValue == "TagoEdge Run")
        try account.editRun(.object([("name", .string("Greenhouse Portal"))]))
        #expect(try account.runInfo()["name"]?.stringValue == "Greenhouse Portal")
        #expect { try account.editRun(.object([("url", .string("no spaces allowed"))])) } throws: { ($0 as? TagoError)?.kind == .validation }

        var user = NewRunUser(name: "Ana", email: "ana@example.com", timezone: "America/Sao_Paulo")
        user.tags = [("role", "technician")]
        let ana = try account.createRunUser(user)
        #expect(try account.runUsers.info(ana)["email"]?.stringValue == "ana@example.com")
        #expect { try account.createRunUser(NewRunUser(name: "Bob", email: "not-an-address")) } throws: { ($0 as? TagoError)?.message.contains("e-mail") == true }
        try account.runUsers.edit(ana, .object([("name", .string("Ana Souza"))]))
        let n = try account.createRunNotification(user: ana, title: "Pump", message: "The pump stopped")
        #expect(try account.runNotifications(user: ana).compactMap { $0["title"]?.stringValue } == ["Pump"])
        try account.editRunNotification(n, .object([("message", .string("The pump restarted"))]))
        #expect(try account.runNotifications(user: ana).first?["message"]?.stringValue == "The pump restarted")
        try account.deleteRunNotification(n)
        #expect(try account.runNotifications(user: ana).isEmpty)
        try account.runUsers.delete(ana)
        #expect(try account.runUsers.list().isEmpty)
    }

    @Test func accountProfileTokensAndNotifications() throws {
        let tago = try LocalTago()
        let account = tago.account
        #expect(try account.info()["email"]?.stringValue == "emulator@localhost")
        let profile = try #require(try account.profiles().first?["id"]?.stringValue)
        #expect(profile == tago.emulator.profileID)
        let token = try account.createProfileToken(profile: profile, name: "provisioning laptop", permission: "full", expire: "1 month")
        #expect(try account.profileTokens(profile: profile).first?["permission"]?.stringValue == "full")
        // The new token works on the Account API; deleted, it does not.
        let other = TagoAccount(token: token, endpoint: tago.endpoint, http: tago.http)
        #expect(try other.info()["email"]?.stringValue == "emulator@localhost")
        try account.deleteProfileToken(profile: profile, token: token)
        #expect { try other.info() } throws: { ($0 as? TagoError)?.kind == .unauthorized }
        #expect { try account.createProfileToken(profile: profile, name: "x", permission: "admin") } throws: { ($0 as? TagoError)?.kind == .validation }

        let info = tago.emulator.addAccountNotification(title: "Limit", message: "90 % of your data")
        let share = tago.emulator.addAccountNotification(title: "Shared dashboard", message: "Ana shared a dashboard", acceptable: true)
        #expect(try account.notifications().count == 2)
        try account.markNotificationsRead([info])
        #expect(try account.notifications().first { $0["id"]?.stringValue == info }?["read"]?.boolValue == true)
        // Buttons are PUT /notification/{id}/{button} today.
        #expect { try account.acceptNotification(info) } throws: { ($0 as? TagoError)?.kind == .validation }
        try account.acceptNotification(share)
        #expect(try account.notifications().first { $0["id"]?.stringValue == share }?["status"]?.stringValue == "accepted")
        #expect { try account.refuseNotification(share) } throws: { ($0 as? TagoError)?.kind == .validation }
        // Created, marked all read, deleted.
        let own = try account.createNotification(title: "Maintenance", message: "Pump service on Monday")
        #expect(try account.notifications().contains { $0["id"]?.stringValue == own && $0["read"]?.boolValue == false })
        try account.markAllNotificationsRead()
        #expect(try account.notifications().allSatisfy { $0["read"]?.boolValue == true })
        try account.deleteNotification(own)
        #expect(try account.notifications().count == 2)
    }
}

@Suite(.serialized) struct ServicesTests {
    @Test func anAnalysisSendsThroughTheServices() throws {
        let tago = try LocalTago()
        let (analysis, token) = try tago.account.createAnalysis(NewAnalysis(name: "alarms"))
        let services = TagoServices(analysisToken: try #require(token), endpoint: tago.endpoint, http: tago.http)
        try services.sendSMS(to: "+5511999999999", message: "Pump stopped")
        try services.sendEmail(to: "ops@example.com", subject: "Daily report", message: "Attached.",
                               attachment: .init(filename: "report.csv", archive: "time,temperature\n2026-11-29T00:00:00Z,21.5\n"))
        try services.publishMQTT(topic: "gw/commands", message: "relay=on", bucket: "dev1", qos: 1)
        try services.sendNotification(title: "Hot", message: "31 °C in the greenhouse", reference: "dev1")
        try services.log("checked 12 devices")
        let outbox = tago.emulator.servicesOutbox
        #expect(outbox.map(\.service) == ["sms", "email", "mqtt", "notification", "console"])
        #expect(outbox.allSatisfy { $0.analysis == analysis })
        #expect(outbox[1].message["attachment"]?["filename"]?.stringValue == "report.csv")
        #expect(outbox[2].message["qos"]?.numberValue == 1)

        #expect { try services.sendSMS(to: "", message: "x") } throws: { ($0 as? TagoError)?.kind == .validation }
        #expect { try services.publishMQTT(topic: "t", message: "m", qos: 3) } throws: { ($0 as? TagoError)?.message.contains("qos") == true }
        let stranger = TagoServices(analysisToken: "a-000000000000000000000000", endpoint: tago.endpoint, http: tago.http)
        #expect { try stranger.sendNotification(title: "t", message: "m") } throws: { ($0 as? TagoError)?.kind == .unauthorized }
        #expect(tago.emulator.servicesOutbox.count == 5, "refused requests send nothing")
    }
}

/// Where TagoKit and the emulator follow TagoIO's current API (tago-io/docs specs/tagoio-api.yaml,
/// tago-io/sdk-js) rather than the seed's; docs/tagoio-api.md lists each with its source.
@Suite(.serialized) struct TodaysAPITests {
    /// `POST /am` answers `{am_id}` (spec: createPolicy, 201): TagoKit read `am` or `id`, so the
    /// rule was made and TagoKit threw.
    @Test func anAccessRuleIsCreatedAndItsIdRead() throws {
        let tago = try LocalTago()
        let id = try tago.account.createAccessRule(NewAccessRule(name: "r", targets: .array([]), permissions: .array([])))
        #expect(try tago.account.accessRules.info(id)["name"]?.stringValue == "r")
    }

    /// `POST /account/profile/token` takes e-mail and password and no token (`security: []`).
    @Test func aProfileTokenFromCredentialsNeedsNoToken() throws {
        let tago = try LocalTago()
        let token = try TagoAccount.profileToken(email: "emulator@localhost", password: "secret", profileID: tago.emulator.profileID,
                                                 name: "script", endpoint: tago.endpoint, http: tago.http)
        #expect(try TagoAccount(token: token, endpoint: tago.endpoint, http: tago.http).info()["email"]?.stringValue == "emulator@localhost")
        #expect { try TagoAccount.profileToken(email: "emulator@localhost", password: "", profileID: tago.emulator.profileID, name: "x",
                                               endpoint: tago.endpoint, http: tago.http) } throws: { ($0 as? TagoError)?.kind == .unauthorized }
    }

    /// Token permissions and expiry are enforced: a read token writes nothing, a write token
    /// reads nothing, an expired one does nothing; for device and profile tokens alike.
    @Test func tokenPermissionsAndExpiryAreEnforced() throws {
        let tago = try LocalTago()
        let account = tago.account
        let (id, _) = try account.createDevice(NewDevice(name: "gw"))
        let reading = Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 1_796_119_200_000))
        func device(_ permission: String, _ expire: String = "never") throws -> TagoDevice {
            TagoDevice(token: try account.createToken(deviceID: id, name: permission, permission: permission, expire: expire), endpoint: tago.endpoint, http: tago.http)
        }
        #expect { try device("read").insert([reading]) } throws: { ($0 as? TagoError)?.kind == .forbidden }
        #expect { _ = try device("write").info() } throws: { ($0 as? TagoError)?.kind == .forbidden }
        try device("write").insert([reading])
        #expect(try device("read").info()["id"]?.stringValue == id)
        #expect { _ = try device("full", "2020-01-01").info() } throws: { ($0 as? TagoError)?.kind == .unauthorized }
        #expect(try device("full", "1 year").info()["id"]?.stringValue == id)

        let profile = tago.emulator.profileID
        let reader = TagoAccount(token: try account.createProfileToken(profile: profile, name: "r", permission: "read"), endpoint: tago.endpoint, http: tago.http)
        #expect(try reader.devices().contains { $0["id"]?.stringValue == id })
        #expect { _ = try reader.createDevice(NewDevice(name: "x")) } throws: { ($0 as? TagoError)?.kind == .forbidden }
        let old = TagoAccount(token: try account.createProfileToken(profile: profile, name: "o", expire: "2020-01-01"), endpoint: tago.endpoint, http: tago.http)
        #expect { _ = try old.devices() } throws: { ($0 as? TagoError)?.kind == .unauthorized }
    }

    /// Numbers given as configuration_params at creation are kept (TagoIO stores them as strings);
    /// /info carries the spec's fields; a service notification reaches the profile's inbox.
    @Test func paramsInfoAndServiceNotifications() throws {
        let tago = try LocalTago()
        let account = tago.account
        var d = NewDevice(name: "gw")
        d.params = [ConfigParam(key: "interval", value: "30s")]
        let (id, token) = try account.createDevice(d)
        #expect(try account.params(deviceID: id).map(\.value) == ["30s"])
        let raw = CurlHTTPClient()
        let body = #"{"name":"n","configuration_params":[{"key":"interval","value":600,"sent":false}]}"#
        let created = try raw.send(HTTPRequest(method: "POST", url: tago.endpoint.api + "/device",
                                               headers: [("token", LocalTago.profileToken), ("Content-Type", "application/json")], body: Array(body.utf8)))
        let newID = try #require(try JSONValue.parse(String(decoding: created.body, as: UTF8.self))["result"]?["device_id"]?.stringValue)
        #expect(try account.params(deviceID: newID).first?.value == "600")

        let info = try TagoDevice(token: token, endpoint: tago.endpoint, http: tago.http).info()
        for key in ["id", "name", "profile", "created_at", "updated_at", "tags", "active", "type"] { #expect(info[key] != nil, "/info has \(key)") }
        #expect(info["profile"]?.stringValue == tago.emulator.profileID)

        let (_, analysisToken) = try account.createAnalysis(NewAnalysis(name: "alarms"))
        try TagoServices(analysisToken: try #require(analysisToken), endpoint: tago.endpoint, http: tago.http).sendNotification(title: "Pump", message: "stopped")
        #expect(try account.notifications().contains { $0["title"]?.stringValue == "Pump" })
    }
}

/// `all`: every page, within the plan's limit, through 429s.
@Suite(.serialized) struct ListAllTests {
    @Test func listAllPagesThroughEverythingWithinTheLimit() throws {
        let tago = try LocalTago()
        for i in 1...25 { _ = try tago.account.createDevice(NewDevice(name: "page-\(i)")) }
        let clock = ManualClock()
        let budget = RequestBudget(perMinute: ["GET /device": 2], clock: clock)
        let all = try tago.account.buckets.listAll(pageSize: 10, name: "page-*", budget: budget, route: "GET /device", clock: clock)
        #expect(all.count == 25)
        #expect(Set(all.compactMap { $0["name"]?.stringValue }).count == 25)
        #expect(budget.sent["GET /device"] == 3)
        #expect(clock.nanoseconds() >= 1_000_000_000 + 60_000_000_000, "the third page waited for the minute")
    }
}

/// The event stream `analysis serve` reads: events in pieces, comments, CR LF, bounds, chunks.
@Suite struct EventStreamParsingTests {
    @Test func eventsArriveWholeWhateverThePieces() {
        let stream = Array(": keep-alive\n\nevent: trigger\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata:no space\n\n".utf8)
        for cut in 0...stream.count {
            var p = ServerSentEventParser()
            let events = p.feed(Array(stream[..<cut])) + p.feed(Array(stream[cut...]))
            #expect(events == [ServerSentEvent(event: "trigger", data: "{\"a\":\n1}"), ServerSentEvent(event: "message", data: "no space")], "cut at \(cut)")
        }
    }

    @Test func anEventBeyondTheBoundIsDroppedNotBuffered() {
        var p = ServerSentEventParser(maxEvent: 64)
        let events = p.feed(Array(("data: " + String(repeating: "x", count: 1000) + "\n\ndata: ok\n\n").utf8))
        #expect(events == [ServerSentEvent(event: "message", data: "ok")])
        #expect(p.dropped == 1)
    }

    @Test func chunkedBodiesDecodeAndBadSizesAreRefused() throws {
        var d = ChunkedDecoder()
        let body = Array("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n".utf8)
        var out: [UInt8] = []
        for b in body { out += try d.feed([b]) }
        #expect(String(decoding: out, as: UTF8.self) == "hello world")
        #expect(d.finished)
        var bad = ChunkedDecoder()
        #expect(throws: ChunkedEncodingError.self) { _ = try bad.feed(Array("zz\r\n".utf8)) }
        var huge = ChunkedDecoder()
        #expect(throws: ChunkedEncodingError.self) { _ = try huge.feed(Array("fffffffff\r\n".utf8)) }
    }
}
