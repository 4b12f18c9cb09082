import EdgeCore

/// A device to create through the Account API.
public struct NewDevice: Sendable {
    public var name: String
    public var type = "mutable"
    public var network: String?
    public var connector: String?
    public var serialNumber: String?
    public var tags: [(key: String, value: String)] = []
    public var params: [ConfigParam] = []

    public init(name: String) {
        self.name = name
    }

    var json: JSONValue {
        var m: [(String, JSONValue)] = [("name", .string(name)), ("type", .string(type)), ("active", .bool(true)), ("visible", .bool(true))]
        if let network { m.append(("network", .string(network))) }
        if let connector { m.append(("connector", .string(connector))) }
        if let serialNumber { m.append(("serie_number", .string(serialNumber))) }
        m.append(("tags", .array(tags.map { .object([("key", .string($0.key)), ("value", .string($0.value))]) })))
        if !params.isEmpty { m.append(("configuration_params", .array(params.map(\.json)))) }
        return .object(m)
    }
}

/// The Account API (profile token): what fleet provisioning uses.
public final class TagoAccount: Sendable {
    let caller: TagoCaller

    /// - Parameter token: a profile (account) token, sent in the header `token` (as TagoIO's
    ///   current SDKs send every kind of token; the seed's library said `Account-Token`).
    public init(token: String, endpoint: TagoEndpoint, http: HTTPClient) {
        caller = TagoCaller(endpoint: endpoint, http: http, authHeader: ("token", token))
    }

    /// A profile token from the account's e-mail and password, with no token (`POST
    /// /account/profile/token`, `security: []` in TagoIO's OpenAPI spec): how a script that has
    /// none gets its first. `otp` for accounts with two-factor sign-in.
    public static func profileToken(email: String, password: String, profileID: String, name: String, permission: String = "full",
                                    expire: String = "never", otp: String? = nil, endpoint: TagoEndpoint, http: HTTPClient) throws(TagoError) -> String {
        let caller = TagoCaller(endpoint: endpoint, http: http, authHeader: nil)
        var body: [(String, JSONValue)] = [("profile_id", .string(profileID)), ("email", .string(email)), ("password", .string(password)),
                                           ("name", .string(name)), ("permission", .string(permission)), ("expire_time", .string(expire))]
        if let otp { body.append(("pin_code", .string(otp))) }
        let r = try caller.call("POST", "/account/profile/token", body: .object(body), once: true)
        guard let token = r["token"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /account/profile/token", message: "the result has no token") }
        return token
    }

    /// `GET /device/{id}/data_amount`: how many records a device (its bucket) holds.
    public func dataAmount(device id: String) throws(TagoError) -> Int {
        let r = try caller.call("GET", "/device/\(percentEncode(id))/data_amount")
        guard let n = r.numberValue, n >= 0, n < 1e15 else { throw TagoError(.invalidResponse, operation: "GET /device/data_amount", message: "the result is not a count") }
        return Int(n)
    }

    /// `GET /device`, one page (pages start at 1).
    public func devices(page: Int = 1, amount: Int = 20, fields: [String] = ["id", "name", "tags"], name: String? = nil,
                        tags: [(key: String, value: String)] = [], orderBy: String = "name,asc") throws(TagoError) -> [JSONValue] {
        var q = listQuery(page: page, amount: amount, fields: fields, name: name, tags: tags)
        q.append(("orderBy", orderBy))
        return try caller.call("GET", "/device", query: q).arrayValue ?? []
    }

    /// `POST /device`: returns the new device's id and its first token.
    public func createDevice(_ device: NewDevice) throws(TagoError) -> (id: String, token: String) {
        let r = try caller.call("POST", "/device", body: device.json, once: true)
        guard let id = r["device_id"]?.stringValue ?? r["deviceID"]?.stringValue ?? r["id"]?.stringValue, let token = r["token"]?.stringValue else {
            throw TagoError(.invalidResponse, operation: "POST /device", message: "the result has no device id and token")
        }
        return (id, token)
    }

    public func device(id: String) throws(TagoError) -> JSONValue { try caller.call("GET", "/device/\(percentEncode(id))") }

    /// `PUT /device/{id}`: a partial edit.
    public func editDevice(id: String, _ changes: JSONValue) throws(TagoError) { _ = try caller.call("PUT", "/device/\(percentEncode(id))", body: changes) }

    public func deleteDevice(id: String) throws(TagoError) { _ = try caller.call("DELETE", "/device/\(percentEncode(id))") }

    public func tokens(deviceID: String) throws(TagoError) -> [JSONValue] {
        try caller.call("GET", "/device/token/\(percentEncode(deviceID))", query: [("page", "1"), ("amount", "100")]).arrayValue ?? []
    }

    /// `POST /device/token`: `permission` is full, write or read; `expire` "never", "1 day" or an ISO time.
    public func createToken(deviceID: String, name: String, permission: String = "full", expire: String = "never") throws(TagoError) -> String {
        let r = try caller.call("POST", "/device/token", body: .object([("device", .string(deviceID)), ("name", .string(name)),
                                                                        ("permission", .string(permission)), ("expire_time", .string(expire))]), once: true)
        guard let token = r["token"]?.stringValue else { throw TagoError(.invalidResponse, operation: "POST /device/token", message: "the result has no token") }
        return token
    }

    public func deleteToken(_ token: String) throws(TagoError) { _ = try caller.call("DELETE", "/device/token/\(percentEncode(token))") }

    public func params(deviceID: String, sentStatus: Bool? = nil) throws(TagoError) -> [ConfigParam] {
        let q = sentStatus.map { [("sent_status", $0 ? "true" : "false")] } ?? []
        return (try caller.call("GET", "/device/\(percentEncode(deviceID))/params", query: q).arrayValue ?? []).compactMap(ConfigParam.init)
    }

    /// `POST /device/{id}/params`: creates parameters, or edits those with an id.
    public func setParams(deviceID: String, _ params: [ConfigParam]) throws(TagoError) {
        _ = try caller.call("POST", "/device/\(percentEncode(deviceID))/params", body: .array(params.map(\.json)))
    }

    public func deleteParam(deviceID: String, paramID: String) throws(TagoError) {
        _ = try caller.call("DELETE", "/device/\(percentEncode(deviceID))/params/\(percentEncode(paramID))")
    }
}
