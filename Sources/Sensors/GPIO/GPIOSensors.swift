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
///
/// The kernel keeps at most `eventBufferSize` events between two reads (1,024 at most; 16 by
/// default) and drops the oldest beyond. Its per-line sequence numbers make the count exact
/// anyway: a gap between two events read is that many edges dropped, counted as pulses (the
/// kernel's debounce already filtered them) and reported as `dropped_edges` with a warning.
public final class GPIOCounter: SensorDriver {
    public let driver = "gpio"
    public var location: String { line.name }
    private let line: GPIOInputLine
    private let debounceNanoseconds: UInt64
    private var lastCounted: UInt64?
    private var lastSequence: UInt32 = 0
    public private(set) var total: UInt64 = 0
    /// Edges the kernel dropped (its buffer overflowed between two reads), counted from the gaps.
    public private(set) var dropped: UInt64 = 0

    /// `line` must have been requested with rising (or both) edge detection.
    public init(line: GPIOInputLine, debounceMicroseconds: UInt64) {
        self.line = line
        debounceNanoseconds = debounceMicroseconds * 1000
    }

    /// Counts the rising edges of `edges` that survive the debounce; returns how many.
    func count(_ edges: [GPIOEdge]) -> UInt64 {
        var counted: UInt64 = 0
        for edge in edges where edge.kind == .rising {
            if edge.lineSequence != 0 {
                // A gap: edges the kernel saw and dropped before this one.
                // (Numbering starts at 1 with the line's request, which this counter made.)
                if edge.lineSequence &- lastSequence > 1, edge.lineSequence &- lastSequence < 1 << 31 {
                    let missed = UInt64(edge.lineSequence &- lastSequence &- 1)
                    counted += missed
                    dropped += missed
                }
                lastSequence = edge.lineSequence
            }
            if let last = lastCounted, edge.timestampNanoseconds &- last < debounceNanoseconds { continue }
            lastCounted = edge.timestampNanoseconds
            counted += 1
        }
        return counted
    }

    public func read() throws -> [Measurement] {
        let droppedBefore = dropped
        let new = count(try line.edges(timeoutMilliseconds: 0))
        total += new
        let metadata = dropped > droppedBefore ? ["dropped_edges": String(dropped - droppedBefore)] : [:]
        return [Measurement("count", Double(total), unit: nil, metadata: metadata), Measurement("pulses", Double(new), unit: nil, metadata: metadata)]
    }
}
