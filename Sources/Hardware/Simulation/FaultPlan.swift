/// Faults a simulated chip plays, so that error paths run on the bench as they would in the field.
///
/// Written in config as a comma-separated list: `"absent"`, `"nack-after:20"`, `"bad-crc"`,
/// `"bad-crc-every:3"`, `"stuck-busy"`, `"power-on-value"`, `"shorted"`.
public struct FaultPlan: Sendable, Equatable {
    /// The chip does not acknowledge at all (unplugged, wrong address).
    public var absent = false
    /// After this many transactions the chip stops acknowledging (a loose wire, a hung chip).
    public var nackAfter: Int?
    /// Every n-th CRC the chip sends is wrong (1: every one).
    public var badCRCEvery: Int?
    /// The conversion never finishes: the busy / data-ready bit stays set.
    public var stuckBusy = false
    /// A DS18B20 that lost power answers its power-on value, 85 °C.
    public var powerOnValue = false
    /// A 1-Wire data line shorted to ground: every bit reads 0, so the scratchpad is nine zero
    /// bytes, whose CRC (0) checks.
    public var shorted = false

    public init() {}

    public static let none = FaultPlan()

    /// Parses the config form. Throws a message naming the bad part and the valid ones.
    public init(spec: String) throws(FaultSpecError) {
        for rawPart in spec.split(separator: ",") {
            let part = rawPart.trimmingSpaces()
            if part.isEmpty || part == "none" { continue }
            let pieces = part.split(separator: ":", maxSplits: 1).map(String.init)
            let count: Int? = pieces.count == 2 ? Int(pieces[1]) : nil
            switch pieces[0] {
            case "absent": absent = true
            case "stuck-busy": stuckBusy = true
            case "power-on-value": powerOnValue = true
            case "shorted": shorted = true
            case "bad-crc": badCRCEvery = 1
            case "bad-crc-every":
                guard let n = count, n >= 1 else { throw FaultSpecError(part: part, reason: "needs a count of at least 1, e.g. bad-crc-every:3") }
                badCRCEvery = n
            case "nack-after":
                guard let n = count, n >= 0 else { throw FaultSpecError(part: part, reason: "needs a transaction count, e.g. nack-after:20") }
                nackAfter = n
            default:
                throw FaultSpecError(part: part, reason: "unknown fault; valid: absent, nack-after:N, bad-crc, bad-crc-every:N, stuck-busy, power-on-value, shorted")
            }
        }
    }

    /// Whether the n-th (from 1) CRC should be corrupted.
    func corruptsCRC(_ n: Int) -> Bool {
        guard let every = badCRCEvery else { return false }
        return n % every == 0
    }
}

public struct FaultSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    public var part: String
    public var reason: String
    public var description: String { "fault '\(part)' \(reason)" }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
