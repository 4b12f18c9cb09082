import EdgeCore

/// Pulses a simulated input produces: `rate` pulses per second, each a rising edge followed by a
/// falling edge half a period later, with `bounce` extra edge pairs 100 µs apart after each
/// rising edge (a mechanical contact), starting when the line is requested.
public struct PulseScript: Sendable, Equatable {
    public var rate: Double
    public var bounce: Int

    public init(rate: Double, bounce: Int = 0) {
        self.rate = rate
        self.bounce = bounce
    }
}

/// A simulated GPIO chip: inputs play scripted edges on the simulation clock, outputs record
/// every value written.
public final class SimulatedGPIOChip: GPIOChip {
    public let name: String
    public let lineCount: UInt32
    private let clock: MonotonicClock
    private let lock = Lock()
    private var scripts: [UInt32: PulseScript] = [:]
    private var levels: [UInt32: Bool] = [:]
    private var requested: Set<UInt32> = []
    /// Every write to an output line, in order: (line, value).
    public private(set) var writes: [(line: UInt32, value: Bool)] = []

    public init(name: String, lineCount: UInt32 = 54, clock: MonotonicClock) {
        self.name = name
        self.lineCount = lineCount
        self.clock = clock
    }

    /// Makes `line` produce pulses once requested.
    public func script(line: UInt32, _ script: PulseScript) {
        lock.withLock { scripts[line] = script }
    }

    /// Sets the level an unscripted input reads.
    public func setLevel(line: UInt32, _ value: Bool) {
        lock.withLock { levels[line] = value }
    }

    /// The last value written to an output line.
    public func outputValue(line: UInt32) -> Bool? {
        lock.withLock { writes.last { $0.line == line }?.value }
    }

    private func claim(_ line: UInt32) throws {
        guard line < lineCount else {
            throw HardwareError(device: name, operation: "request line \(line)", errno: EINVAL_VALUE, detail: "\(name) has lines 0 to \(lineCount - 1)")
        }
        try lock.withLock {
            guard !requested.contains(line) else {
                throw HardwareError(device: name, operation: "GPIO_V2_GET_LINE_IOCTL line \(line)", errno: EBUSY_VALUE)
            }
            requested.insert(line)
        }
    }

    func release(_ line: UInt32) {
        _ = lock.withLock { requested.remove(line) }
    }

    public func requestInput(line: UInt32, options: GPIOInputOptions, consumer: String) throws -> GPIOInputLine {
        try claim(line)
        let script = lock.withLock { scripts[line] }
        return SimulatedInputLine(chip: self, line: line, script: script, options: options, start: clock.nanoseconds(), clock: clock)
    }

    public func requestOutput(line: UInt32, initial: Bool, activeLow: Bool, consumer: String) throws -> GPIOOutputLine {
        try claim(line)
        let out = SimulatedOutputLine(chip: self, line: line)
        try out.set(initial)
        return out
    }

    fileprivate func record(line: UInt32, _ value: Bool) {
        lock.withLock { writes.append((line, value)) }
    }

    fileprivate func level(line: UInt32) -> Bool {
        lock.withLock { levels[line] ?? false }
    }
}

final class SimulatedInputLine: GPIOInputLine {
    let name: String
    private let chip: SimulatedGPIOChip  // strong: a line keeps its chip alive, the chip holds no lines
    private let line: UInt32
    private let script: PulseScript?
    private let options: GPIOInputOptions
    private let start: UInt64
    private let clock: MonotonicClock
    private var delivered: UInt64  // edges up to this time have been handed out
    private var sequence: UInt32 = 0  // the kernel's line_seqno of the last event generated
    private var lastPhysicalEdge: UInt64 = 0  // for the debounce

    init(chip: SimulatedGPIOChip, line: UInt32, script: PulseScript?, options: GPIOInputOptions, start: UInt64, clock: MonotonicClock) {
        self.chip = chip
        self.line = line
        self.script = script
        self.options = options
        self.start = start
        self.clock = clock
        delivered = start
        name = "\(chip.name) line \(line)"
    }

    deinit { chip.release(line) }

    /// Physical edges in (from, to], generated from the script.
    private func physicalEdges(from: UInt64, to: UInt64) -> [GPIOEdge] {
        guard let script, script.rate > 0, to > from else { return [] }
        let period = UInt64(1e9 / script.rate)
        var edges: [GPIOEdge] = []
        let firstPulse = from <= start ? 0 : (from - start) / period
        var k = firstPulse
        while true {
            let rise = start + (k + 1) * period - period / 2
            if rise > to + period { break }
            var pulseEdges = [GPIOEdge(.rising, at: rise)]
            for b in 0..<UInt64(script.bounce) {
                pulseEdges.append(GPIOEdge(.falling, at: rise + 100_000 * (2 * b + 1)))
                pulseEdges.append(GPIOEdge(.rising, at: rise + 100_000 * (2 * b + 2)))
            }
            pulseEdges.append(GPIOEdge(.falling, at: rise + period / 2))
            edges += pulseEdges.filter { $0.timestampNanoseconds > from && $0.timestampNanoseconds <= to }
            k += 1
        }
        return edges
    }

    func value() throws -> Bool {
        let physical: Bool
        if script != nil {
            let all = physicalEdges(from: start, to: clock.nanoseconds())
            physical = all.last?.kind == .rising
        } else {
            physical = chip.level(line: line)
        }
        return physical != options.activeLow
    }

    func edges(timeoutMilliseconds: Int) throws -> [GPIOEdge] {
        let now = clock.nanoseconds()
        var found = physicalEdges(from: delivered, to: now)
        delivered = now
        if options.activeLow { found = found.map { GPIOEdge($0.kind == .rising ? .falling : .rising, at: $0.timestampNanoseconds) } }
        // The kernel's debounce: an edge counts only after the line was stable for the period.
        if options.debounceMicroseconds > 0 {
            let period = UInt64(options.debounceMicroseconds) * 1_000
            var kept: [GPIOEdge] = []
            for edge in found {
                if edge.timestampNanoseconds &- lastPhysicalEdge >= period { kept.append(edge) }
                lastPhysicalEdge = edge.timestampNanoseconds
            }
            found = kept
        }
        switch options.edges {
        case .none: return []
        case .both: break
        case .rising: found = found.filter { $0.kind == .rising }
        case .falling: found = found.filter { $0.kind == .falling }
        }
        // As the kernel does: each event numbered as it happens, and a buffer of
        // `eventBufferSize` events (16 by default, 1,024 at most) that drops the oldest.
        for i in found.indices {
            sequence &+= 1
            found[i].lineSequence = sequence
        }
        let capacity = Int(options.eventBufferSize == 0 ? 16 : min(options.eventBufferSize, GPIOInputOptions.maxEventBuffer))
        return Array(found.suffix(capacity))
    }
}

final class SimulatedOutputLine: GPIOOutputLine {
    let name: String
    private let chip: SimulatedGPIOChip  // strong: a line keeps its chip alive, the chip holds no lines
    private let line: UInt32

    init(chip: SimulatedGPIOChip, line: UInt32) {
        self.chip = chip
        self.line = line
        name = "\(chip.name) line \(line)"
    }

    deinit { chip.release(line) }

    func set(_ value: Bool) throws { chip.record(line: line, value) }
}
