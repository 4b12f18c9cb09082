/// An edge seen on a GPIO input, with the kernel's timestamp.
public struct GPIOEdge: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case rising, falling }
    public var kind: Kind
    /// Nanoseconds on the monotonic clock (the kernel's event timestamp).
    public var timestampNanoseconds: UInt64
    /// The kernel's sequence number of this event on its line (1, 2, …), given when the edge
    /// happened: a gap between two events read means the kernel's buffer overflowed and dropped
    /// the events in between. 0 when unknown.
    public var lineSequence: UInt32

    public init(_ kind: Kind, at timestampNanoseconds: UInt64, lineSequence: UInt32 = 0) {
        self.kind = kind
        self.timestampNanoseconds = timestampNanoseconds
        self.lineSequence = lineSequence
    }
}

/// One GPIO line requested as an input.
public protocol GPIOInputLine: AnyObject {
    /// `/dev/gpiochip0 line 17`, or `sim:gpiochip0 line 17`.
    var name: String { get }
    /// The logical level (active-low already applied).
    func value() throws -> Bool
    /// The edges seen since the last call, oldest first; waits up to `timeoutMilliseconds` for the first.
    func edges(timeoutMilliseconds: Int) throws -> [GPIOEdge]
}

/// One GPIO line requested as an output (a relay, a LED).
public protocol GPIOOutputLine: AnyObject {
    var name: String { get }
    func set(_ value: Bool) throws
}

/// Edge detection and bias asked for when requesting an input line.
public struct GPIOInputOptions: Sendable, Equatable {
    public enum Bias: String, Sendable, CaseIterable { case asIs = "as-is", pullUp = "pull-up", pullDown = "pull-down", disabled }
    public enum Edges: String, Sendable, CaseIterable { case none, rising, falling, both }
    public var bias: Bias
    public var edges: Edges
    public var activeLow: Bool
    /// Kernel debounce period; 0 for none.
    public var debounceMicroseconds: UInt32
    /// Edge events the kernel keeps between two reads; beyond, it drops the oldest. 0: the
    /// kernel's default, 16 a line (a pulse counter read every minute at 1 Hz lost 44 of 60).
    public var eventBufferSize: UInt32

    /// The most the kernel keeps for one request (GPIO_V2_LINES_MAX × 16); larger is clamped.
    public static let maxEventBuffer: UInt32 = 1024

    public init(bias: Bias = .asIs, edges: Edges = .none, activeLow: Bool = false, debounceMicroseconds: UInt32 = 0, eventBufferSize: UInt32 = 0) {
        self.bias = bias
        self.edges = edges
        self.activeLow = activeLow
        self.debounceMicroseconds = debounceMicroseconds
        self.eventBufferSize = eventBufferSize
    }
}

/// A source of GPIO lines: a Linux gpiochip, or a simulated one.
public protocol GPIOChip: AnyObject {
    var name: String { get }
    /// The offset of the line the kernel names `name` (`GPIO17` on a Raspberry Pi's header chip).
    func lineOffset(named name: String) throws -> UInt32
    func requestInput(line: UInt32, options: GPIOInputOptions, consumer: String) throws -> GPIOInputLine
    func requestOutput(line: UInt32, initial: Bool, activeLow: Bool, consumer: String) throws -> GPIOOutputLine
}

/// Read access to text files of the kernel's virtual filesystems (1-Wire's `w1_slave`,
/// `/sys/class/thermal`), so that drivers parse the kernel's text without seeing Linux.
public protocol SysfsReader: AnyObject {
    /// The whole text of `path`. Throws `HardwareError` with the path as device.
    func readText(_ path: String) throws -> String
    /// The names in directory `path`, sorted.
    func list(_ path: String) throws -> [String]
}

extension GPIOChip {
    /// Where lines have no kernel names (the simulation): `GPIOn` is line n.
    public func lineOffset(named lineName: String) throws -> UInt32 {
        guard lineName.hasPrefix("GPIO"), let n = UInt32(lineName.dropFirst(4)) else {
            throw HardwareError(device: name, operation: "find line \(lineName)", errno: 2, detail: "this chip names no lines; give the line offset")
        }
        return n
    }
}
