import CCurlShim
import EdgeCore

/// Sends HTTP requests. Implementations are thread safe.
public protocol HTTPClient: AnyObject, Sendable {
    func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse
}

/// HTTP over libcurl: one kept-alive connection, TLS verified against the system CA store (or
/// `caFile`) unless `insecure` is set by the user.
public final class CurlHTTPClient: HTTPClient, @unchecked Sendable {
    public struct Options: Sendable {
        public var connectTimeoutMilliseconds = 10_000
        public var timeoutMilliseconds = 30_000
        public var caFile: String?
        public var insecure = false
        public init() {}
    }

    public let options: Options
    private let lock = Lock()
    private let handle: UnsafeMutableRawPointer?

    public init(options: Options = Options()) {
        self.options = options
        handle = tecurl_new()
    }

    deinit { tecurl_free(handle) }

    public func send(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        guard let handle else { throw TransportError(kind: .other, message: "libcurl could not be initialised") }
        let result: Result<HTTPResponse, TransportError> = lock.withLock {
            var response = tecurl_response()
            let lines = request.headers.map { "\($0.0): \($0.1)" }
            var cLines = lines.map { strdupSwift($0) }
            defer { cLines.forEach { $0?.deallocate() } }
            let rc: Int32 = cLines.withUnsafeMutableBufferPointer { linePointers in
                linePointers.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constLines in
                    request.body.withUnsafeBytes { body in
                        tecurl_perform(handle, request.method, request.url, constLines.baseAddress, Int32(lines.count),
                                       body.baseAddress, body.count, options.connectTimeoutMilliseconds, options.timeoutMilliseconds,
                                       options.caFile, options.insecure ? 1 : 0, request.once ? 1 : 0, &response)
                    }
                }
            }
            defer { tecurl_response_free(&response) }
            guard rc == 0 else {
                let message = withUnsafeBytes(of: response.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                let kinds: [TransportError.Kind] = [.other, .timeout, .dns, .refused, .tls, .reset, .other, .tooLarge]
                let kind = Int(response.transport_kind) < kinds.count ? kinds[Int(response.transport_kind)] : .other
                return .failure(TransportError(kind: kind, message: message))
            }
            let body = response.body.map { Array(UnsafeRawBufferPointer(start: $0, count: response.body_length)) } ?? []
            let rawHeaders = response.headers.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: response.headers_length), as: UTF8.self) } ?? ""
            return .success(HTTPResponse(status: Int(response.status), headers: parseHeaderLines(rawHeaders), body: body))
        }
        return try result.get()
    }
}

private func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar>? {
    let utf8 = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return p
}
