import Testing
@testable import EdgeCore

@Suite struct ChecksumTests {
    @Test func sensirionDatasheetExample() {
        // SHT3x datasheet, section 4.12: CRC of 0xBEEF is 0x92.
        #expect(Checksum.sensirionCRC8([0xBE, 0xEF]) == 0x92)
        #expect(Checksum.sensirionCRC8([0xBE, 0xEE]) != 0x92)
    }

    @Test func maximCRCOfARealScratchpad() {
        // w1_slave of a DS18B20 at 23.125 °C: "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES".
        #expect(Checksum.maximCRC8([0x72, 0x01, 0x4B, 0x46, 0x7F, 0xFF, 0x0E, 0x10]) == 0x57)
        // A ROM code followed by its CRC checks to zero.
        let rom: [UInt8] = [0x28, 0xFF, 0x64, 0x1E, 0x0F, 0x16, 0x04]
        #expect(Checksum.maximCRC8(rom + [Checksum.maximCRC8(rom)]) == 0)
    }
}

@Suite struct TimestampTests {
    @Test func formatsUTC() {
        #expect(Timestamp(millisecondsSince1970: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSince1970: 1_700_000_000_123).iso8601 == "2023-11-14T22:13:20.123Z")
        #expect(Timestamp(millisecondsSince1970: 951_782_400_000).iso8601 == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(millisecondsSince1970: -1).iso8601 == "1969-12-31T23:59:59.999Z")
    }

    @Test func parsesWhatItFormatsAndOffsets() {
        for ms: Int64 in [0, 1_700_000_000_123, 4_102_444_800_000, 951_782_400_999] {
            let t = Timestamp(millisecondsSince1970: ms)
            #expect(Timestamp(iso8601: t.iso8601) == t)
        }
        #expect(Timestamp(iso8601: "2023-11-14T23:13:20+01:00")?.millisecondsSince1970 == 1_700_000_000_000)
        #expect(Timestamp(iso8601: "2023-11-14T20:13:20.5-02:00")?.millisecondsSince1970 == 1_700_000_000_500)
        #expect(Timestamp(iso8601: "2023-11-14T22:13:20") != nil)
        #expect(Timestamp(iso8601: "2023-13-14T22:13:20Z") == nil)
        #expect(Timestamp(iso8601: "yesterday") == nil)
        #expect(Timestamp(iso8601: "2023-11-14T22:13:20Zjunk") == nil)
    }
}

@Suite struct JSONTests {
    /// Found by the fuzzer (scripts/fuzz core): `2.5e4444` parsed as infinity, which serializes
    /// as no JSON and traps when made an integer (the emulator's state file did that).
    @Test func numbersBeyondADoubleAreRefused() throws {
        for text in ["2.5e4444", "-1e309", "[1e400]", #"{"time": 1E999}"#] {
            #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
        }
        #expect(try JSONValue.parse("1.7976931348623157e308") == .number(1.7976931348623157e308))
        #expect(Int64(saturating: 1e300) == .max && Int64(saturating: -1e300) == .min && Int64(saturating: .nan) == 0 && Int64(saturating: -2.9) == -2)
    }

    @Test func serializesEscapesAndNumbers() {
        let v = JSONValue.object([("a\"b", .string("line\nbreak\t\u{01}")), ("n", .number(3)), ("f", .number(0.25)),
                                  ("bad", .number(.nan)), ("list", .array([.bool(true), .null]))])
        #expect(v.serialized == #"{"a\"b":"line\nbreak\t\u0001","n":3,"f":0.25,"bad":null,"list":[true,null]}"#)
    }

    @Test func parsesAndRoundTrips() throws {
        let text = #"{"variable":"t","value":-1.5e2,"unit":"°C","metadata":{"k":"\u00e9\ud83d\ude00"},"ok":[true,false,null]}"#
        let v = try JSONValue.parse(text)
        #expect(v["value"]?.numberValue == -150)
        #expect(v["metadata"]?["k"]?.stringValue == "é😀")
        #expect(try JSONValue.parse(v.serialized) == v)
    }

    @Test func errorsSayWhere() {
        do {
            _ = try JSONValue.parse("{\n  \"a\": 1,\n  \"b\": tru\n}")
            Issue.record("parsed invalid JSON")
        } catch {
            #expect(error.line == 3)
            #expect(error.column == 8)
        }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("[1,]") }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("01x") }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("\"unterminated") }
    }
}

@Suite struct UnitTests {
    @Test func durations() {
        #expect(parseDuration("250ms") == 250)
        #expect(parseDuration("10s") == 10_000)
        #expect(parseDuration("1m30s") == 90_000)
        #expect(parseDuration("1.5h") == 5_400_000)
        #expect(parseDuration("10") == nil)
        #expect(parseDuration("ten seconds") == nil)
        #expect(parseDuration("") == nil)
        #expect(formatDuration(90_000) == "1m30s")
        #expect(formatDuration(250) == "250ms")
    }

    @Test func sizes() {
        #expect(parseByteSize("64MiB") == 67_108_864)
        #expect(parseByteSize("512 KiB") == 524_288)
        #expect(parseByteSize("4096") == 4096)
        #expect(parseByteSize("1GB") == 1_000_000_000)
        #expect(parseByteSize("lots") == nil)
        #expect(parseByteSize("12parsecs") == nil)
    }
}

@Suite struct ErrorTextTests {
    @Test func hardwareErrorNamesDeviceCallAndErrno() {
        let e = HardwareError(device: "/dev/i2c-1", operation: "I2C_RDWR to 0x76", errno: 121)
        #expect(e.description == "/dev/i2c-1: I2C_RDWR to 0x76 failed: Remote I/O error (no acknowledge)")
        let d = HardwareError(device: "/x", operation: "parse", errno: 0, detail: "bad")
        #expect(d.description == "/x: parse failed: bad")
    }

    @Test func readingBecomesATagoDataObject() {
        let r = Reading(variable: "t", value: .number(21.5), unit: "°C", time: Timestamp(millisecondsSince1970: 0), metadata: ["rom": "28-1"])
        #expect(r.dataObject.serialized == #"{"variable":"t","value":21.5,"unit":"°C","time":"1970-01-01T00:00:00.000Z","metadata":{"rom":"28-1"}}"#)
    }

    @Test func manualClockAdvancesOnSleep() {
        let clock = ManualClock(startNanoseconds: 0)
        clock.sleep(microseconds: 1500)
        #expect(clock.nanoseconds() == 1_500_000)
    }
}

@Suite struct FastSerializationTests {
    @Test(arguments: [
        Reading(variable: "env_temperature", value: .number(21.37), unit: "°C", time: Timestamp(millisecondsSince1970: 1_780_000_000_123)),
        Reading(variable: "door", value: .bool(false), time: Timestamp(millisecondsSince1970: 0)),
        Reading(variable: "note", value: .string("quote \" back\\slash\nnew\tline \u{01}"), unit: "u\"", time: Timestamp(millisecondsSince1970: -1),
                metadata: ["b": "2", "a": "é", "c": "\"x\""]),
        Reading(variable: "big", value: .number(1e300), time: Timestamp(millisecondsSince1970: 253_402_300_799_999)),
    ])
    func matchesTheGeneralSerializer(reading: Reading) {
        var bytes: [UInt8] = []
        reading.appendDataObjectJSON(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == reading.dataObject.serialized)
    }
}

@Suite struct ClockGuardTests {
    final class FakeWall: WallClock, @unchecked Sendable {
        var ms: Int64
        init(_ ms: Int64) { self.ms = ms }
        func now() -> Timestamp { Timestamp(millisecondsSince1970: ms) }
    }

    @Test func readingsFromBeforeTheClockWasSetGetTheirRealTime() {
        let mono = ManualClock(startNanoseconds: 5_000_000_000)  // 5 s after boot
        let wall = FakeWall(0)  // a Pi without RTC boots in 1970
        var synced = false
        let guardian = ClockGuard(mode: .kernel, wall: wall, monotonic: mono, kernelSynchronised: { synced })
        #expect(!guardian.isTrusted)
        var reading = Reading(variable: "t", value: .number(1), time: guardian.stamp())
        #expect(reading.time.millisecondsSince1970 < 0)
        #expect(!guardian.resolve(&reading))  // held while the clock is not trusted
        mono.advance(nanoseconds: 60_000_000_000)  // a minute later NTP sets the clock
        wall.ms = 1_800_000_000_000
        synced = true
        #expect(guardian.resolve(&reading))
        #expect(reading.time.millisecondsSince1970 == 1_800_000_000_000 - 60_000)
        #expect(reading.metadata.isEmpty)
        #expect(guardian.stamp().millisecondsSince1970 == 1_800_000_000_000)
    }

    @Test func autoTrustsAClockPastTheBuildDateAndEstimatesAcrossReboots() {
        let mono = ManualClock(startNanoseconds: 1_000_000_000)
        let wall = FakeWall(1_700_000_000_000)  // before the build date: a stale fake-hwclock
        let guardian = ClockGuard(mode: .auto, earliest: Timestamp(millisecondsSince1970: 1_795_000_000_000), wall: wall, monotonic: mono)
        #expect(!guardian.isTrusted)
        var fromLastBoot = Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: -999_999_999))
        wall.ms = 1_800_000_000_000
        #expect(guardian.isTrusted)
        #expect(guardian.resolve(&fromLastBoot))
        #expect(fromLastBoot.time.millisecondsSince1970 == 1_800_000_000_000)
        #expect(fromLastBoot.metadata["time_estimated"] == "true")
    }
}
