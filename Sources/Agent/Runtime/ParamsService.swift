import EdgeCore
import TagoKit

/// Where configuration_params come from: TagoIO's Device API, or a double in tests.
public protocol ParamsSource: AnyObject {
    func params(onlyUnread: Bool) throws -> [ConfigParam]
    func markParamRead(id: String) throws
}

extension TagoDevice: ParamsSource {}

/// Polls configuration_params, applies each (or reports why not), and marks it read.
final class ParamsService: AgentService {
    let name = "params"
    private let context: RuntimeContext
    private let source: ParamsSource
    private let beatEvery: Int64
    private let apply: (_ key: String, _ value: String) -> Void

    init(context: RuntimeContext, source: ParamsSource, beatEveryMilliseconds: Int64, apply: @escaping (String, String) -> Void) {
        self.context = context
        self.source = source
        beatEvery = beatEveryMilliseconds
        self.apply = apply
    }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        var lastProblem: String?
        let route = PlanLimits.Route.params.rawValue
        repeat {
            heartbeat.beat(context.clock.nanoseconds())
            let wait = context.budget.waitMilliseconds(route)
            if wait > 0 {
                if stop.sleep(milliseconds: wait, heartbeat: heartbeat, beatEvery: beatEvery) { continue } else { break }
            }
            context.budget.take(route)
            do {
                for param in try source.params(onlyUnread: true) {
                    apply(param.key, param.value)
                    if let id = param.id { try source.markParamRead(id: id) }
                }
                lastProblem = nil
            } catch {
                if "\(error)" != lastProblem { context.log(.warning, "configuration_params: \(error)") }
                lastProblem = "\(error)"
            }
        } while stop.sleep(milliseconds: context.config.agent.paramsIntervalMilliseconds, heartbeat: heartbeat, beatEvery: beatEvery)
    }
}
