import EdgeCore

/// What the agent drains its spool through: HTTP (`POST /data`), MQTT, or TagoTiP. The runtime
/// steps one of these on the uplink thread and never needs to know which.
///
/// Not thread safe: one thread steps it, takes its downlink and closes it.
public protocol Uplink: AnyObject {
    /// Sends what is waiting (one batch or window), acknowledging in the spool what the server
    /// accepted. Blocks for at most one request's timeout.
    func step() -> UplinkStep
    /// Messages that arrived from the cloud for the agent (settings, commands) since the last call.
    func takeDownlink() -> [(topic: String, payload: [UInt8])]
    /// Ends the connection; nothing is sent after it.
    func close()
    /// Requests (HTTP) or messages (MQTT, TagoTiP) sent since the start: what TagoIO's
    /// per-minute limits count.
    var requestsSent: Int { get }
}

extension Uplink {
    /// An uplink that counts nothing (a test double, one that cannot start) sends nothing TagoIO counts.
    public var requestsSent: Int { 0 }
}

extension HTTPUplink: Uplink {
    public var requestsSent: Int { requests }
    public func takeDownlink() -> [(topic: String, payload: [UInt8])] { [] }
    public func close() {}
}

extension MQTTUplink: Uplink {
    public var requestsSent: Int { messagesPublished }
    public func step() -> UplinkStep { step(waitMilliseconds: 100) }
}
