#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// When a service last showed it was alive, on its clock. A service beats when it goes round and
/// while it waits (`StopSignal.sleep` beats for it), so a long wait is never taken for a hang.
public final class Heartbeat: @unchecked Sendable {
    public let name: String
    private let lock = Lock()
    private var last: UInt64

    public init(name: String, now: UInt64) {
        self.name = name
        last = now
    }

    public func beat(_ now: UInt64) { lock.withLock { if now > last { last = now } } }

    public var lastBeat: UInt64 { lock.withLock { last } }
}

/// A flag services check to know when to stop, with a sleep on an injected clock that `stop()`
/// interrupts at once (a condition variable: a sleeping thread costs no wake-ups beyond its
/// heartbeat's).
///
/// On `SystemClock` a sleep is a timed wait on CLOCK_MONOTONIC. On `ManualClock` it returns when
/// the clock has been advanced past its deadline: tests advance time instead of sleeping.
public final class StopSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var stopped = false
    private var pokes = 0
    /// For each thread in `sleep`, the clock reading it last acted on.
    private var sleepers: [Int: UInt64] = [:]
    private var nextSleeper = 0
    public let clock: MonotonicClock
    private let manual: Bool

    public init(clock: MonotonicClock = SystemClock()) {
        self.clock = clock
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        if let manual = clock as? ManualClock {
            self.manual = true
            manual.observe { [weak self] in self?.wake() }
        } else {
            manual = false
        }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public var isStopped: Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return stopped
    }

    public func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Wakes a `sleep` early without stopping (new work for the sleeper).
    public func poke() {
        pthread_mutex_lock(mutex)
        pokes += 1
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// How many threads are in `sleep` now.
    public var sleeping: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return sleepers.count
    }

    /// How many threads are in `sleep` having seen the clock at `time` or later: tests wait for
    /// every service to have acted on an advance of a manual clock before checking or advancing.
    public func parked(seen time: UInt64) -> Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return sleepers.values.filter { $0 >= time }.count
    }

    private func wake() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps up to `milliseconds` on the clock, returning early when stopped (or poked, for a
    /// sleeper that asks: services sharing one signal must not wake each other), beating
    /// `heartbeat` at least every `beatEvery` milliseconds meanwhile. Returns false if stopped.
    @discardableResult
    public func sleep(milliseconds: Int64, heartbeat: Heartbeat? = nil, beatEvery: Int64 = 1_000, wakeOnPoke: Bool = false) -> Bool {
        let deadline = clock.nanoseconds().addingSaturating(nanoseconds(milliseconds: milliseconds))
        let slice = nanoseconds(milliseconds: max(beatEvery, 1))
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let poked = pokes
        let me = nextSleeper
        nextSleeper += 1
        defer { sleepers[me] = nil }
        while !stopped && !(wakeOnPoke && pokes != poked) {
            let now = clock.nanoseconds()
            heartbeat?.beat(now)
            sleepers[me] = now
            guard now < deadline else { break }
            if manual {
                pthread_cond_wait(condition, mutex)  // the clock's advance wakes us
                continue
            }
            let wait = min(deadline - now, heartbeat == nil ? UInt64.max : slice)
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            let target = (UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)).addingSaturating(wait)
            let seconds = min(target / 1_000_000_000, UInt64(Int.max))
            var until = timespec(tv_sec: Int(seconds), tv_nsec: Int(target % 1_000_000_000))
            _ = pthread_cond_timedwait(condition, mutex, &until)
        }
        return !stopped
    }
}
