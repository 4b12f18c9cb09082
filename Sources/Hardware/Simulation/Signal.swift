#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EdgeCore

/// What a simulated quantity does over time.
public struct SignalSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case constant
        case sine
        case randomWalk = "random-walk"
        /// Increases by `step` per reading, so a receiver can detect gaps.
        case counter
    }

    public var kind: Kind
    /// Period of the sine, in seconds.
    public var periodSeconds: Double
    /// Seed of the random walk (the same seed gives the same walk).
    public var seed: UInt64
    /// Increment per reading of the counter.
    public var step: Double

    public init(_ kind: Kind, periodSeconds: Double = 60, seed: UInt64 = 1, step: Double = 1) {
        self.kind = kind
        self.periodSeconds = periodSeconds
        self.seed = seed
        self.step = step
    }
}

/// The physical behaviour of one quantity: where it rests, how far it swings, and its limits.
public struct QuantityModel: Sendable, Equatable {
    public var center: Double
    public var amplitude: Double
    public var minimum: Double
    public var maximum: Double
    /// Where a counter starts.
    public var counterStart: Double

    public init(center: Double, amplitude: Double, minimum: Double, maximum: Double, counterStart: Double? = nil) {
        self.center = center
        self.amplitude = amplitude
        self.minimum = minimum
        self.maximum = maximum
        self.counterStart = counterStart ?? max(minimum, 0)
    }

    public static let temperature = QuantityModel(center: 22, amplitude: 3, minimum: -40, maximum: 85)
    public static let humidity = QuantityModel(center: 45, amplitude: 10, minimum: 0, maximum: 100)
    public static let pressure = QuantityModel(center: 101_325, amplitude: 300, minimum: 30_000, maximum: 110_000, counterStart: 90_000)
    public static let illuminance = QuantityModel(center: 320, amplitude: 200, minimum: 0, maximum: 54_000)
    public static let boardTemperature = QuantityModel(center: 48, amplitude: 4, minimum: 0, maximum: 100, counterStart: 20)

    /// A voltage on an ADC input: `center` volts, swinging by a tenth of a volt.
    public static func voltage(_ center: Double) -> QuantityModel {
        QuantityModel(center: center, amplitude: 0.1, minimum: 0, maximum: 3.3)
    }
}

/// Produces successive values of one quantity following a signal.
public final class SignalGenerator {
    public let spec: SignalSpec
    public let model: QuantityModel
    private var walk: Double
    private var rng: UInt64
    private(set) var count = 0

    public init(_ spec: SignalSpec, model: QuantityModel, salt: UInt64 = 0) {
        self.spec = spec
        self.model = model
        walk = model.center
        rng = (spec.seed &+ salt &* 0x9E37_79B9_7F4A_7C15) | 1
    }

    /// The value of the next reading, at `seconds` on the simulation's clock.
    public func next(atSeconds seconds: Double) -> Double {
        defer { count += 1 }
        switch spec.kind {
        case .constant:
            return model.center
        case .sine:
            return model.center + model.amplitude * sin(2 * Double.pi * seconds / max(spec.periodSeconds, 0.001))
        case .randomWalk:
            walk += model.amplitude * 0.1 * (uniform() * 2 - 1)
            walk = min(max(walk, model.center - model.amplitude * 3), model.center + model.amplitude * 3)
            walk = min(max(walk, model.minimum), model.maximum)
            return walk
        case .counter:
            let span = model.maximum - model.counterStart
            let raw = Double(count) * spec.step
            return model.counterStart + (span > 0 ? raw.truncatingRemainder(dividingBy: span) : 0)
        }
    }

    // xorshift64*: small, seeded, reproducible.
    private func uniform() -> Double {
        rng ^= rng >> 12
        rng ^= rng << 25
        rng ^= rng >> 27
        return Double((rng &* 2_685_821_657_736_338_717) >> 11) / Double(1 << 53)
    }
}

