// (The fuzzer, scripts/fuzz http, compiles this file with EdgeCore's sources in one module.)
#if canImport(EdgeCore)
import EdgeCore
#endif

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
        /// An answer no TagoIO server gives: a 2xx or 400 whose body is not TagoIO's JSON envelope,
        /// a redirect, an unexpected status. A wrong `api`, a proxy or a captive portal: worth
        /// retrying, never a reason to throw readings away.
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
        case .transport, .server, .rateLimited, .invalidResponse: return true
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
    static func decode(_ response: HTTPResponse, operation: String, now: Timestamp = SystemClock().now()) throws(TagoError) -> JSONValue {
        let parsed = try? JSONValue.parse(String(decoding: response.body, as: UTF8.self))
        let envelope: Bool = if case .object? = parsed { true } else { false }
        let message = parsed.map(errorMessage) ?? printable(response.body.prefix(200))
        switch response.status {
        case 200..<300:
            guard let parsed, envelope else { throw TagoError(.invalidResponse, operation: operation, status: response.status, message: "the body is not TagoIO's JSON envelope: \(message)") }
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
            let wait = response.header("retry-after").flatMap { retryAfterSeconds($0, now: now) } ?? retryAfter(inMessage: message)
            throw TagoError(.rateLimited, operation: operation, status: 429, message: message, retryAfterSeconds: wait)
        case 408, 500...:
            throw TagoError(.server, operation: operation, status: response.status, message: message)
        case 400 where envelope:
            // TagoIO refusing the data itself: the only answer (with 413) that dead-letters.
            let lower = message.lowercased()
            let tooLarge = lower.contains("too large") || lower.contains("payload size") || lower.contains("limit of 200")
            throw TagoError(tooLarge ? .payloadTooLarge : .validation, operation: operation, status: 400, message: message)
        default:
            // A 400 not in TagoIO's envelope, 1xx, 3xx, 402, 405-499: an answer TagoIO does not give.
            throw TagoError(.invalidResponse, operation: operation, status: response.status,
                            message: "an answer TagoIO does not give (a wrong [device] api, a proxy or a captive portal?): \(message)")
        }
    }

    /// `message`, `result.message` or a string `result`.
    static func errorMessage(_ v: JSONValue) -> String {
        if let m = v["message"]?.stringValue { return m }
        if let m = v["result"]?["message"]?.stringValue { return m }
        if let m = v["result"]?.stringValue { return m }
        return v.serialized.count > 200 ? String(v.serialized.prefix(200)) + "…" : v.serialized
    }

    /// The longest wait a server can ask for: an hour (a hostile or broken one cannot park the
    /// uplink for longer).
    static let maxRetryAfterSeconds = 3_600.0

    /// `Retry-After` as delay-seconds (`120`) or an HTTP date, in seconds from `now`, at most an hour.
    static func retryAfterSeconds(_ value: String, now: Timestamp) -> Double? {
        let text = String(decoding: value.utf8.drop { $0 == 32 || $0 == 9 }.reversed().drop { $0 == 32 || $0 == 9 }.reversed(), as: UTF8.self)
        if !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }) {
            return min(text.utf8.count > 12 ? maxRetryAfterSeconds : Double(text) ?? maxRetryAfterSeconds, maxRetryAfterSeconds)
        }
        guard let date = Timestamp(httpDate: text) else { return nil }
        let ms = date.millisecondsSince1970.addingSaturating(-now.millisecondsSince1970)
        return min(max(Double(ms) / 1000, 0), maxRetryAfterSeconds)
    }

    /// Up to 200 bytes of a body that is not JSON, with control characters shown as `?`.
    static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { $0 < 32 || $0 == 127 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    /// "Too many requests (Retry-After: 8)" → 8.
    static func retryAfter(inMessage message: String) -> Double? {
        let marker = Array("Retry-After:".utf8)
        let bytes = Array(message.utf8)
        guard bytes.count >= marker.count else { return nil }
        for i in 0...(bytes.count - marker.count) where Array(bytes[i..<(i + marker.count)]) == marker {
            let rest = String(decoding: bytes[(i + marker.count)...], as: UTF8.self)
            let number = String(rest.drop { $0 == " " }.prefix { ($0.isASCII && $0.isNumber) || $0 == "." }.prefix(12))
            return Double(number).flatMap { $0.isFinite ? min($0, maxRetryAfterSeconds) : nil }
        }
        return nil
    }
}
