#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore

/// Why the device token could not be had. Says where it was looked for, never what it is.
public struct TokenError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension TokenSource {
    /// The token itself, read from the environment or the file (whitespace trimmed).
    /// Also returns a warning when a token file can be read by other users.
    public func resolve() throws(TokenError) -> (token: String, warning: String?) {
        switch self {
        case .literal(let value):
            return (value, nil)
        case .environment(let name):
            guard let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty else {
                throw TokenError(description: "device.token: the environment variable \(name) is not set")
            }
            return (value.trimmingWhitespace(), nil)
        case .file(let path):
            let text: String
            do {
                text = try readTextFile(path, limit: 4096)
            } catch {
                throw TokenError(description: "device.token: cannot read the token file: \(error)")
            }
            let token = text.trimmingWhitespace()
            guard !token.isEmpty else { throw TokenError(description: "device.token: the token file \(path) is empty") }
            var st = stat()
            var warning: String?
            if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
                warning = "the token file \(path) can be read by other users; run: chmod 600 \(path)"
            }
            return (token, warning)
        }
    }
}
