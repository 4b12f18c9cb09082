#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore

/// Readings TagoIO refused (a 400 for that record alone) or that could not be encoded, kept as
/// JSON lines instead of blocking the queue: `{"seq":…,"at":…,"status":400,"reason":…,"object":{…}}`.
/// Inspect with `tagoedge dead-letter PATH`. Rotated once (to `<path>.1`) past `maxBytes`.
public final class DeadLetterFile: @unchecked Sendable {
    public let path: String
    public let maxBytes: Int64
    private let lock = Lock()
    public private(set) var written = 0

    public init(path: String, maxBytes: Int64 = 16 << 20) {
        self.path = path
        self.maxBytes = maxBytes
    }

    /// Appends one entry and flushes it to disk (these are readings leaving the spool).
    public func record(seq: UInt64, status: Int?, reason: String, object: JSONValue, at time: Timestamp) throws {
        let line = JSONValue.object([
            ("seq", .number(Double(seq))), ("at", .string(time.iso8601)), ("status", status.map { .number(Double($0)) } ?? .null),
            ("reason", .string(reason)), ("object", object),
        ]).serialized + "\n"
        try lock.withLock {
            var st = stat()
            if stat(path, &st) == 0, Int64(st.st_size) > maxBytes { rename(path, path + ".1") }
            let fd = try systemCall("open dead-letter file", on: path) { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
            defer { close(fd) }
            try writeAll(fd, Array(line.utf8), on: path)
            _ = try systemCall("fdatasync", on: path) { fdatasync(fd) }
            written += 1
        }
    }

    /// The entries, oldest first.
    public static func read(_ path: String) throws -> [JSONValue] {
        try readTextFile(path, limit: 1 << 30).split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
    }
}
