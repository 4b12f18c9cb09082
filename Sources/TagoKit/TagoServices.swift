import EdgeCore

/// TagoIO's services for analyses (an analysis token, sent as `Device-Token` like the SDK does):
/// SMS, e-mail with an attachment, MQTT publish, a notification, and the analysis console.
public final class TagoServices: Sendable {
    let caller: TagoCaller

    public init(analysisToken: String, endpoint: TagoEndpoint, http: HTTPClient) {
        caller = TagoCaller(endpoint: endpoint, http: http, authHeader: ("token", analysisToken))
    }

    /// `to`: one number, or several separated by commas, in international format.
    public func sendSMS(to: String, message: String) throws(TagoError) {
        _ = try caller.call("POST", "/analysis/services/sms/send", body: .object([("to", .string(to)), ("message", .string(message))]), once: true)
    }

    public struct Attachment: Sendable {
        public var filename: String
        /// The file's contents (text, such as a CSV report).
        public var archive: String
        public init(filename: String, archive: String) {
            self.filename = filename
            self.archive = archive
        }
    }

    /// `to`: one address, or several separated by commas. `html` replaces `message` when given.
    public func sendEmail(to: String, subject: String, message: String, html: String? = nil, from: String? = nil, attachment: Attachment? = nil) throws(TagoError) {
        var m: [(String, JSONValue)] = [("to", .string(to)), ("subject", .string(subject)), ("message", .string(message))]
        if let html { m.append(("html", .string(html))) }
        if let from { m.append(("from", .string(from))) }
        if let attachment { m.append(("attachment", .object([("archive", .string(attachment.archive)), ("filename", .string(attachment.filename))]))) }
        _ = try caller.call("POST", "/analysis/services/email/send", body: .object(m), once: true)
    }

    /// Publishes to a device's MQTT topic (`bucket`: the device's id).
    public func publishMQTT(topic: String, message: String, bucket: String? = nil, retain: Bool = false, qos: Int = 0) throws(TagoError) {
        var m: [(String, JSONValue)] = [("topic", .string(topic)), ("message", .string(message)), ("retain", .bool(retain)), ("qos", .number(Double(qos)))]
        if let bucket { m.append(("bucket", .string(bucket))) }
        _ = try caller.call("POST", "/analysis/services/mqtt/publish", body: .object(m), once: true)
    }

    /// A notification in the account's inbox; `reference` ties it to a resource (a device id …).
    public func sendNotification(title: String, message: String, reference: String? = nil) throws(TagoError) {
        var m: [(String, JSONValue)] = [("title", .string(title)), ("message", .string(message))]
        if let reference { m.append(("ref_id", .string(reference))) }
        _ = try caller.call("POST", "/analysis/services/notification/send", body: .object(m), once: true)
    }

    /// A line in the analysis's console.
    public func log(_ message: String, at time: Timestamp? = nil) throws(TagoError) {
        var m: [(String, JSONValue)] = [("message", .string(message))]
        if let time { m.append(("timestamp", .number(Double(time.millisecondsSince1970)))) }
        _ = try caller.call("POST", "/analysis/services/console/send", body: .object(m))
    }
}
