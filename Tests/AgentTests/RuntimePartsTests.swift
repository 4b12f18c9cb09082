import Testing
import EdgeCore
@testable import Agent

@Suite struct ProvisioningProgressBarTests {
    @Test func barRateAndETA() {
        #expect(provisioningProgressBar(done: 0, total: 500, elapsedSeconds: 0, width: 10) == "[..........] 0/500  0%  0.0/min  ETA --")
        // 100 of 500 in 10 minutes: 10 a minute, 40 minutes to go.
        #expect(provisioningProgressBar(done: 100, total: 500, elapsedSeconds: 600, width: 10) == "[##........] 100/500  20%  10.0/min  ETA 40m")
        #expect(provisioningProgressBar(done: 3, total: 4, elapsedSeconds: 1.5, width: 8) == "[######..] 3/4  75%  120.0/min  ETA 1s")
        #expect(provisioningProgressBar(done: 4, total: 4, elapsedSeconds: 2, width: 4) == "[####] 4/4  100%  120.0/min  done in 2s")
    }
}

@Suite struct LogLevelSettingTests {
    @Test func aParamOverridesTheFilesLevelAndBadOnesAreRefused() throws {
        let config = try AgentConfig.parse("[agent]\nlog_level = \"warning\"\n", file: "t.toml")
        #expect(config.agent.logLevel == .warning)
        let settings = RemoteSettings(path: nil, sensors: [])
        #expect(settings.logLevel(default: config.agent.logLevel) == .warning)
        #expect(settings.problem(key: "log_level", value: "loud") != nil)
        settings.apply(key: "log_level", value: "debug")
        #expect(settings.logLevel(default: config.agent.logLevel) == .debug)
        #expect(LogLevel.error < LogLevel.warning && LogLevel.info < LogLevel.debug)
        #expect(throws: ConfigErrors.self) { try AgentConfig.parse("[agent]\nlog_level = \"verbose\"\n", file: "t.toml") }
    }
}

@Suite struct SamplingRoundTests {
    func sensors(_ clock: ManualClock, extra: String = "") throws -> [SensorInstance] {
        let config = try AgentConfig.parse("""
            [[sensor]]
            name = "env"
            driver = "bme280"
            oversampling_pressure = 16
            [sensor.simulate]
            signal = "constant"
            [[sensor]]
            name = "climate"
            driver = "sht3x"
            [sensor.simulate]
            signal = "constant"
            [[sensor]]
            name = "light"
            driver = "bh1750"
            [sensor.simulate]
            signal = "constant"
            [[sensor]]
            name = "board"
            driver = "board"
            [sensor.simulate]
            signal = "constant"
            \(extra)
            """, file: "round.toml")
        return HardwareEnvironment(clock: clock).makeSensors(config)
    }

    @Test func chipsConvertTogetherWithOneWait() throws {
        // Alone, each read waits for its own chip: the waits add up.
        let aloneClock = ManualClock()
        let alone = try sensors(aloneClock)
        _ = alone.map { sample($0, at: aloneClock.now()) }  // first reads configure the chips
        let t0 = aloneClock.nanoseconds()
        let single = alone.map { sample($0, at: aloneClock.now()) }
        let sequential = aloneClock.nanoseconds() - t0

        let clock = ManualClock()
        let together = try sensors(clock)
        _ = sampleRound(together, clock: clock) { clock.now() }
        let t1 = clock.nanoseconds()
        let round = sampleRound(together, clock: clock) { clock.now() }
        let elapsed = clock.nanoseconds() - t1

        #expect(round.allSatisfy { $0.error == nil }, "\(round.compactMap(\.error))")
        #expect(round.map { $0.readings.map(\.variable) } == single.map { $0.readings.map(\.variable) })
        #expect(round.map { $0.readings.map { $0.value } } == single.map { $0.readings.map { $0.value } }, "the same values either way")
        // One wait, for the slowest (the BH1750's 180 ms), instead of the sum.
        #expect(elapsed >= 180_000_000 && elapsed < 200_000_000, "round took \(elapsed / 1_000_000) ms")
        #expect(sequential > elapsed + 20_000_000, "sequential reads took \(sequential / 1_000_000) ms")
    }

    @Test func aFailingChipFailsAlone() throws {
        let clock = ManualClock()
        let list = try sensors(clock, extra: "[[sensor]]\nname = \"gone\"\ndriver = \"sht3x\"\naddress = 0x45\n[sensor.simulate]\nfault = \"absent\"\n")
        let round = sampleRound(list, clock: clock) { clock.now() }
        #expect(round.count == 5)
        #expect(round[4].sensor == "gone" && round[4].error?.contains("0x45") == true)
        #expect(round.prefix(4).allSatisfy { $0.error == nil && !$0.readings.isEmpty })
    }
}
