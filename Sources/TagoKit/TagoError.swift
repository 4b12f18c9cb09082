import EdgeCore

/// A TagoIO call that did not succeed. Never contains a token.
public struct TagoError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// 401: the token is not valid.
        case unauthorized
        /// 403: the token lacks the permission.
        case forbidden
        /// 429: wait `retryAfterSeconds` (from the Retry-After header or the message).
        case rateLimited
        /// 413 (or a 400 naming the size): the request body is too large.
        case payloadTooLarge
        /// 400 and other 4xx: the server refused the content; `message` says why.
        case validation
        case notFound
        /// 5xx.
        case server
        /// No response: timeout, DNS, refused, TLS, reset.
        case transport(TransportError.Kind)
        /// A 2xx whose body is not TagoIO's envelope, or `status: false`.
        case invalidResponse
    }

    public var kind: Kind
    /// `POST /data`.
    public var operation: String
    public var status: Int?
    public var message: String
    public var retryAfterSeconds: Double?

    public init(_ kind: Kind, operation: String, status: Int? = nil, message: String, retryAfterSeconds: Double? = nil) {
        self.kind = kind
        self.operation = operation
        self.status = status
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// Worth retrying the same request later (the cloud or the network, not the content).
    public var isRetryable: Bool {
        switch kind {
        case .transport, .server, .rateLimited: return true
        default: return false
        }
    }

    public var description: String {
        var text = "TagoIO \(operation) failed"
        if let status { text += " (HTTP \(status))" }
        switch kind {
        case .transport(let k): text += ": \(k.rawValue): \(message)"
        case .rateLimited: text += ": rate limited\(retryAfterSeconds.map { ", retry after \(JSONValue.format($0)) s" } ?? ""): \(message)"
        case .unauthorized: text += ": the token was refused: \(message)"
        default: text += ": \(message)"
        }
        return text
    }
}

/// TagoIO's envelope: `{"status": true, "result": …}` or an error in one of its three forms.
enum Envelope {
    static func decode(_ response: HTTPResponse, operation: String) throws(TagoError) -> JSONValue {
        let parsed = try? JSONValue.parse(String(decoding: response.body, as: UTF8.self))
        let message = parsed.map(errorMessage) ?? String(decoding: response.body.prefix(200), as: UTF8.self)
        switch response.status {
        case 200..<300:
            guard let parsed else { throw TagoError(.invalidResponse, operation: operation, status: response.status, message: "the body is not JSON: \(message)") }
            if parsed["status"]?.boolValue == false {
                throw TagoError(.validation, operation: operation, status: response.status, message: message)
            }
            return parsed["result"] ?? .null
        case 401:
            throw TagoError(.unauthorized, operation: operation, status: 401, message: message)
        case 403:
            throw TagoError(.forbidden, operation: operation, status: 403, message: message)
        case 404:
            throw TagoError(.notFound, operation: operation, status: 404, message: message)
        case 413:
            throw TagoError(.payloadTooLarge, operation: operation, status: 413, message: message)
        case 429:
            let wait = response.header("retry-after").flatMap(Double.init) ?? retryAfter(inMessage: message)
            throw TagoError(.rateLimited, operation: operation, status: 429, message: message, retryAfterSeconds: wait)
        case 500...:
            throw TagoError(.server, operation: operation, status: response.status, message: message)
        default:
            let lower = message.lowercased()
            let tooLarge = lower.contains("too large") || lower.contains("payload size") || lower.contains("limit of 200")
            throw TagoError(tooLarge ? .payloadTooLarge : .validation, operation: operation, status: response.status, message: message)
        }
    }

    /// `message`, `result.message` or a string `result`.
    static func errorMessage(_ v: JSONValue) -> String {
        if let m = v["message"]?.stringValue { return m }
        if let m = v["result"]?["message"]?.stringValue { return m }
        if let m = v["result"]?.stringValue { return m }
        return v.serialized.count > 200 ? String(v.serialized.prefix(200)) + "…" : v.serialized
    }

    /// "Too many requests (Retry-After: 8)" → 8.
    static func retryAfter(inMessage message: String) -> Double? {
        let marker = Array("Retry-After:".utf8)
        let bytes = Array(message.utf8)
        guard bytes.count >= marker.count else { return nil }
        for i in 0...(bytes.count - marker.count) where Array(bytes[i..<(i + marker.count)]) == marker {
            let rest = String(decoding: bytes[(i + marker.count)...], as: UTF8.self)
            return Double(String(rest.drop { $0 == " " }.prefix { $0.isNumber || $0 == "." }))
        }
        return nil
    }
}
