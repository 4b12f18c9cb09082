/// TagoTiP, TagoIO's text protocol for devices (spec: tago-io/tagotip `TagoTiP.md` revision B,
/// transport bindings `TagoTipServers.md`). This module builds and parses it held to the spec's
/// grammar (§14) and limits (§4.5): a builder that refuses what the grammar cannot carry, and a
/// strict parser for uplink frames, bodies, MQTT payloads, acks and commands. No Foundation.
public enum Tip {
    /// Largest plaintext frame, in UTF-8 bytes, not counting a trailing LF (§4.5).
    public static let maxFrameBytes = 16_384
    /// Variables in one `[]` block and names in one PULL list (§4.5.1).
    public static let maxVariables = 100
    /// Pairs in one `{}` metadata block.
    public static let maxMetadataPairs = 32
    /// Variable names, group names, metadata keys and serials, in bytes.
    public static let maxNameBytes = 100
    /// Unit strings, in bytes.
    public static let maxUnitBytes = 25
}

/// What went wrong, where: `what` says it in words and `offset` is the byte in the text parsed
/// (or the field built) where it was found.
public struct TipError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The text breaks the grammar (a server answers `invalid_payload`).
        case grammar
        /// A limit of §4.5 is exceeded (too many variables, pairs, bytes).
        case limit
        /// The frame is larger than 16,384 bytes (`payload_too_large`).
        case tooLarge
        /// A value cannot be represented at all (NaN, a control character, an empty string).
        case unrepresentable
    }
    public var kind: Kind
    public var what: String
    public var offset: Int

    public init(_ kind: Kind, _ what: String, at offset: Int = 0) {
        self.kind = kind
        self.what = what
        self.offset = offset
    }

    public var description: String { offset > 0 ? "\(what) (at byte \(offset))" : what }
}

/// A variable's value, typed by its operator: `:=` number, `=` string, `?=` boolean, `@=` location.
/// Numbers and coordinates are kept as their decimal text, exactly as on the wire.
public enum TipValue: Sendable, Equatable {
    case number(String)
    case string(String)
    case bool(Bool)
    case location(lat: String, lng: String, alt: String?)
}

/// One data point: `name OP value #unit @timestamp ^group {metadata}`.
public struct TipVariable: Sendable, Equatable {
    public var name: String
    public var value: TipValue
    public var unit: String?
    /// UNIX milliseconds.
    public var timestamp: UInt64?
    public var group: String?
    /// In the order written; keys are unique in what the builder writes.
    public var metadata: [TipPair]

    public init(name: String, value: TipValue, unit: String? = nil, timestamp: UInt64? = nil, group: String? = nil, metadata: [TipPair] = []) {
        self.name = name
        self.value = value
        self.unit = unit
        self.timestamp = timestamp
        self.group = group
        self.metadata = metadata
    }
}

public struct TipPair: Sendable, Equatable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// A PUSH body: structured variables with body-level defaults, or a passthrough payload.
public enum TipPushBody: Sendable, Equatable {
    case structured(TipStructuredBody)
    /// `>x`: the hex digits as written (an even number of them).
    case hex(String)
    /// `>b`: the base64 text as written.
    case base64(String)
}

public struct TipStructuredBody: Sendable, Equatable {
    public var group: String?
    public var timestamp: UInt64?
    public var metadata: [TipPair]
    public var variables: [TipVariable]

    public init(group: String? = nil, timestamp: UInt64? = nil, metadata: [TipPair] = [], variables: [TipVariable]) {
        self.group = group
        self.timestamp = timestamp
        self.metadata = metadata
        self.variables = variables
    }

    /// The variables with the body-level defaults applied as §6.4 says: the variable's own
    /// timestamp and group win, metadata merges with the variable's keys winning.
    public var resolved: [TipVariable] {
        variables.map { v in
            var r = v
            if r.timestamp == nil { r.timestamp = timestamp }
            if r.group == nil { r.group = group }
            if !metadata.isEmpty {
                var merged = metadata.filter { pair in !v.metadata.contains { $0.key == pair.key } }
                merged += v.metadata
                r.metadata = merged
            }
            return r
        }
    }
}

public enum TipMethod: String, Sendable, Equatable {
    case push = "PUSH", pull = "PULL", ping = "PING"
}

/// An uplink frame of the raw binding (UDP/TCP): `METHOD|[!N|]AUTH|SERIAL[|BODY]`.
public struct TipFrame: Sendable, Equatable {
    public var method: TipMethod
    public var counter: UInt32?
    /// The Authorization Hash, 16 hex characters.
    public var auth: String
    public var serial: String
    /// PUSH only.
    public var push: TipPushBody?
    /// PULL only: the variable names asked for.
    public var pull: [String]?

    public init(method: TipMethod, counter: UInt32? = nil, auth: String, serial: String, push: TipPushBody? = nil, pull: [String]? = nil) {
        self.method = method
        self.counter = counter
        self.auth = auth
        self.serial = serial
        self.push = push
        self.pull = pull
    }
}

/// A server answer or command (§9): `ACK|[!N|]STATUS[|DETAIL]` raw, `[!N|]STATUS[|DETAIL]` on MQTT.
public struct TipAck: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case ok = "OK", pong = "PONG", cmd = "CMD", err = "ERR"
    }
    public var counter: UInt32?
    public var status: Status
    public var detail: String?

    public init(counter: UInt32? = nil, status: Status, detail: String? = nil) {
        self.counter = counter
        self.status = status
        self.detail = detail
    }

    /// `OK|N`: the data points the server added.
    public var acceptedCount: UInt32? {
        guard status == .ok, let detail, !detail.isEmpty, detail.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt32(detail)
    }

    /// `ERR|code`: the error code.
    public var error: TipErrorCode? {
        guard status == .err else { return nil }
        return TipErrorCode(rawValue: detail ?? "") ?? .other(detail ?? "")
    }
}

/// The error codes of §9.2 (and any other a server sends).
public enum TipErrorCode: Sendable, Equatable, CustomStringConvertible {
    case invalidToken, invalidMethod, invalidPayload, invalidSeq, deviceNotFound, variableNotFound
    case rateLimited, authFailed, unsupportedVersion, payloadTooLarge, serverError
    case other(String)

    static let names: [(TipErrorCode, String)] = [
        (.invalidToken, "invalid_token"), (.invalidMethod, "invalid_method"), (.invalidPayload, "invalid_payload"),
        (.invalidSeq, "invalid_seq"), (.deviceNotFound, "device_not_found"), (.variableNotFound, "variable_not_found"),
        (.rateLimited, "rate_limited"), (.authFailed, "auth_failed"), (.unsupportedVersion, "unsupported_version"),
        (.payloadTooLarge, "payload_too_large"), (.serverError, "server_error"),
    ]

    public init?(rawValue: String) {
        guard let found = Self.names.first(where: { $0.1 == rawValue }) else { return nil }
        self = found.0
    }

    public var rawValue: String {
        if case .other(let s) = self { return s }
        return Self.names.first { $0.0 == self }?.1 ?? ""
    }

    public var description: String { rawValue }
}
