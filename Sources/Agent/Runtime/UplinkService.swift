import EdgeCore
import TagoKit
import Uplink

/// Drains the spool through the configured uplink, waits as the uplink says (backoff, rate limits,
/// a refused token), and applies what arrives on its downlink.
final class UplinkService: AgentService {
    let name = "uplink"
    private let context: RuntimeContext
    private let makeUplink: () -> Uplink
    private let beatEvery: Int64
    private let onDownlink: (String, String) -> Void

    /// - Parameter makeUplink: called on the service's thread, so the uplink lives and dies there.
    init(context: RuntimeContext, beatEveryMilliseconds: Int64, makeUplink: @escaping () -> Uplink, onDownlink: @escaping (String, String) -> Void) {
        self.context = context
        self.makeUplink = makeUplink
        beatEvery = beatEveryMilliseconds
        self.onDownlink = onDownlink
    }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        let uplink = makeUplink()
        defer { uplink.close() }
        let clock = context.clock
        var lastProblem: String?
        let route: PlanLimits.Route = switch context.config.uplink.transport {
        case .http: .data
        case .mqtt: .mqttPublish
        case .tagotip: .tagotip
        }
        var requests = uplink.requestsSent
        while !stop.isStopped {
            heartbeat.beat(clock.nanoseconds())
            // Within the plan's per-minute limit: a step waits for a token (the plan's minute
            // refills them), and what it sent is taken after it.
            let wait = context.budget.waitMilliseconds(route.rawValue)
            if wait > 0 {
                context.update { $0.budgetWaits += 1 }
                stop.sleep(milliseconds: wait, heartbeat: heartbeat, beatEvery: beatEvery)
                continue
            }
            do {
                try context.spool.flushIfDue()
            } catch {
                context.log(.error, "spool: \(error)")
            }
            for message in uplink.takeDownlink() { onDownlink(String(decoding: message.payload, as: UTF8.self), message.topic) }
            let step = uplink.step()
            context.budget.take(route.rawValue, uplink.requestsSent - requests)
            requests = uplink.requestsSent
            switch step {
            case .sent(let count, let through, let dead):
                context.log(.debug, "uplink: \(count) reading(s) acknowledged, through spool record \(through)")
                let now = clock.now()
                context.update {
                    $0.delivered += count
                    if count > 0 { $0.lastDelivery = now }
                }
                if dead > 0 { context.log(.warning, "uplink: \(dead) reading(s) refused by TagoIO, kept in \(context.config.deadLetterPath)") }
                if lastProblem != nil { context.log(.info, "uplink: delivering again") }
                lastProblem = nil
            case .idle:
                let rest = context.remote.uploadIntervalMilliseconds(default: context.config.agent.uploadIntervalMilliseconds)
                stop.sleep(milliseconds: rest, heartbeat: heartbeat, beatEvery: beatEvery)
            case .wait(let ms, let reason, let kind):
                if ms > 0 {
                    let now = clock.now()
                    context.update {
                        $0.uplinkWaits += 1
                        $0.lastUplinkProblem = reason
                        if reason != lastProblem { $0.note(["uplink: \(reason)"], at: now) }
                    }
                    if reason != lastProblem {
                        let loud = kind == .unauthorized || kind == .misdirected
                        context.log(loud ? .error : .warning, "uplink: \(kind == .unauthorized ? "REFUSED: " : "")\(reason); retrying in \(formatDuration(ms))")
                        lastProblem = reason
                    }
                }
                stop.sleep(milliseconds: ms, heartbeat: heartbeat, beatEvery: beatEvery)
            }
        }
    }
}
