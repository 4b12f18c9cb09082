import EdgeCore

/// One long-lived part of the agent (sampling, uplink, params, analyses, status). `run` loops until
/// `stop` is stopped, waiting only through `stop.sleep(…, heartbeat:)` so that it beats while it
/// waits and wakes at once on stop.
public protocol AgentService: AnyObject {
    var name: String { get }
    func run(stop: StopSignal, heartbeat: Heartbeat)
}

/// Starts each service on a thread of its own, tells whether they are all alive (for the systemd
/// watchdog), and on `stop` joins every thread before returning: after `stop()` no service touches
/// the spool, so its owner can close it.
public final class Supervisor: @unchecked Sendable {
    public let clock: MonotonicClock
    public let stopSignal: StopSignal
    private let services: [AgentService]
    public let heartbeats: [Heartbeat]
    private let lock = Lock()
    private var threads: [JoinableThread] = []

    public init(clock: MonotonicClock, services: [AgentService]) {
        self.clock = clock
        self.services = services
        stopSignal = StopSignal(clock: clock)
        let now = clock.nanoseconds()
        heartbeats = services.map { Heartbeat(name: $0.name, now: now) }
    }

    /// Starts every service's thread. A thread the system refuses is reported by `stalled`.
    public func start() {
        let started = zip(services, heartbeats).map { service, heartbeat in
            JoinableThread { [stopSignal] in service.run(stop: stopSignal, heartbeat: heartbeat) }
        }
        lock.withLock { threads = started }
    }

    /// Stops every service and waits until each has returned.
    public func stop() {
        stopSignal.stop()
        for t in lock.withLock({ threads }) { t.join() }
    }

    /// The services that have not beaten within `milliseconds` (empty: all alive).
    public func stalled(withinMilliseconds milliseconds: Int64) -> [String] {
        let now = clock.nanoseconds()
        let limit = nanoseconds(milliseconds: milliseconds)
        let failed = lock.withLock { threads.enumerated().filter { !$0.element.started }.map { services[$0.offset].name } }
        return failed + heartbeats.filter { now &- $0.lastBeat >= limit && now > $0.lastBeat }.map(\.name)
    }

    public func isAlive(withinMilliseconds milliseconds: Int64) -> Bool { stalled(withinMilliseconds: milliseconds).isEmpty }
}
