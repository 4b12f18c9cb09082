#if canImport(EdgeCore)
import EdgeCore
#endif

/// How one variable is reported (`[sensor.report]`, `[sensor.report.<quantity>]`): every reading
/// (nothing set), only changes beyond a deadband with a heartbeat, or one aggregate per window.
public struct ReportSettings: Sendable, Equatable {
    public enum Aggregate: String, Sendable, CaseIterable {
        case mean, min, max, last, median
    }

    /// Send when the value moved at least this much from the last *sent* value (its unit).
    public var delta: Double?
    /// ... or at least this share (percent) of the last sent value.
    public var deltaPercent: Double?
    /// Send at least this often, changed or not.
    public var heartbeatMilliseconds: Int64?
    /// One reading per window of this length, aligned to the clock (a 1 m window is each minute).
    public var windowMilliseconds: Int64?
    public var aggregate: Aggregate = .mean

    public init(delta: Double? = nil, deltaPercent: Double? = nil, heartbeatMilliseconds: Int64? = nil, windowMilliseconds: Int64? = nil,
                aggregate: Aggregate = .mean) {
        self.delta = delta
        self.deltaPercent = deltaPercent
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.windowMilliseconds = windowMilliseconds
        self.aggregate = aggregate
    }

    /// Every reading is sent.
    public var sendsEverything: Bool { delta == nil && deltaPercent == nil && heartbeatMilliseconds == nil && windowMilliseconds == nil }
}

/// Between sampling and the spool: decides, per variable, which readings are sent (what is not
/// sent is never spooled). Deterministic: it looks only at the readings' own times, so a test
/// drives it with any timestamps.
///
/// - Deadband: a reading goes when nothing was sent yet, when it moved at least `delta` (or
///   `deltaPercent` of the last sent value) from the last *sent* value (not the last read: a slow
///   drift is sent once it adds up), when `heartbeat` has passed since the last send, or when a
///   non-number changed. Only a heartbeat set: any change goes, and at least that often.
/// - Window: readings are collected per window aligned to the clock (`floor(time / window)`);
///   when a reading falls in a later window, the earlier window's aggregate goes, stamped at the
///   window's start, with metadata `count`, `min`, `max` (and `window`). Non-numbers: the last.
/// - Additive variables (a counter's pulses since the last read): what is held back is carried
///   into the next reading sent, and a window sends the sum: no pulse is ever lost.
public final class ReportFilter {
    struct Window {
        var start: Int64
        var values: [Double] = []
        var last: Reading
    }

    struct State {
        var lastSent: ReadingValue?
        var lastSentAt: Int64 = 0
        var carry: Double = 0
        /// A counter's last reading held back, carrying `carry` (sent on stop).
        var held: Reading?
        var window: Window?
    }

    /// The settings in force, by variable (those that send everything left out).
    public private(set) var settings: [String: ReportSettings]
    private let additive: Set<String>
    private var states: [String: State] = [:]
    /// Readings held back (deadband) or folded into an aggregate, since the start.
    public private(set) var withheld = 0
    /// Readings passed on to the spool (aggregates count one).
    public private(set) var passed = 0

    /// - Parameters:
    ///   - settings: by variable name; a variable not in it is sent as read.
    ///   - additive: variables whose values add up (pulses since the last read).
    public init(settings: [String: ReportSettings], additive: Set<String> = []) {
        self.settings = settings.filter { !$0.value.sendsEverything }
        self.additive = additive
    }

    /// New settings (a param changed): the state of each variable is kept; a variable that no
    /// longer has a window sends its open window now, at its next reading.
    public func update(settings new: [String: ReportSettings]) {
        let next = new.filter { !$0.value.sendsEverything }
        for (name, state) in states {
            guard let w = state.window, let old = settings[name] else { continue }
            if next[name]?.windowMilliseconds != old.windowMilliseconds {
                closed.append(aggregate(w, variable: name, window: old.windowMilliseconds ?? 0, kind: old.aggregate))
                states[name]?.window = nil
            }
        }
        settings = next
    }

    /// Windows closed by a change of settings, sent with the next round.
    private var closed: [Reading] = []

    /// Whether any variable is filtered at all.
    public var isActive: Bool { !settings.isEmpty }

    /// The readings to spool, from one round's readings.
    public func filter(_ readings: [Reading]) -> [Reading] {
        var out: [Reading] = closed
        closed = []
        guard isActive else {
            passed += out.count
            return out + readings
        }
        for r in readings {
            guard let s = settings[r.variable] else {
                out.append(r)
                continue
            }
            if let window = s.windowMilliseconds, window > 0 {
                windowed(r, window: window, aggregate: s.aggregate, into: &out)
            } else {
                deadband(r, s, into: &out)
            }
        }
        passed += out.count
        return out
    }

    /// The windows still open, as partial aggregates, and the pulses a counter's deadband still
    /// holds (on stop: what was read is spooled, never dropped).
    public func flush() -> [Reading] {
        var out: [Reading] = closed
        closed = []
        for name in states.keys.sorted() {
            if let held = states[name]?.held, states[name]?.carry != 0 {
                out.append(held)
                states[name]?.held = nil
                states[name]?.carry = 0
            }
            guard let w = states[name]?.window, let s = settings[name] else { continue }
            out.append(aggregate(w, variable: name, window: s.windowMilliseconds ?? 0, kind: s.aggregate))
            states[name]?.window = nil
        }
        passed += out.count
        return out
    }

    private func deadband(_ r: Reading, _ s: ReportSettings, into out: inout [Reading]) {
        var state = states[r.variable] ?? State()
        let now = r.time.millisecondsSince1970
        var reading = r
        if additive.contains(r.variable), case .number(let v) = r.value {
            reading.value = .number(v + state.carry)
        }
        let send: Bool
        if let last = state.lastSent {
            let beat = s.heartbeatMilliseconds.map { now &- state.lastSentAt >= $0 } ?? false
            // Pulses since the last send: the deadband is on what has added up, not on a change.
            let compared: ReadingValue = additive.contains(r.variable) ? .number(0) : last
            send = beat || moved(from: compared, to: reading.value, s)
        } else {
            send = true
        }
        if send {
            state.lastSent = reading.value
            state.lastSentAt = now
            state.carry = 0
            state.held = nil
            out.append(reading)
        } else {
            if additive.contains(r.variable), case .number(let v) = reading.value {
                state.carry = v
                state.held = reading
            }
            withheld += 1
        }
        states[r.variable] = state
    }

    /// Whether `value` differs from `last` enough to be sent.
    private func moved(from last: ReadingValue, to value: ReadingValue, _ s: ReportSettings) -> Bool {
        guard case .number(let a) = last, case .number(let b) = value else { return last != value }
        let change = abs(b - a)
        if s.delta == nil && s.deltaPercent == nil { return change > 0 && s.heartbeatMilliseconds != nil }
        // A hair of tolerance: 20.2 - 20.0 is 0.19999999999999929 in binary, and is meant to pass 0.2.
        if let d = s.delta, change >= d * (1 - 1e-9) { return true }
        if let p = s.deltaPercent, change >= abs(a) * p / 100 * (1 - 1e-9), change > 0 { return true }
        return false
    }

    private func windowed(_ r: Reading, window: Int64, aggregate kind: ReportSettings.Aggregate, into out: inout [Reading]) {
        var state = states[r.variable] ?? State()
        let t = r.time.millisecondsSince1970
        let start = t - ((t % window) + window) % window
        if let w = state.window, w.start != start {
            out.append(aggregate(w, variable: r.variable, window: window, kind: kind))
            state.window = nil
        }
        var w = state.window ?? Window(start: start, last: r)
        if case .number(let v) = r.value { w.values.append(v) }
        if state.window != nil { withheld += 1 }  // the window's first reading is the one it sends
        w.last = r
        state.window = w
        states[r.variable] = state
    }

    private func aggregate(_ w: Window, variable: String, window: Int64, kind: ReportSettings.Aggregate) -> Reading {
        var r = w.last
        r.time = Timestamp(millisecondsSince1970: w.start)
        guard !w.values.isEmpty else { return r }
        let values = w.values
        let value: Double
        if additive.contains(variable) {
            value = values.reduce(0, +)
        } else {
            switch kind {
            case .mean: value = values.reduce(0, +) / Double(values.count)
            case .min: value = values.min() ?? 0
            case .max: value = values.max() ?? 0
            case .last: value = values[values.count - 1]
            case .median:
                let sorted = values.sorted()
                value = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            }
        }
        r.value = .number(roundToSignificantDigits(value, 7))
        r.metadata["count"] = String(values.count)
        r.metadata["min"] = JSONValue.format(values.min() ?? 0)
        r.metadata["max"] = JSONValue.format(values.max() ?? 0)
        r.metadata["window"] = formatDuration(window)
        return r
    }
}
