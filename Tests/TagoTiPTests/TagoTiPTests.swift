import Testing
import TestSupport
@testable import TagoTiP

private let auth = "4deedd7bab8817ec"
private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The data points a body stands for, with body-level defaults applied (§6.4): the builder may
/// move a body-level group onto the variables, which means the same.
private func points(_ body: TipPushBody?) -> [TipVariable]? {
    guard case .structured(let b)? = body else { return nil }
    return b.resolved
}

/// The examples of TagoTiP.md (§4, §9, §11) and TagoTipServers.md (§3), each parsed strictly.
@Suite struct TipSpecExampleTests {
    static let frames = [
        "PUSH|4deedd7bab8817ec|sensor-01|[temperature:=32]",
        "PUSH|!42|4deedd7bab8817ec|sensor-01|[temperature:=32]",
        "PING|4deedd7bab8817ec|sensor-01",
        "PING|!5|4deedd7bab8817ec|sensor-01",
        "PUSH|4deedd7bab8817ec|weather-denver|[temperature:=32;humidity:=65]",
        "PUSH|!1|4deedd7bab8817ec|weather-denver|[temperature:=32;humidity:=65]",
        "PUSH|4deedd7bab8817ec|sensor-0A1F|[temperature:=32.5#C;status=online;active?=true]",
        "PUSH|4deedd7bab8817ec|sensor-0A1F|[temperature:=-15.3#C]",
        "PUSH|4deedd7bab8817ec|drone-07|[altitude:=305#m;position@=39.74,-104.99,305]",
        "PUSH|4deedd7bab8817ec|sensor-01|[temperature:=32{source=dht22,quality=high}]",
        "PUSH|4deedd7bab8817ec|sensor-01|^batch_42@1694567890000{firmware=2.1}[temperature:=32#C;humidity:=65#%]",
        "PUSH|4deedd7bab8817ec|datalogger-7|[temp:=32@1694567890000;temp:=33@1694567900000;temp:=31@1694567910000]",
        "PUSH|4deedd7bab8817ec|sensor-01|>xDEADBEEF01020304",
        "PUSH|4deedd7bab8817ec|sensor-01|>b3q2+7wECAwQ=",
        "PULL|4deedd7bab8817ec|weather-denver|[temperature]",
        "PULL|!7|4deedd7bab8817ec|weather-denver|[temperature]",
        "PUSH|4deedd7bab8817ec|sensor-01|[temperature:=32.5#C@1694567890000^reading_001{source=dht22,quality=high}]",
        "PUSH|4deedd7bab8817ec|sensor-01|@1694567890000[temp:=32@1694567891000;humidity:=65]",
        "PUSH|4deedd7bab8817ec|sensor-01|{firmware=2.1}[temp:=32{source=dht22};humidity:=65]",
        "PUSH|4deedd7bab8817ec|sensor-01|^batch_42@1694567890000[temperature:=32#F;position@=39.74,-104.99{source=dht22}]",
        // The reference codec's order since February 2026 (the spec writes ^group first).
        "PUSH|4deedd7bab8817ec|sensor-01|@1694567890000^batch_42[temperature:=32]",
    ]

    @Test(arguments: frames) func everyExampleFrameParses(_ text: String) throws {
        let frame = try Tip.parseFrame(bytes(text + "\n"))
        #expect(frame.auth == auth)
        // And what the builder writes from it parses to the same frame.
        let again = try Tip.parseFrame(try Tip.encode(frame))
        #expect(again.counter == frame.counter && again.serial == frame.serial && again.pull == frame.pull)
        if case .structured? = frame.push { #expect(points(again.push) == points(frame.push)) } else { #expect(again.push == frame.push) }
    }

    @Test func inheritanceFollowsSection6_4() throws {
        let frame = try Tip.parseFrame(bytes("PUSH|\(auth)|s|^g@1694567890000{firmware=2.1,source=x}[temp:=32@1694567891000{source=dht22};humidity:=65]"))
        guard case .structured(let body)? = frame.push else { Issue.record("not structured"); return }
        let r = body.resolved
        #expect(r[0].timestamp == 1694567891000 && r[1].timestamp == 1694567890000)
        #expect(r[0].group == "g" && r[1].group == "g")
        #expect(r[0].metadata == [TipPair("firmware", "2.1"), TipPair("source", "dht22")])
        #expect(r[1].metadata == [TipPair("firmware", "2.1"), TipPair("source", "x")])
    }

    static let acks: [(String, Bool, TipAck)] = [
        ("ACK|OK|3", true, TipAck(status: .ok, detail: "3")),
        ("ACK|!1|OK|3", true, TipAck(counter: 1, status: .ok, detail: "3")),
        ("ACK|PONG", true, TipAck(status: .pong)),
        ("ACK|!2|PONG", true, TipAck(counter: 2, status: .pong)),
        ("ACK|CMD|reboot", true, TipAck(status: .cmd, detail: "reboot")),
        ("ACK|CMD|ota=https://example.com/v2.1.bin", true, TipAck(status: .cmd, detail: "ota=https://example.com/v2.1.bin")),
        ("ACK|ERR|invalid_token", true, TipAck(status: .err, detail: "invalid_token")),
        ("ACK|!5|ERR|invalid_payload", true, TipAck(counter: 5, status: .err, detail: "invalid_payload")),
        ("ACK|OK|[temperature:=32#F@1694567890000]", true, TipAck(status: .ok, detail: "[temperature:=32#F@1694567890000]")),
        ("OK|3", false, TipAck(status: .ok, detail: "3")),
        ("!42|OK|2", false, TipAck(counter: 42, status: .ok, detail: "2")),
        ("!1|ERR|invalid_payload", false, TipAck(counter: 1, status: .err, detail: "invalid_payload")),
        ("CMD|reboot", false, TipAck(status: .cmd, detail: "reboot")),
        ("!7|OK|[temperature:=32#F@1694567890000;humidity:=65#%@1694567890000]", false,
         TipAck(counter: 7, status: .ok, detail: "[temperature:=32#F@1694567890000;humidity:=65#%@1694567890000]")),
    ]

    @Test(arguments: acks) func everyExampleAnswerParses(_ text: String, raw: Bool, expected: TipAck) throws {
        let ack = try Tip.parseAck(bytes(text), raw: raw)
        #expect(ack == expected)
        #expect(ack.encoded(raw: raw) == bytes(text))
    }

    @Test func answersAreTyped() throws {
        #expect(try Tip.parseAck(bytes("!9|OK|12"), raw: false).acceptedCount == 12)
        #expect(try Tip.parseAck(bytes("ERR|invalid_seq"), raw: false).error == .invalidSeq)
        #expect(try Tip.parseAck(bytes("ERR|envelope_too_large"), raw: false).error == .other("envelope_too_large"))
    }

    @Test(arguments: ["[temp:=32#C;humidity:=65#%]", "^batch_42@1694567890000[temp:=32#C]", ">xDEADBEEF01020304", ">b3q2+7wECAwQ=",
                      "!42|[temp:=32#C;humidity:=65#%]", "!1|>xDEADBEEF01020304"])
    func mqttBindingPayloadsParse(_ text: String) throws {
        let (counter, body) = try Tip.parseMQTTPush(bytes(text))
        let (counter2, body2) = try Tip.parseMQTTPush(try Tip.mqttPush(counter: counter, body: body))
        #expect(counter2 == counter)
        if case .structured = body { #expect(points(body2) == points(body)) } else { #expect(body2 == body) }
    }

    /// §2 and TagoTiPs.md §2.1: the token's hash, and SHA-256's own test vectors.
    @Test func authorizationHash() {
        #expect(Tip.authorizationHash(token: "ate2bd319014b24e0a8aca9f00aea4c0d0") == "4deedd7bab8817ec")
        #expect(Tip.hexString(SHA256.hash(bytes("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Tip.hexString(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Tip.hexString(SHA256.hash(bytes(String(repeating: "a", count: 1000)))) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // TagoTiPs.md §2.2: the Device Hash of sensor-01 starts ab 77 88 d2.
        #expect(Tip.hexString(SHA256.hash(bytes("sensor-01")).prefix(8)) == "ab7788d22eb7372f")
    }
}

/// What the strict parser refuses: the grammar's edges (facts from the spec, and the reference
/// codec's own rejection tests), each with the byte where it went wrong.
@Suite struct TipStrictnessTests {
    static let refused: [(String, String)] = [
        ("PUSH|\(auth)|s|[temp:=32; hum:=1]", "space after ';' (the old TagoEdge separator)"),
        ("PUSH|\(auth)|s|[Temperature:=32]", "uppercase name"),
        ("PUSH|\(auth)|s|[my-var:=32]", "hyphen in a name"),
        ("PUSH|\(auth)|s|[:=32]", "empty name"),
        ("PUSH|\(auth)|s|[n:=032]", "leading zero"),
        ("PUSH|\(auth)|s|[n:=-032]", "leading zero"),
        ("PUSH|\(auth)|s|[n:=.5]", "no integer part"),
        ("PUSH|\(auth)|s|[n:=5.]", "no fraction digits"),
        ("PUSH|\(auth)|s|[n:=--5]", "two signs"),
        ("PUSH|\(auth)|s|[n:=]", "empty number"),
        ("PUSH|\(auth)|s|[n:=1e5]", "exponent"),
        ("PUSH|\(auth)|s|[n:=NaN]", "NaN"),
        ("PUSH|\(auth)|s|[s=]", "empty string"),
        ("PUSH|\(auth)|s|[b?=True]", "boolean case"),
        ("PUSH|\(auth)|s|[p@=1,2,3,4]", "four coordinates"),
        ("PUSH|\(auth)|s|[p@=,2]", "empty latitude"),
        ("PUSH|\(auth)|s|[p@=1,2#m]", "unit on a location"),
        ("PUSH|\(auth)|s|[t:=32#]", "empty unit"),
        ("PUSH|\(auth)|s|[t:=32#abcdefghijklmnopqrstuvwxyz]", "26-byte unit"),
        ("PUSH|\(auth)|s|[t:=32@]", "empty timestamp"),
        ("PUSH|\(auth)|s|[t:=32@99999999999999999999999]", "timestamp beyond 64 bits"),
        ("PUSH|\(auth)|s|[t:=32^]", "empty group"),
        ("PUSH|\(auth)|s|[t:=32{}]", "empty metadata"),
        ("PUSH|\(auth)|s|[t:=32{k=}]", "empty metadata value"),
        ("PUSH|\(auth)|s|[t:=32{K=v}]", "uppercase metadata key"),
        ("PUSH|\(auth)|s|[t:=32{k=a,b}]", "bare comma in a metadata value"),
        ("PUSH|\(auth)|s|[t:=32@1^g#C]", "suffixes out of order"),
        ("PUSH|\(auth)|s|[]", "empty block"),
        ("PUSH|\(auth)|s|[a:=1;;b:=2]", "empty item"),
        ("PUSH|\(auth)|s|[a:=1;]", "trailing ';'"),
        ("PUSH|\(auth)|s|[a:=1]x", "bytes after ']'"),
        ("PUSH|\(auth)|s|[a=x\\qy]", "unknown escape"),
        ("PUSH|\(auth)|s|[a=x\ty]", "tab in a value"),
        ("PUSH|\(auth)|s|[a=x}y]", "unescaped '}'"),
        ("PUSH|\(auth)|s|^a^b[a:=1]", "two body groups"),
        ("PUSH|\(auth)|s|@1@2[a:=1]", "two body timestamps"),
        ("PUSH|\(auth)|s|{a=1}^g[a:=1]", "metadata before group"),
        ("PUSH|\(auth)|s|>xABC", "odd hex"),
        ("PUSH|\(auth)|s|>xZZ", "not hex"),
        ("PUSH|\(auth)|s|>b", "empty base64"),
        ("PUSH|\(auth)|s|>q00", "unknown passthrough"),
        ("PUSH|\(auth)|my.device|[a:=1]", "dot in a serial"),
        ("PUSH|4deedd7bab8817e|s|[a:=1]", "15-character hash"),
        ("PUSH|4deedd7bab8817eg|s|[a:=1]", "not hex in the hash"),
        ("PUSH|!01|\(auth)|s|[a:=1]", "counter with a leading zero"),
        ("PUSH|!4294967296|\(auth)|s|[a:=1]", "counter beyond 32 bits"),
        ("PUSH|!|\(auth)|s|[a:=1]", "empty counter"),
        ("push|\(auth)|s|[a:=1]", "lowercase method"),
        ("PUSH/2|\(auth)|s|[a:=1]", "a future version"),
        ("PUSH|\(auth)|s", "PUSH without a body"),
        ("PING|\(auth)|s|[a:=1]", "PING with a body"),
        ("PULL|\(auth)|s|temperature", "PULL without brackets"),
        ("PUSH|\(auth)|s|[a:=1]|x", "a field too many"),
        ("PUSH|\(auth)|s|[a=x\0y]", "NUL"),
        ("PUSH|\(auth)|s|[a=x\ny]", "a raw LF inside"),
    ]

    @Test(arguments: refused) func refusedWithAPlace(_ text: String, reason: String) {
        do {
            let frame = try Tip.parseFrame(bytes(text))
            Issue.record("accepted (\(reason)): \(frame)")
        } catch {
            #expect(!error.what.isEmpty, "\(reason)")
        }
    }

    @Test func invalidUTF8AndSizeAreRefused() throws {
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|s|[a=") + [0xC3, 0x28] + bytes("]")) }
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|s|[a=") + [0xED, 0xA0, 0x80] + bytes("]")) }  // a surrogate
        #expect(try Tip.parseFrame(bytes("PUSH|\(auth)|s|[a=°C ✓ 🌡]")).push != nil)
        let header = "PUSH|\(auth)|s|[msg="
        let exact = header + String(repeating: "x", count: Tip.maxFrameBytes - header.utf8.count - 1) + "]"
        #expect(exact.utf8.count == Tip.maxFrameBytes)
        #expect(try Tip.parseFrame(bytes(exact)).push != nil)
        #expect(try Tip.parseFrame(bytes(exact + "\n")).push != nil)
        do {
            _ = try Tip.parseFrame(bytes(exact.dropLast() + "x]"))
            Issue.record("a frame of 16,385 bytes was accepted")
        } catch {
            #expect(error.kind == .tooLarge)
        }
    }

    @Test func limitsOfSection4_5() throws {
        let hundred = (0..<100).map { "v\($0):=1" }.joined(separator: ";")
        #expect(try Tip.parseFrame(bytes("PUSH|\(auth)|s|[\(hundred)]")).push != nil)
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|s|[\(hundred);x:=1]")) }
        let pairs = (0..<32).map { "k\($0)=v" }.joined(separator: ",")
        #expect(try Tip.parseFrame(bytes("PUSH|\(auth)|s|[t:=1{\(pairs)}]")).push != nil)
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|s|[t:=1{\(pairs),x=y}]")) }
        let name = String(repeating: "a", count: 100)
        #expect(try Tip.parseFrame(bytes("PUSH|\(auth)|s|[\(name):=1^\(name){\(name)=v}]")).push != nil)
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|s|[\(name)a:=1]")) }
        #expect(throws: TipError.self) { try Tip.parseFrame(bytes("PUSH|\(auth)|\(name)A|[a:=1]")) }
        #expect(try Tip.parseFrame(bytes("PUSH|!4294967295|\(auth)|s|[a:=1]")).counter == UInt32.max)
        #expect(try Tip.parseFrame(bytes("PUSH|!0|\(auth)|s|[a:=1]")).counter == 0)
    }

    @Test func escapesDecode() throws {
        let frame = try Tip.parseFrame(bytes(##"PUSH|\##(auth)|s|[a=\|\[\]\;\,\{\}\#\@\^\\\n,=:?{note=has\{curly\}braces\,x}]"##))
        guard case .structured(let body)? = frame.push else { Issue.record("not structured"); return }
        #expect(body.variables[0].value == .string("|[];,{}#@^\\\n,=:?"))
        #expect(body.variables[0].metadata == [TipPair("note", "has{curly}braces,x")])
    }
}

/// The builder never writes what the parser refuses, and what it writes reads back the same.
@Suite struct TipBuilderTests {
    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (25.5, "25.5"), (-15.3, "-15.3"), (1e-5, "0.00001"), (1e21, "1000000000000000000000"),
        (123456789.125, "123456789.125"), (100.0, "100"), (5e-324, "0." + String(repeating: "0", count: 323) + "5"),
        (0.1 + 0.2, "0.30000000000000004"), (-1.5e-7, "-0.00000015"),
    ])
    func numbersWithoutExponents(_ v: Double, _ text: String) {
        #expect(Tip.formatNumber(v) == text)
    }

    @Test func everyFiniteDoubleRoundTrips() {
        var random = SeededRandom("TipBuilderTests.everyFiniteDoubleRoundTrips")
        var checked = 0
        for _ in 0..<20_000 {
            let v = Double(bitPattern: random.next())
            guard v.isFinite else { #expect(Tip.formatNumber(v) == nil); continue }
            let text = Tip.formatNumber(v)!
            #expect(Tip.isNumber(Array(text.utf8)), "\(v) -> \(text)")
            #expect(Double(text) == v, "\(v) -> \(text)")
            checked += 1
        }
        #expect(checked > 19_000)
        #expect(Tip.formatNumber(.nan) == nil && Tip.formatNumber(.infinity) == nil && Tip.formatNumber(-.infinity) == nil)
    }

    @Test func adversarialValuesRoundTrip() throws {
        var random = SeededRandom("TipBuilderTests.adversarialValuesRoundTrip")
        var corpus: [[UInt8]] = []
        defer { recordTagoTiPCorpus(corpus) }
        let alphabet: [String] = ["|", "[", "]", ";", ",", "{", "}", "#", "@", "^", "\\", "\n", "=", ":", "?", "!", ">", " ", "a", "Z", "0", "°", "✓", "🌡", "\"", "'", "$", "~", "`"]
        for _ in 0..<2_000 {
            let length = Int(random.next() % 12) + 1
            let text = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }.joined()
            let variable = TipVariable(name: "s", value: .string(text), unit: "°C", timestamp: random.next() >> 1, group: "g_1",
                                       metadata: [TipPair("k", text), TipPair("z", "1")])
            let body = TipPushBody.structured(TipStructuredBody(variables: [variable, TipVariable(name: "n", value: .number("-0.5"))]))
            let payload = try Tip.mqttPush(counter: UInt32(truncatingIfNeeded: random.next()), body: body)
            corpus.append(payload)
            let (_, back) = try Tip.parseMQTTPush(payload)
            #expect(back == body, "\(String(decoding: payload, as: UTF8.self))")
        }
    }

    @Test(arguments: [
        (TipVariable(name: "s", value: .string("")), "empty"),
        (TipVariable(name: "s", value: .string("a\tb")), "control character"),
        (TipVariable(name: "s", value: .string("a\rb")), "control character"),
        (TipVariable(name: "Temp", value: .number("1")), "variable name"),
        (TipVariable(name: "t", value: .number("1e5")), "number"),
        (TipVariable(name: "t", value: .number("1"), unit: "a#b"), "unit"),
        (TipVariable(name: "t", value: .number("1"), unit: String(repeating: "u", count: 26)), "unit"),
        (TipVariable(name: "t", value: .number("1"), metadata: [TipPair("k", "")]), "empty"),
        (TipVariable(name: "t", value: .number("1"), metadata: [TipPair("K", "v")]), "metadata key"),
        (TipVariable(name: "t", value: .number("1"), group: "a-b"), "group"),
        (TipVariable(name: "p", value: .location(lat: "1", lng: "2", alt: nil), unit: "m"), "location"),
    ])
    func whatTheGrammarCannotCarryIsRefused(_ v: TipVariable, _ fragment: String) {
        do {
            _ = try Tip.mqttPush(counter: 1, body: .structured(TipStructuredBody(variables: [v])))
            Issue.record("built")
        } catch {
            #expect(error.what.contains(fragment), "\(error)")
        }
    }

    @Test func aBodyGroupWithATimestampGoesOnTheVariables() throws {
        let body = TipStructuredBody(group: "g", timestamp: 5, variables: [TipVariable(name: "a", value: .bool(true)), TipVariable(name: "b", value: .bool(false), group: "h")])
        #expect(String(decoding: try body.encoded(), as: UTF8.self) == "@5[a?=true^g;b?=false^h]")
        #expect(try Tip.parsePushBody(try body.encoded()) == .structured(TipStructuredBody(timestamp: 5, variables: [
            TipVariable(name: "a", value: .bool(true), group: "g"), TipVariable(name: "b", value: .bool(false), group: "h"),
        ])))
    }

    @Test func limitsAreEnforcedWhenBuilding() {
        let many = (0...100).map { TipVariable(name: "v\($0)", value: .number("1")) }
        #expect(throws: TipError.self) { try TipStructuredBody(variables: many).encoded() }
        let big = TipVariable(name: "s", value: .string(String(repeating: "x", count: 16_400)))
        #expect(throws: TipError.self) { try Tip.mqttPush(counter: 1, body: .structured(TipStructuredBody(variables: [big]))) }
    }
}
