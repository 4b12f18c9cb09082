import Testing
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
