import EdgeCore

/// When each sensor is next due, on the monotonic clock: a pure value the sampling service keeps,
/// tested on its own.
///
/// Sensors share one grid: those due within `roundSlack` of each other are read in one round (one
/// wake-up, one spool write). A read is due one interval after the last was due, so the schedule
/// does not drift; rounds missed (a slow bus, a suspended gateway) are skipped, not caught up. A
/// failing sensor is retried with exponential backoff, capped at `backoffCap`, while the others
/// keep their schedule.
public struct SampleSchedule: Sendable, Equatable {
    public private(set) var due: [UInt64]
    public private(set) var failures: [Int]
    public let roundSlack: UInt64
    public let backoffCap: UInt64

    public init(sensors: Int, start: UInt64, roundSlackMilliseconds: Int64 = 5, backoffCapMilliseconds: Int64 = 300_000) {
        due = [UInt64](repeating: start, count: sensors)
        failures = [Int](repeating: 0, count: sensors)
        roundSlack = nanoseconds(milliseconds: roundSlackMilliseconds)
        backoffCap = nanoseconds(milliseconds: backoffCapMilliseconds)
    }

    /// The earliest time any sensor is due (nil: no sensors).
    public var next: UInt64? { due.min() }

    /// The sensors to read in the round at `now`.
    public func dueNow(_ now: UInt64) -> [Int] {
        due.indices.filter { due[$0] <= now.addingSaturating(roundSlack) }
    }

    /// A sensor a setting disabled: looked at again in a second.
    public mutating func skip(_ i: Int, now: UInt64) { due[i] = now.addingSaturating(1_000_000_000) }

    /// Sensor `i` was read at `now` (the round's end): the next read is one interval after this
    /// one was due, or one interval from now if that is already past.
    public mutating func succeeded(_ i: Int, intervalMilliseconds: Int64, now: UInt64) {
        let interval = nanoseconds(milliseconds: intervalMilliseconds)
        failures[i] = 0
        due[i] = due[i].addingSaturating(interval)
        if due[i] < now { due[i] = now.addingSaturating(interval) }
    }

    /// Sensor `i` failed at `now`: retried after a quarter of interval × 2^failures (at least one
    /// interval), at most `backoffCap` apart. Returns the number of failures in a row.
    @discardableResult
    public mutating func failed(_ i: Int, intervalMilliseconds: Int64, now: UInt64) -> Int {
        failures[i] = failures[i] == Int.max ? Int.max : failures[i] + 1
        let interval = nanoseconds(milliseconds: intervalMilliseconds)
        let backoff = min(interval.multiplyingSaturating(1 << UInt64(min(failures[i], 8))), backoffCap)
        due[i] = now.addingSaturating(max(interval, backoff / 4))
        return failures[i]
    }
}
