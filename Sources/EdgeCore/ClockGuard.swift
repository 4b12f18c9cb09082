#if canImport(Glibc)
import Glibc
#endif

/// Keeps readings from being sent with a wrong date on a gateway without a real-time clock.
///
/// While the system clock is not trusted, readings are stamped with the monotonic clock
/// (stored as a negative time: minus the milliseconds since boot) and held back; once the clock is
/// trusted, `resolve` turns each into wall time (now minus its age). A reading stamped before a
/// reboot cannot be placed: it is sent with the current time and metadata `time_estimated`.
/// No reading is ever sent dated 1970.
public final class ClockGuard: @unchecked Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Trusted when the kernel says synchronised (NTP), or the clock is past `earliest`.
        case auto
        /// Trusted only when the kernel says synchronised (systemd-timesyncd, chrony, ntpd).
        case kernel
        /// Always trusted (a gateway with a real-time clock).
        case trust
    }

    public let mode: Mode
    /// No correct clock reads earlier than this: the day this version was built.
    public let earliest: Timestamp
    private let wall: WallClock
    private let monotonic: MonotonicClock
    private let kernelSynchronised: () -> Bool

    public init(mode: Mode = .auto, earliest: Timestamp = Timestamp(millisecondsSince1970: 1_795_000_000_000),
                wall: WallClock = SystemClock(), monotonic: MonotonicClock = SystemClock(),
                kernelSynchronised: @escaping () -> Bool = { false }) {
        self.mode = mode
        self.earliest = earliest
        self.wall = wall
        self.monotonic = monotonic
        self.kernelSynchronised = kernelSynchronised
    }

    private let cacheLock = Lock()
    private var trustedCheckedAt: UInt64?

    /// Once trusted, the answer is kept for ten seconds: every reading is stamped through here, and
    /// there is no need to ask the kernel (a system call) for each one.
    public var isTrusted: Bool {
        if mode == .trust { return true }
        let now = monotonic.nanoseconds()
        if let at = cacheLock.withLock({ trustedCheckedAt }), now &- at < 10_000_000_000 { return true }
        let trusted = mode == .kernel ? kernelSynchronised() : (kernelSynchronised() || wall.now() >= earliest)
        if trusted { cacheLock.withLock { trustedCheckedAt = now } }
        return trusted
    }

    /// The time to stamp a reading with now.
    public func stamp() -> Timestamp {
        isTrusted ? wall.now() : Timestamp(millisecondsSince1970: -Int64(monotonic.nanoseconds() / 1_000_000) - 1)
    }

    /// Gives a reading stamped while the clock was not trusted its wall time. Returns false (and
    /// leaves it) while the clock is still not trusted.
    public func resolve(_ reading: inout Reading) -> Bool {
        guard reading.time.millisecondsSince1970 < 0 else { return true }
        guard isTrusted else { return false }
        let stampedAt = -reading.time.millisecondsSince1970 - 1
        let nowMono = Int64(monotonic.nanoseconds() / 1_000_000)
        let now = wall.now().millisecondsSince1970
        if stampedAt <= nowMono {
            reading.time = Timestamp(millisecondsSince1970: now - (nowMono - stampedAt))
        } else {
            reading.time = Timestamp(millisecondsSince1970: now)  // from before a reboot
            reading.metadata["time_estimated"] = "true"
        }
        return true
    }
}
