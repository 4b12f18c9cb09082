import EdgeCore

/// Runs `[[analysis]]` programs one at a time, when their interval comes or readings of their
/// variables arrive, so a slow one never holds up sampling or uploading; their output readings go
/// through the spool like any other.
final class AnalysisService: AgentService {
    let name = "analyses"
    private let context: RuntimeContext
    private let token: String
    private let beatEvery: Int64
    private let lock = Lock()
    private var queue: [(analysis: Int, scope: [Reading])] = []
    /// Pokes the service's sleep when readings queue a run.
    private var signal: StopSignal?

    init(context: RuntimeContext, token: String, beatEveryMilliseconds: Int64) {
        self.context = context
        self.token = token
        beatEvery = beatEveryMilliseconds
    }

    /// Queues every analysis that one of `readings`' variables triggers, with those readings as its
    /// scope. One waiting run per analysis: a slow analysis sees the latest readings, not a backlog.
    func trigger(_ readings: [Reading]) {
        var queued = false
        for (i, a) in context.config.analyses.enumerated() where !a.variables.isEmpty {
            let scope = readings.filter { a.variables.contains($0.variable) }
            guard !scope.isEmpty else { continue }
            lock.withLock {
                if let j = queue.firstIndex(where: { $0.analysis == i }) { queue[j].scope = scope } else { queue.append((i, scope)) }
            }
            queued = true
        }
        if queued { lock.withLock { signal }?.poke() }
    }

    func run(stop: StopSignal, heartbeat: Heartbeat) {
        lock.withLock { signal = stop }
        let clock = context.clock
        let analyses = context.config.analyses
        let start = clock.nanoseconds()
        var due = analyses.map { $0.intervalMilliseconds > 0 ? start.addingSaturating(nanoseconds(milliseconds: $0.intervalMilliseconds)) : UInt64.max }
        while !stop.isStopped {
            let now = clock.nanoseconds()
            heartbeat.beat(now)
            // A timer that is due goes first, so analyses triggered by every reading cannot starve it.
            var work: (analysis: Int, scope: [Reading])?
            if let i = due.indices.min(by: { due[$0] < due[$1] }), due[i] <= now {
                work = (i, [])
                due[i] = now.addingSaturating(nanoseconds(milliseconds: analyses[i].intervalMilliseconds))
            } else {
                work = lock.withLock { queue.isEmpty ? nil : queue.removeFirst() }
            }
            guard let (i, scope) = work else {
                let soonest = due.min() ?? UInt64.max
                let wait = soonest == UInt64.max ? 60_000 : Int64(min((soonest &- now) / 1_000_000 + 1, 60_000))
                stop.sleep(milliseconds: max(wait, 1), heartbeat: heartbeat, beatEvery: beatEvery, wakeOnPoke: true)
                continue
            }
            let analysis = analyses[i]
            let run = EdgeAnalysisRunner.run(analysis, scope: scope, token: token)  // a child's time limit is real time
            for line in run.log { context.log(.info, "analysis '\(analysis.name)': \(line)") }
            for problem in run.rejected { context.log(.warning, "analysis '\(analysis.name)': output refused: \(problem)") }
            if run.timedOut {
                context.log(.warning, "analysis '\(analysis.name)' was killed at its time limit (\(formatDuration(analysis.timeoutMilliseconds)))")
            } else if let status = run.status, status != 0 {
                context.log(.warning, "analysis '\(analysis.name)' exited with status \(status)")
            } else if run.status == nil {
                context.log(.error, "analysis '\(analysis.name)' could not run")
            }
            context.update { $0.analysisRuns += 1 }
            context.spoolReadings(run.readings, sampled: false)
        }
    }
}
