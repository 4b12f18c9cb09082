import EdgeCore

/// A digital input: its logical state, 1 or 0.
public final class GPIOInput: SensorDriver {
    public let driver = "gpio"
    public var location: String { line.name }
    private let line: GPIOInputLine

    public init(line: GPIOInputLine) {
        self.line = line
    }

    public func read() throws -> [Measurement] {
        [Measurement("state", try line.value() ? 1 : 0, unit: nil)]
    }
}

/// A pulse counter (a rain gauge, a flow or energy meter): counts rising edges reported by the
/// kernel, ignoring any edge within `debounce` of the last counted one (contact bounce).
/// Reports the total since start and the pulses since the previous read.
public final class GPIOCounter: SensorDriver {
    public let driver = "gpio"
    public var location: String { line.name }
    private let line: GPIOInputLine
    private let debounceNanoseconds: UInt64
    private var lastCounted: UInt64?
    public private(set) var total: UInt64 = 0

    /// `line` must have been requested with rising (or both) edge detection.
    public init(line: GPIOInputLine, debounceMicroseconds: UInt64) {
        self.line = line
        debounceNanoseconds = debounceMicroseconds * 1000
    }

    /// Counts the rising edges of `edges` that survive the debounce; returns how many.
    func count(_ edges: [GPIOEdge]) -> UInt64 {
        var counted: UInt64 = 0
        for edge in edges where edge.kind == .rising {
            if let last = lastCounted, edge.timestampNanoseconds &- last < debounceNanoseconds { continue }
            lastCounted = edge.timestampNanoseconds
            counted += 1
        }
        return counted
    }

    public func read() throws -> [Measurement] {
        let new = count(try line.edges(timeoutMilliseconds: 0))
        total += new
        return [Measurement("count", Double(total), unit: nil), Measurement("pulses", Double(new), unit: nil)]
    }
}
