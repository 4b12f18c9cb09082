#if canImport(Glibc)
import Glibc
#endif
import EdgeCore

/// What the agent says about itself: its own `agent_*` variables through the spool (telemetry),
/// the status file `tagoedge status` reads, and systemd's STATUS and WATCHDOG. The watchdog is fed
/// only while every other service has beaten recently (they beat while they wait, too).
final class StatusService: AgentService {
    let name = "status"
    private let context: RuntimeContext
    private let beatEvery: Int64
    private let startedAt: UInt64
    /// `statusJSON`, written every `statusEvery`.
    private let statusFile: () -> Void
    private let telemetry: () -> [Reading]
    private let notify: (String) -> Void
    /// Half of systemd's `WatchdogSec`, when it set one.
    private let watchdogMilliseconds: Int64?
    /// The services that have not beaten within the watchdog's window.
    private let stalled: (Int64) -> [String]
    static let statusEveryMilliseconds: Int64 = 5_000

    init(context: RuntimeContext, beatEveryMilliseconds: Int64, watchdogMilliseconds: Int64?, statusFile: @escaping () -> Void,
         telemetry: @escaping () -> [Reading], notify: @escaping (String) -> Void, stalled: @escaping (Int64) -> [String]) {
        self.context = context
        beatEvery = beatEveryMilliseconds
        startedAt = context.clock.nanoseconds()
        self.statusFile = statusFile
        self.telemetry = telemetry
        self.notify = notify
        self.watchdogMilliseconds = watchdogMilliseconds
        self.stalled = stalled
    }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        let clock = context.clock
        let telemetryEvery = nanoseconds(milliseconds: context.config.agent.telemetryIntervalMilliseconds)
        var telemetryDue = startedAt.addingSaturating(300_000_000)  // soon after start, so a restart shows up
        var statusDue = startedAt
        var lastStall: [String] = []
        // Fed once an interval (half of WatchdogSec); without a watchdog only the status and
        // telemetry times wake this service.
        let tick = watchdogMilliseconds ?? 60_000
        while !stop.isStopped {
            let now = clock.nanoseconds()
            heartbeat.beat(now)
            if telemetryEvery > 0, now >= telemetryDue {
                telemetryDue = now.addingSaturating(telemetryEvery)
                context.spoolReadings(telemetry(), sampled: true, remember: false)
            }
            if let watchdog = watchdogMilliseconds {
                // A service counts as alive when it beat within two watchdog pings (WatchdogSec).
                let stuck = stalled(max(watchdog * 2, 5_000))
                if stuck.isEmpty { notify("WATCHDOG=1") } else if stuck != lastStall { context.log(.error, "watchdog: no sign of life from \(stuck.joined(separator: ", ")); systemd will restart the agent") }
                lastStall = stuck
            }
            if now >= statusDue {
                statusDue = now.addingSaturating(nanoseconds(milliseconds: Self.statusEveryMilliseconds))
                statusFile()
                let c = context.snapshot
                notify("STATUS=sampled \(c.sampled), acknowledged \(c.delivered), waiting \(context.spool.stats.recordCount)")
            }
            var next = statusDue
            if telemetryEvery > 0 { next = min(next, telemetryDue) }
            let wait = Int64(min((next &- min(next, clock.nanoseconds())) / 1_000_000 + 1, UInt64(tick)))
            stop.sleep(milliseconds: wait, heartbeat: heartbeat, beatEvery: beatEvery)
        }
    }
}
