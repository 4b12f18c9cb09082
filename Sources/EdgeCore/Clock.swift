#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A monotonic clock and a way to wait on it. Drivers wait through this (a BME280 conversion, an
/// SHT3x measurement) so the simulation and tests can advance time instead of sleeping.
public protocol MonotonicClock: AnyObject, Sendable {
    /// Nanoseconds since an arbitrary, fixed start; never goes backwards.
    func nanoseconds() -> UInt64
    /// Waits at least `microseconds`.
    func sleep(microseconds: UInt64)
}

/// Wall-clock time (UTC), used to stamp readings.
public protocol WallClock: AnyObject, Sendable {
    func now() -> Timestamp
}

/// The system's clocks: CLOCK_MONOTONIC, nanosleep and CLOCK_REALTIME.
public final class SystemClock: MonotonicClock, WallClock {
    public init() {}

    public func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public func sleep(microseconds: UInt64) {
        var request = timespec(tv_sec: Int(microseconds / 1_000_000), tv_nsec: Int(microseconds % 1_000_000) * 1000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR {
            request = remaining
        }
    }

    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSince1970: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}

/// A clock that moves only when told to (or when something sleeps on it): for tests and for the
/// simulation, so that waiting for a conversion costs no real time.
///
/// A `StopSignal` sleeping on it wakes when the clock is advanced past its deadline, so services
/// that wait minutes between rounds are tested by advancing the clock, with no real sleep.
public final class ManualClock: MonotonicClock, WallClock {
    private let current: Mutex<UInt64>
    private let wallStart: Int64
    private let observers = Mutex<[@Sendable () -> Void]>([])

    public init(startNanoseconds: UInt64 = 1_000_000_000,
                wallStart: Timestamp = Timestamp(millisecondsSince1970: 1_780_000_000_000)) {
        current = Mutex(startNanoseconds)
        self.wallStart = wallStart.millisecondsSince1970
    }

    public func nanoseconds() -> UInt64 { current.withLock { $0 } }

    public func sleep(microseconds: UInt64) { advance(nanoseconds: microseconds.multipliedReportingOverflow(by: 1000).partialValue) }

    public func advance(nanoseconds: UInt64) {
        current.withLock { $0 = $0.addingSaturating(nanoseconds) }
        for wake in observers.withLock({ $0 }) { wake() }
    }

    public func advance(milliseconds: Int64) { advance(nanoseconds: UInt64(clamping: milliseconds).multiplyingSaturating(1_000_000)) }

    /// Calls `wake` after every advance (a sleeper re-reads the clock).
    public func observe(_ wake: @escaping @Sendable () -> Void) { observers.withLock { $0.append(wake) } }

    public func now() -> Timestamp {
        Timestamp(millisecondsSince1970: wallStart + Int64(nanoseconds() / 1_000_000))
    }
}

extension UInt64 {
    /// `self + other`, or `UInt64.max` where it would overflow.
    public func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// `self × other`, or `UInt64.max` where it would overflow.
    public func multiplyingSaturating(_ other: UInt64) -> UInt64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }
}

extension Int64 {
    /// `self + other`, clamped to Int64's range.
    public func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self × other`, clamped to Int64's range.
    public func multiplyingSaturating(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }

    /// A Double from outside (a file, an answer) as Int64: rounded toward zero, clamped to the
    /// range, NaN as 0. `Int64(d)` traps on all three.
    public init(saturating d: Double) {
        if d.isNaN { self = 0 } else if d >= 9.2233720368547758e18 { self = .max } else if d <= -9.2233720368547758e18 { self = .min } else { self = Int64(d) }
    }
}

/// Milliseconds as nanoseconds on a monotonic clock: negative is 0, too large saturates.
public func nanoseconds(milliseconds: Int64) -> UInt64 {
    UInt64(clamping: milliseconds).multiplyingSaturating(1_000_000)
}
