/// Keeps requests within per-minute limits, per route: at most `limit` requests in *any* 60
/// seconds (a sliding window over the times of the last `limit` requests). TagoIO counts per
/// clock minute on its own clock; a token bucket refilling `limit` a minute with `limit` in
/// reserve can let through up to twice the limit in one of TagoIO's minutes, and a counter
/// aligned to this gateway's minute drifts against TagoIO's: the sliding window holds under
/// both. A caller that sent several at once (an MQTT window) records them after the fact and
/// waits longer next. Thread safe; time from a monotonic clock (a manual one in tests).
public final class RequestBudget: @unchecked Sendable {
    struct Route {
        let limit: Int
        /// Times of the last `limit` requests, oldest first (a ring).
        var times: [UInt64] = []
        var head = 0
    }

    private let lock = Lock()
    private let clock: MonotonicClock
    private var routes: [String: Route] = [:]
    private var counts: [String: Int] = [:]
    private static let window: UInt64 = 60_000_000_000

    /// - Parameter perMinute: limits by route name; routes not named are counted, not limited.
    public init(perMinute: [String: Int], clock: MonotonicClock) {
        self.clock = clock
        for (route, limit) in perMinute where limit > 0 { routes[route] = Route(limit: limit) }
    }

    /// Milliseconds until a request on `route` keeps it within its limit (0: go now).
    public func waitMilliseconds(_ route: String) -> Int64 {
        lock.withLock {
            guard let r = routes[route], r.times.count >= r.limit else { return 0 }
            // Full: the oldest of the last `limit` requests must be a minute old.
            let oldest = r.times[r.head]
            let now = clock.nanoseconds()
            let free = oldest &+ Self.window
            return free <= now ? 0 : Int64((free - now + 999_999) / 1_000_000)
        }
    }

    /// Records `count` requests sent on `route` now.
    public func take(_ route: String, _ count: Int = 1) {
        guard count > 0 else { return }
        lock.withLock {
            counts[route, default: 0] += count
            guard var r = routes[route] else { return }
            let now = clock.nanoseconds()
            for _ in 0..<min(count, r.limit) {
                if r.times.count < r.limit {
                    r.times.append(now)
                } else {
                    r.times[r.head] = now
                    r.head = (r.head + 1) % r.limit
                }
            }
            routes[route] = r
        }
    }

    /// Requests sent per route since the start.
    public var sent: [String: Int] { lock.withLock { counts } }
}
