/// TagoIO's request limits by plan, per minute, per profile (every device of the profile shares
/// them), reset at each clock minute. The one table the agent, the budget command and
/// provisioning use. Source: TagoIO's rate-limit documentation as recorded in the project's
/// TAGO_API notes ("Free / Starter / Scale requests per minute"), and the TagoTiP documentation's
/// rate limits for TagoTiP uplinks (60 / 500 / 1,000).
public struct PlanLimits: Sendable, Equatable {
    public enum Route: String, Sendable, CaseIterable {
        case data = "POST /data"
        case params = "GET /device/params"
        case info = "GET /info"
        case mqttPublish = "MQTT publish"
        case mqttConnect = "MQTT connect"
        case tagotip = "TagoTiP uplink"
        case createDevice = "POST /device"
        case listDevices = "GET /device"
        case createToken = "POST /device/token"
    }

    public var name: String
    public var perMinute: [Route: Int]

    public init(name: String, perMinute: [Route: Int]) {
        self.name = name
        self.perMinute = perMinute
    }

    public static let free = PlanLimits(name: "free", perMinute: [
        .data: 250, .params: 100, .info: 60, .mqttPublish: 250, .mqttConnect: 20, .tagotip: 60,
        .createDevice: 10, .listDevices: 50, .createToken: 50,
    ])
    public static let starter = PlanLimits(name: "starter", perMinute: [
        .data: 5_000, .params: 1_000, .info: 5_000, .mqttPublish: 5_000, .mqttConnect: 100, .tagotip: 500,
        .createDevice: 250, .listDevices: 100, .createToken: 250,
    ])
    public static let scale = PlanLimits(name: "scale", perMinute: [
        .data: 15_000, .params: 5_000, .info: 10_000, .mqttPublish: 15_000, .mqttConnect: 200, .tagotip: 1_000,
        .createDevice: 5_000, .listDevices: 500, .createToken: 2_000,
    ])

    public static let all = [free, starter, scale]

    public static func named(_ name: String) -> PlanLimits? { all.first { $0.name == name } }

    /// The limit of a route, or nil when TagoIO documents none for it.
    public subscript(route: Route) -> Int? { perMinute[route] }

    /// Mutable devices keep at most this many records (older ones must be deleted to add more).
    public static let mutableDeviceRecords = 50_000
}
