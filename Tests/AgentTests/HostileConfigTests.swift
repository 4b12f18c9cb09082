import Testing
import EdgeCore
@testable import Agent

/// Every key the loader knows, in every table of the shipped configurations, set to each value
/// of a list of hostile ones (extremes of every TOML type, durations and sizes past any bound,
/// the wrong type): the loader never traps, and every error it gives names the file and a line.
/// A configuration it accepts is turned into what the runtime uses (uplink, MQTT and TagoTiP
/// settings, the spool's options, the sampler's schedule) without trapping either.
/// The keys are not listed here: each table's are found from the loader's own "valid keys here"
/// answer to a key it does not know, so a key added to the loader is tried at once.
@Suite struct HostileConfigTests {
    static let values: [String] = [
        "0", "-1", "1", "255", "256", "65536", "4294967296", "9223372036854775807", "-9223372036854775808",
        "0.0", "-0.0", "0.5", "1e308", "-1e308", "5e-324", "inf", "-inf", "nan", "true",
        "\"\"", "\"0\"", "\"-1s\"", "\"0s\"", "\"1ns\"", "\"1e-9s\"", "\"9223372036854775807s\"", "\"9223372036854775807ms\"",
        "\"1e400s\"", "\"18446744073709551616\"", "\"99999999999999999999h\"", "\"1y\"", "\"nan\"", "\"inf\"", "\"-inf s\"",
        "\"99999999TiB\"", "\"-5MiB\"", "\"1e30B\"", "\"0B\"", "\"x\"", "\"\(String(repeating: "x", count: 5000))\"",
        "\"a\\u0000b\"", "\"env:\"", "\"file:\"", "\"0x\"", "\"0x1ff\"", "\"GPIO999999999999\"",
        "[]", "[1, 2]", "[\"a\", \"\"]", "[[]]", "[\"ain0\", \"ain0\"]", "{}", "{ a = 1 }",
        "1979-05-27T07:32:00Z",
    ]

    struct Section {
        var header: String  // `[spool]`, `[[sensor]]`, `[sensor.simulate]`; "" for the top
        var line: Int       // the header's index in the file's lines (-1: the top)
    }

    /// The keys valid in the table of the section at `at`, from the error about a key it cannot know.
    func validKeys(_ lines: [String], insertingAt at: Int, file: String) -> [String] {
        var probe = lines
        probe.insert("zz_not_a_key = 1", at: at)
        do {
            _ = try AgentConfig.parse(probe.joined(separator: "\n"), file: file)
        } catch {
            for e in error.errors where e.key?.hasSuffix("zz_not_a_key") == true {
                let marker = "valid keys here: "
                guard let last = e.message.split(separator: ";").last else { continue }
                let list = String(last).trimmingWhitespace()
                guard list.hasPrefix(marker) else { continue }
                return list.dropFirst(marker.count).split(separator: ",").map { String($0).trimmingWhitespace() }
            }
        }
        return []
    }

    @Test(arguments: ["bench.toml", "raspberry-pi.toml"])
    func everyKeyTakesEveryHostileValue(config: String) throws {
        let text = try readTextFile(repositoryRoot + "/config/" + config)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var sections = [Section(header: "", line: -1)]
        for (i, l) in lines.enumerated() where l.hasPrefix("[") { sections.append(Section(header: l, line: i)) }
        var tried = 0, accepted = 0, keysSeen = Set<String>()
        for (n, section) in sections.enumerated() {
            let start = section.line + 1
            let end = n + 1 < sections.count ? sections[n + 1].line : lines.count
            let keys = validKeys(lines, insertingAt: start, file: config)
            #expect(!keys.isEmpty || section.header.isEmpty, "no valid keys found for \(section.header) (line \(start))")
            for key in keys {
                keysSeen.insert("\(section.header) \(key)")
                // Where the key is set in this section already, that line is replaced.
                let existing = (start..<end).first { lines[$0].split(separator: "=").first.map { String($0).trimmingWhitespace() == key } == true }
                for value in Self.values {
                    var mutated = lines
                    let at = existing ?? start
                    if existing != nil { mutated[at] = "\(key) = \(value)" } else { mutated.insert("\(key) = \(value)", at: at) }
                    tried += 1
                    do {
                        let c = try AgentConfig.parse(mutated.joined(separator: "\n"), file: config)
                        accepted += 1
                        exerciseRuntimeSettings(c)
                    } catch {
                        for e in error.errors {
                            #expect(e.file == config && e.line != nil, "\(section.header) \(key) = \(value.prefix(40)): \(e)")
                        }
                    }
                }
            }
        }
        print("\(config): \(keysSeen.count) keys × \(Self.values.count) values: \(tried) configurations, \(accepted) accepted")
        #expect(keysSeen.count > 20)
    }

    /// What the runtime computes from a configuration it was given.
    func exerciseRuntimeSettings(_ c: AgentConfig) {
        _ = c.uplinkPolicy
        _ = c.mqttUplinkSettings
        _ = c.tagoTiPUplinkSettings
        _ = c.mqttOptions(token: "t")
        _ = c.tagoDevice(token: "t")
        _ = c.spool.options
        for s in c.sensors { _ = nanoseconds(milliseconds: s.intervalMilliseconds) }
        _ = estimateBudget(c, simulatedMilliseconds: 60_000)
    }
}
