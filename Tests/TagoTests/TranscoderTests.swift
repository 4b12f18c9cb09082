import Testing
@testable import EdgeCore
@testable import Uplink

/// The transcoder must write exactly what the general path writes, or decline.
@Suite struct TranscoderTests {
    /// What the uplink sent before the transcoder existed.
    func general(_ bytes: [UInt8]) -> String? {
        guard let r = ReadingCodec.decode(bytes) else { return nil }
        var out: [UInt8] = []
        r.appendDataObjectJSON(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func fast(_ bytes: [UInt8]) -> String? {
        var t = ReadingJSONTranscoder()
        var out: [UInt8] = Array("prefix,".utf8)
        let handled = bytes.withUnsafeBytes { t.append(encoded: $0, to: &out) }
        #expect(out.starts(with: Array("prefix,".utf8)), "what was there before is kept")
        if !handled {
            #expect(out == Array("prefix,".utf8), "a declined record appends nothing")
            return nil
        }
        return String(decoding: out.dropFirst(7), as: UTF8.self)
    }

    @Test(arguments: [
        21.37, 21.5, -3.25, 0.001, 0.0015, 21.73459, 1013.253, 0.1234567, 9.999999, 99999.99, 0.001000001, 0.1, 0.3, 1.0 / 3, 2.0 / 3, 1e-5, 5e-324, 123456.789, 999_999_999_999_999.5,
        1e15, 1e16, 4.35, 1013.25, 100.0, -0.0, 0, -7, 12345678.125, 0.000123, 1e300, -1e-300,
        .nan, .infinity, -.infinity, Double.pi, 9007199254740993, 0.07, 1.005, 299_792_458.000_001,
        // Around the nine-digit path's edges: its range ends below 2,000,000, nine fraction
        // digits at most, ten go to the runtime's formatter.
        1_999_999.999999999, 1_999_999.99, 2_000_000.5, 1_234_567.123456789, 0.123456789, 0.1234567891,
        0.0010000000000000002, 0.000999, 999_999.000000001, 5.000000001, 0.999999999, 0.9999999999,
    ])
    func numbersMatchSwiftsShortestText(value: Double) {
        let bytes = ReadingCodec.encode(Reading(variable: "v", value: .number(value), time: Timestamp(millisecondsSince1970: 1_780_000_000_123)))
        #expect(fast(bytes) == general(bytes))
    }

    @Test func randomNumbersMatch() {
        var g = SystemRandomNumberGenerator()
        for i in 0..<25_000 {
            let value: Double
            switch i % 5 {
            case 4:  // as the agent stores a driver's value: seven significant digits
                let v = Double.random(in: -1e5...1e5, using: &g) / pow10(Int.random(in: 0...6, using: &g))
                var magnitude = 0
                var x = abs(v)
                while x >= 10 { x /= 10; magnitude += 1 }
                while x < 1, x > 0 { x *= 10; magnitude -= 1 }
                let scale = pow10(6 - magnitude)
                value = 6 - magnitude < 0 ? v : (v * scale).rounded() / scale
            case 0: value = Double(bitPattern: g.next())  // any bit pattern, NaNs included
            case 1: value = Double(Int64.random(in: -100_000_000...100_000_000, using: &g)) / 1000  // three decimals
            case 2: value = Double.random(in: -1000...1000, using: &g)  // full precision, as drivers compute
            default: value = Double(Int.random(in: 0...99_999, using: &g)) / pow10(Int.random(in: 0...9, using: &g))
            }
            let time = Int64.random(in: 0...253_402_300_799_999, using: &g)
            let bytes = ReadingCodec.encode(Reading(variable: "x", value: .number(value), unit: "°C", time: Timestamp(millisecondsSince1970: time)))
            let f = fast(bytes)
            #expect(f != nil, "declined \(value)")
            #expect(f == general(bytes), "value \(value.bitPattern) time \(time)")
        }
    }

    /// One transcoder over a stream, as the uplink uses it: sensors repeat (their fixed parts come
    /// from the transcoder's memory), more of them than it remembers, some differing only in a
    /// byte of the unit or the metadata, or in the variable's length; every record must still come
    /// out as the general path writes it, and the pointer form must agree with the array form.
    @Test func aStreamThroughOneTranscoderMatches() {
        var g = SystemRandomNumberGenerator()
        var sensors: [(String, String?, [String: String])] = []
        for i in 0..<40 {
            let metadata: [String: String] = i % 5 == 0 ? ["rom": "28-00000\(i)", "ch": "\(i % 3)"] : [:]
            sensors.append(("sensor\(i % 20)_v", i % 3 == 0 ? nil : (i % 2 == 0 ? "°C" : "°F"), metadata))
        }
        sensors.append(("sensor1_v", "°C", ["rom": "28-000001"]))
        sensors.append(("sensor1_w", "°C", [:]))
        sensors.append(("sensor10_v", "%", [:]))
        var stream = ReadingJSONTranscoder(), pointer = ReadingJSONTranscoder()
        for i in 0..<30_000 {
            // Mostly a repeating order of a few sensors, sometimes any of them.
            let s = i % 7 == 0 ? sensors[Int.random(in: 0..<sensors.count, using: &g)] : sensors[i % 6]
            let value: ReadingValue = switch i % 11 {
            case 0: .bool(i % 2 == 0)
            case 1: .string("s\(i)")
            case 2: .number(Double(bitPattern: g.next()))
            default: .number(Double.random(in: -50...50, using: &g).rounded() / [1, 10, 100, 1000, 7][i % 5])
            }
            let time = Int64.random(in: 0...253_402_300_799_999, using: &g)
            let bytes = ReadingCodec.encode(Reading(variable: s.0, value: value, unit: s.1, time: Timestamp(millisecondsSince1970: time), metadata: s.2))
            var out: [UInt8] = []
            let handled = bytes.withUnsafeBytes { stream.append(encoded: $0, to: &out) }
            #expect(handled)
            #expect(String(decoding: out, as: UTF8.self) == general(bytes), "record \(i): \(s.0) \(value)")
            let room = ReadingJSONTranscoder.maximumJSONSize(encodedCount: bytes.count)
            let direct = [UInt8](unsafeUninitializedCapacity: room) { buffer, n in
                n = bytes.withUnsafeBytes { pointer.write(encoded: $0, into: buffer.baseAddress!) }
            }
            #expect(direct == out)
        }
    }

    @Test func theSizeBoundHolds() {
        // Many empty metadata pairs: the JSON grows fastest against the record here.
        var metadata: [String: String] = [:]
        for i in 0..<200 { metadata[String(UnicodeScalar(UInt8(65 + i % 26))) + "\(i)"] = "" }
        for reading in [Reading(variable: "v", value: .number(-2.2250738585072014e-308), unit: "", time: Timestamp(millisecondsSince1970: 253_402_300_799_999), metadata: metadata),
                        Reading(variable: "", value: .number(-1.7976931348623157e308), time: Timestamp(millisecondsSince1970: 1)),
                        Reading(variable: "", value: .string(""), unit: "", time: Timestamp(millisecondsSince1970: 1), metadata: ["": ""])] {
            let bytes = ReadingCodec.encode(reading)
            var t = ReadingJSONTranscoder()
            var out: [UInt8] = []
            #expect(bytes.withUnsafeBytes { t.append(encoded: $0, to: &out) })
            #expect(out.count <= ReadingJSONTranscoder.maximumJSONSize(encodedCount: bytes.count))
            #expect(String(decoding: out, as: UTF8.self) == general(bytes))
        }
    }

    func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }

    @Test(arguments: [
        Reading(variable: "env_temperature", value: .number(21.37), unit: "°C", time: Timestamp(millisecondsSince1970: 1_780_000_000_123)),
        Reading(variable: "door", value: .bool(false), time: Timestamp(millisecondsSince1970: 0)),
        Reading(variable: "door", value: .bool(true), time: Timestamp(millisecondsSince1970: 86_399_999)),
        Reading(variable: "status", value: .string("ok ✓ 日本"), unit: "", time: Timestamp(millisecondsSince1970: 951_782_400_000)),  // 2000-02-29
        Reading(variable: "t", value: .number(1), time: Timestamp(millisecondsSince1970: 253_402_300_799_999)),  // 9999-12-31
        Reading(variable: "probe", value: .number(4.5), unit: "°C", time: Timestamp(millisecondsSince1970: 1_780_000_000_000),
                metadata: ["rom": "28-000005e2fdc3", "channel": "2", "a": ""]),
    ])
    func commonReadingsAreTranscoded(reading: Reading) {
        let bytes = ReadingCodec.encode(reading)
        let f = fast(bytes)
        #expect(f != nil)
        #expect(f == general(bytes))
    }

    @Test(arguments: [
        Reading(variable: "note", value: .string("quote \" here"), time: Timestamp(millisecondsSince1970: 1)),
        Reading(variable: "back\\slash", value: .number(1), time: Timestamp(millisecondsSince1970: 1)),
        Reading(variable: "v", value: .number(1), unit: "new\nline", time: Timestamp(millisecondsSince1970: 1)),
        Reading(variable: "v", value: .number(1), time: Timestamp(millisecondsSince1970: 1), metadata: ["k": "tab\t"]),
        Reading(variable: "v", value: .number(1), time: Timestamp(millisecondsSince1970: 1), metadata: ["é": "accented key"]),
        Reading(variable: "held", value: .number(1), time: Timestamp(millisecondsSince1970: -5_000)),  // monotonic stamp
        Reading(variable: "far", value: .number(1), time: Timestamp(millisecondsSince1970: 253_402_300_800_000)),  // year 10000
    ])
    func unusualReadingsTakeTheGeneralPath(reading: Reading) {
        #expect(fast(ReadingCodec.encode(reading)) == nil)
    }

    @Test func damagedRecordsAreDeclined() {
        let good = ReadingCodec.encode(Reading(variable: "v", value: .string("abc"), unit: "u", time: Timestamp(millisecondsSince1970: 5),
                                               metadata: ["a": "1", "b": "2"]))
        #expect(fast(good) != nil)
        for cut in 0..<good.count { #expect(fast(Array(good.prefix(cut))) == nil, "cut at \(cut)") }
        #expect(fast(good + [0]) == nil)
        var version = good; version[0] = 2
        #expect(fast(version) == nil)
        var kind = good; kind[2] = 9
        #expect(fast(kind) == nil)
        // Invalid UTF-8 in the unit: the general path would replace it, so the transcoder declines.
        var utf8 = ReadingCodec.encode(Reading(variable: "v", value: .number(1), unit: "ab", time: Timestamp(millisecondsSince1970: 5)))
        utf8[utf8.count - 1] = 0xC3
        #expect(fast(utf8) == nil)
        // Metadata keys out of order (not as encode writes them) are left to the general path.
        var swapped = good
        let a = swapped.firstIndex(of: UInt8(ascii: "a"))!, b = swapped.lastIndex(of: UInt8(ascii: "b"))!
        swapped.swapAt(a, b)
        #expect(fast(swapped) == nil)
        #expect(general(swapped) != nil)
    }

    @Test func utf8Validation() {
        let valid: [[UInt8]] = [Array("°C".utf8), Array("日本".utf8), Array("😀".utf8), [0xED, 0x9F, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF]]
        let invalid: [[UInt8]] = [[0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
                                  [0x80], [0xC3], [0xE2, 0x82], [0xFF]]
        for v in valid { #expect(v.withUnsafeBytes { ReadingCodec.isValidUTF8($0) }, "\(v)") }
        for v in invalid {
            #expect(!v.withUnsafeBytes { ReadingCodec.isValidUTF8($0) }, "\(v)")
            #expect(String(validating: v, as: UTF8.self) == nil, "the standard library agrees on \(v)")
        }
    }
}
