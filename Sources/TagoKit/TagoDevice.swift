import EdgeCore

/// The agent's version, sent in the User-Agent.
public let tagoEdgeVersion = "0.1.0"

/// Settings shared by the clients.
public struct TagoEndpoint: Sendable {
    /// `https://api.tago.io`, a region, a self-hosted base, or the local emulator.
    public var api: String
    public var userAgent = "TagoEdge/\(tagoEdgeVersion)"

    public init(api: String) {
        self.api = api.hasSuffix("/") ? String(api.dropLast()) : api
    }
}

/// Filters of `GET /data` and `DELETE /data`.
public struct DataQuery: Sendable, Equatable {
    public var variables: [String] = []
    /// `last_item`, `last_value`, `count`, `min`, `max`, `avg`, `sum`, …
    public var query: String?
    public var qty: Int?
    public var startDate: String?
    public var endDate: String?
    public var skip: Int?
    /// `ascending` or `descending`.
    public var ordination: String?
    public var details: Bool?
    public var ids: [String] = []
    public var groups: [String] = []
    public var values: [String] = []

    public init(variables: [String] = [], query: String? = nil, qty: Int? = nil) {
        self.variables = variables
        self.query = query
        self.qty = qty
    }

    var items: [(String, String)] {
        var out: [(String, String)] = []
        for v in variables { out.append(("variables", v)) }
        if let query { out.append(("query", query)) }
        if let qty { out.append(("qty", String(qty))) }
        if let startDate { out.append(("start_date", startDate)) }
        if let endDate { out.append(("end_date", endDate)) }
        if let skip { out.append(("skip", String(skip))) }
        if let ordination { out.append(("ordination", ordination)) }
        if let details { out.append(("details", details ? "true" : "false")) }
        for id in ids { out.append(("ids", id)) }
        for g in groups { out.append(("groups", g)) }
        for v in values { out.append(("values", v)) }
        return out
    }
}

/// A configuration parameter of a device (`configuration_params`).
public struct ConfigParam: Sendable, Equatable {
    public var id: String?
    public var key: String
    public var value: String
    public var sent: Bool

    public init(id: String? = nil, key: String, value: String, sent: Bool = false) {
        self.id = id
        self.key = key
        self.value = value
        self.sent = sent
    }

    init?(_ v: JSONValue) {
        guard let key = v["key"]?.stringValue else { return nil }
        self.key = key
        id = v["id"]?.stringValue
        switch v["value"] {
        case .string(let s)?: value = s
        case .number(let n)?: value = JSONValue.format(n)
        case .bool(let b)?: value = b ? "true" : "false"
        default: value = ""
        }
        sent = v["sent"]?.boolValue ?? false
    }

    var json: JSONValue {
        var m: [(String, JSONValue)] = []
        if let id { m.append(("id", .string(id))) }
        m += [("key", .string(key)), ("value", .string(value)), ("sent", .bool(sent))]
        return .object(m)
    }
}

/// Shared request plumbing: headers, envelope, errors.
struct TagoCaller: Sendable {
    let endpoint: TagoEndpoint
    let http: HTTPClient
    /// Nil for the routes TagoIO opens without a token (a profile token from credentials).
    let authHeader: (String, String)?

    func call(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, once: Bool = false) throws(TagoError) -> JSONValue {
        try call(method, path, query: query, raw: body.map { Array($0.serialized.utf8) }, once: once)
    }

    func call(_ method: String, _ path: String, query: [(String, String)] = [], raw: [UInt8]?, once: Bool = false) throws(TagoError) -> JSONValue {
        let operation = "\(method) \(path.split(separator: "?").first.map(String.init) ?? path)"
        var url = endpoint.api + path
        if !query.isEmpty { url += "?" + queryString(query) }
        var headers = [("User-Agent", endpoint.userAgent), ("Accept", "application/json")]
        if let authHeader { headers.insert(authHeader, at: 0) }
        var bytes: [UInt8] = []
        if let raw {
            headers.append(("Content-Type", "application/json"))
            bytes = raw
        }
        let response: HTTPResponse
        do {
            response = try http.send(HTTPRequest(method: method, url: url, headers: headers, body: bytes, once: once))
        } catch {
            throw TagoError(.transport(error.kind), operation: operation, message: error.message)
        }
        return try Envelope.decode(response, operation: operation)
    }
}

/// The Device API (`Device-Token`): what a gateway uses.
public final class TagoDevice: Sendable {
    let caller: TagoCaller

    /// - Parameter token: the device token; sent only in the `Device-Token` header, never logged.
    public init(token: String, endpoint: TagoEndpoint, http: HTTPClient) {
        caller = TagoCaller(endpoint: endpoint, http: http, authHeader: ("token", token))
    }

    /// `GET /info`: the device object.
    public func info() throws(TagoError) -> JSONValue { try caller.call("GET", "/info") }

    /// `POST /data` with one or more data objects (validated first). Returns the server's message.
    @discardableResult
    public func insert(_ objects: [JSONValue]) throws(TagoError) -> String {
        for o in objects {
            if let problem = tagoDataObjectProblem(o) { throw TagoError(.validation, operation: "POST /data", message: problem) }
        }
        let body: JSONValue = .array(objects)
        let size = body.serialized.utf8.count
        if size > tagoMaxRequestBytes {
            throw TagoError(.payloadTooLarge, operation: "POST /data", message: "\(size) bytes; TagoIO takes at most \(tagoMaxRequestBytes) per request")
        }
        return try caller.call("POST", "/data", body: body).stringValue ?? ""
    }

    /// `POST /data` for readings.
    @discardableResult
    public func insert(_ readings: [Reading]) throws(TagoError) -> String { try insert(readings.map(\.dataObject)) }

    /// `POST /data` with a body the caller built and validated (a JSON array of data objects
    /// within 200 kB): the uplink's path, which serializes each reading once.
    @discardableResult
    public func insert(serialized body: [UInt8]) throws(TagoError) -> String {
        try caller.call("POST", "/data", raw: body).stringValue ?? ""
    }

    /// `GET /data`: records, or a bare number for count/min/max/avg/sum queries.
    public func find(_ query: DataQuery) throws(TagoError) -> JSONValue { try caller.call("GET", "/data", query: query.items) }

    /// `PUT /data`: edit records by id (mutable devices).
    @discardableResult
    public func edit(_ items: [JSONValue]) throws(TagoError) -> String { try caller.call("PUT", "/data", body: .array(items)).stringValue ?? "" }

    /// `DELETE /data`. Always give explicit filters: the server's default is 15 records.
    @discardableResult
    public func remove(_ query: DataQuery) throws(TagoError) -> String { try caller.call("DELETE", "/data", query: query.items).stringValue ?? "" }

    /// `GET /device/params`; `onlyUnread` asks for `sent_status=false`.
    public func params(onlyUnread: Bool) throws(TagoError) -> [ConfigParam] {
        let result = try caller.call("GET", "/device/params", query: onlyUnread ? [("sent_status", "false")] : [])
        return (result.arrayValue ?? []).compactMap(ConfigParam.init)
    }

    /// `PUT /device/params/{id}`: marks a parameter read.
    public func markParamRead(id: String) throws(TagoError) {
        _ = try caller.call("PUT", "/device/params/\(percentEncode(id))", body: .object([("sent", .bool(true))]))
    }
}
