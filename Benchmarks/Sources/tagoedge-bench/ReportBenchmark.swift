import Agent
import EdgeCore

/// Data records a day, with and without a typical report setting, for the bench config's
/// simulated sensors over 24 simulated hours on a manual clock (their signals: sine, random walk,
/// the captured chip, the pulse train). The setting: a deadband a little above each quantity's
/// noise (temperature 0.1 °C, humidity 1 %RH, pressure 0.5 hPa, light 5 %, voltages 10 mV,
/// a door on change) with a 15-minute heartbeat; counters in 5-minute sums.
func reportBenchmark() throws {
    let path = argument("--config", default: "config/bench.toml")
    let hours = Int64(argument("--hours", default: "24")) ?? 24
    var config = try AgentConfig.load(path: path)
    let plain = config
    for i in config.sensors.indices {
        var s = config.sensors[i]
        for q in s.quantities {
            var r = ReportSettings(heartbeatMilliseconds: 15 * 60_000)
            switch q {
            case "temperature": r.delta = 0.1
            case "humidity": r.delta = 1
            case "pressure": r.delta = 0.5
            case "illuminance": r.deltaPercent = 5
            case "state": break  // on change, and the heartbeat
            case "count", "pulses": r = ReportSettings(windowMilliseconds: 5 * 60_000, aggregate: .last)
            default: r.delta = 0.01  // volts
            }
            s.reportByQuantity[q] = r
        }
        config.sensors[i] = s
    }
    let ms = hours * 3_600_000
    let t0 = now()
    let without = simulateReporting(plain, milliseconds: ms, withReport: false)
    let with = simulateReporting(config, milliseconds: ms)
    let seconds = now() - t0
    print("report benchmark: \(path), \(hours) simulated hours on a manual clock (\(format(seconds, 1)) s of CPU), every reading vs a typical setting")
    print("")
    print(pad("variable", 24) + pad("read", 10) + pad("sent", 10) + "saved")
    var read = 0, sent = 0
    for name in without.keys.sorted() {
        let r = without[name]?.sent ?? 0
        let s = with[name]?.sent ?? 0
        read += r
        sent += s
        print(pad(name, 24) + pad(String(r), 10) + pad(String(s), 10) + (r > 0 ? "\(format(100 - Double(s) / Double(r) * 100, 1)) %" : "-"))
    }
    print("")
    print("records in \(hours) h: \(read) as read, \(sent) with the setting: \(format(Double(read) / Double(max(sent, 1)), 1))x fewer (\(format(100 - Double(sent) / Double(max(read, 1)) * 100, 1)) % saved)")
    let perMinuteRead = Double(read) / Double(hours * 60), perMinuteSent = Double(sent) / Double(hours * 60)
    print("records a minute: \(format(perMinuteRead, 1)) as read, \(format(perMinuteSent, 1)) with the setting; a mutable device's 50,000 records last \(format(50_000 / perMinuteRead / 60, 1)) h vs \(format(50_000 / perMinuteSent / 1440, 1)) days")
}
