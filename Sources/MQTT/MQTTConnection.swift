import CMosquitto
import EdgeCore

/// A libmosquitto call that failed: the MOSQ_ERR code, what was being done, and
/// `mosquitto_strerror`'s text (or the CONNACK reason). Never contains a password.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The broker refused the login (CONNACK 4 or 5).
        case refused
        /// TLS could not be set up or the handshake failed.
        case tls
        /// The connection was lost or could not be made.
        case connection
        /// A payload larger than allowed, a bad topic…
        case invalid
    }

    public var kind: Kind
    public var code: Int32
    public var operation: String
    public var message: String

    public var description: String { "MQTT \(operation) failed: \(message)" }

    public init(kind: Kind, code: Int32, operation: String, message: String) {
        self.kind = kind
        self.code = code
        self.operation = operation
        self.message = message
    }
}

/// Settings of one MQTT connection.
public struct MQTTOptions: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 1883
    public var clientID = "tagoedge"
    public var username: String?
    /// By TagoIO's convention the device token; never logged.
    public var password: String?
    public var keepaliveSeconds = 60
    public var cleanSession = true
    /// TLS when set.
    public var tls: TLSOptions?
    /// The last will: published by the broker if this client vanishes.
    public struct Will: Sendable, Equatable {
        public var topic: String
        public var payload: String
        public var retain: Bool
        public init(topic: String, payload: String, retain: Bool) {
            self.topic = topic
            self.payload = payload
            self.retain = retain
        }
    }
    public var will: Will?
    public var connectTimeoutMilliseconds = 10_000
    /// Acknowledge the broker's TCP segments at once instead of after the delayed-ACK timer.
    /// A broker that leaves Nagle's algorithm on (mosquitto's default) holds back each PUBACK
    /// after the first until the client's TCP acknowledges that one; a client encoding its next
    /// messages sends no data to carry the acknowledgement, so the PUBACKs, and the uplink,
    /// would wait for the timer.
    public var quickAck = true

    public struct TLSOptions: Sendable, Equatable {
        /// A CA bundle; nil uses the operating system's store.
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        /// Skip certificate verification (only when the user asks).
        public var insecure = false
        public init() {}
    }

    public init() {}
}

/// One libmosquitto client, used from one thread: `connect`, `publish`, `subscribe` and `loop`
/// are called by the owner's thread, and the callbacks run inside `loop` on that thread. The
/// library is initialised once per process (`mosquitto_lib_init` is not thread safe; a Swift
/// global's lazy initialisation runs it exactly once). Each instance passes itself to
/// libmosquitto as the callbacks' `obj` pointer.
public final class MQTTConnection {
    public let options: MQTTOptions
    private var mosq: OpaquePointer?
    public private(set) var isConnected = false
    /// The CONNACK code of the last connect (0 accepted).
    public private(set) var connackCode: Int32 = -1
    /// Called with the message id when the broker acknowledged a QoS 1 publish (PUBACK).
    public var onPublished: ((Int32) -> Void)?
    /// Called for every message received on a subscribed topic.
    public var onMessage: ((String, [UInt8]) -> Void)?
    /// Called when the connection is lost (code 0: asked for).
    public var onDisconnect: ((Int32) -> Void)?
    /// Callbacks run so far: `loop` waits for the socket only when reading what had already
    /// arrived ran none.
    private var events = 0

    private static let initialised: Int32 = mosquitto_lib_init()

    public init(options: MQTTOptions) throws(MQTTError) {
        self.options = options
        _ = Self.initialised
        guard let m = mosquitto_new(options.clientID, options.cleanSession, nil) else {
            throw MQTTError(kind: .invalid, code: MOSQ_ERR_NOMEM.rawValue, operation: "mosquitto_new", message: "could not create a client (out of memory, or an empty client id with a persistent session)")
        }
        mosq = m
        mosquitto_user_data_set(m, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(m) { _, obj, rc in
            guard let obj else { return }
            let me = Unmanaged<MQTTConnection>.fromOpaque(obj).takeUnretainedValue()
            me.events &+= 1
            me.connackCode = rc
            me.isConnected = rc == 0
        }
        mosquitto_disconnect_callback_set(m) { _, obj, rc in
            guard let obj else { return }
            let me = Unmanaged<MQTTConnection>.fromOpaque(obj).takeUnretainedValue()
            me.events &+= 1
            me.isConnected = false
            me.onDisconnect?(rc)
        }
        mosquitto_publish_callback_set(m) { _, obj, mid in
            guard let obj else { return }
            let me = Unmanaged<MQTTConnection>.fromOpaque(obj).takeUnretainedValue()
            me.events &+= 1
            me.onPublished?(mid)
        }
        mosquitto_message_callback_set(m) { _, obj, message in
            guard let obj, let message else { return }
            let me = Unmanaged<MQTTConnection>.fromOpaque(obj).takeUnretainedValue()
            me.events &+= 1
            let topic = message.pointee.topic.map { String(cString: $0) } ?? ""
            let payload = message.pointee.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(message.pointee.payloadlen))) } ?? []
            me.onMessage?(topic, payload)
        }
        try check(mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1), "set TCP_NODELAY")
        if let username = options.username { try check(mosquitto_username_pw_set(m, username, options.password), "set username") }
        if let will = options.will {
            let bytes = Array(will.payload.utf8)
            try check(mosquitto_will_set(m, will.topic, Int32(bytes.count), bytes, 1, will.retain), "set the last will")
        }
        if let tls = options.tls {
            if tls.caFile == nil { try check(mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "use the system CA store") }
            try check(mosquitto_tls_set(m, tls.caFile, nil, tls.certFile, tls.keyFile, nil), "set up TLS", tls: true)
            if tls.insecure {
                try check(mosquitto_tls_opts_set(m, 0, nil, nil), "turn off certificate verification", tls: true)
                try check(mosquitto_tls_insecure_set(m, true), "turn off host name verification", tls: true)
            }
        }
    }

    deinit {
        if let mosq { mosquitto_destroy(mosq) }
    }

    private func check(_ rc: Int32, _ operation: @autoclosure () -> String, tls: Bool = false) throws(MQTTError) {
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return }
        throw MQTTError(kind: tls || rc == MOSQ_ERR_TLS.rawValue ? .tls : (rc == MOSQ_ERR_PAYLOAD_SIZE.rawValue || rc == MOSQ_ERR_INVAL.rawValue ? .invalid : .connection),
                        code: rc, operation: operation(), message: String(cString: mosquitto_strerror(rc)))
    }

    /// Connects and waits for the broker's CONNACK. Throws `.refused` with the broker's reason,
    /// `.tls` for a failed handshake (wrong CA, bad certificate), `.connection` otherwise.
    ///
    /// `mosquitto_connect` blocks: in connect(2) for as long as the kernel retries its SYN when
    /// the network drops packets silently (about 2 minutes by default), and in the TLS handshake.
    /// It runs on a thread of its own, and the caller waits at most `connectTimeoutMilliseconds`
    /// for it and the CONNACK together; a connect still blocked then is abandoned (its thread
    /// destroys the client when the call returns) and reported as a timeout.
    public func connect() throws(MQTTError) {
        guard let mosq else { return }
        let target = "\(options.host):\(options.port)"
        // The options may come from anywhere a caller took them (a command line): checked here,
        // so that no conversion below can trap.
        guard (1...65535).contains(options.port), (0...65535).contains(options.keepaliveSeconds),
              (0...3_600_000).contains(options.connectTimeoutMilliseconds) else {
            throw MQTTError(kind: .invalid, code: MOSQ_ERR_INVAL.rawValue, operation: "connect to \(target)",
                            message: "port \(options.port) (1-65535), keepalive \(options.keepaliveSeconds) s (0-65535) or connect timeout \(options.connectTimeoutMilliseconds) ms (up to an hour) out of range")
        }
        let deadline = SystemClock().nanoseconds() + UInt64(options.connectTimeoutMilliseconds) * 1_000_000
        let attempt = ConnectAttempt(mosq)
        let (host, port, keepalive) = (options.host, Int32(options.port), Int32(options.keepaliveSeconds))
        guard startThread({ attempt.run(host: host, port: port, keepalive: keepalive, deadline: deadline) }) else {
            throw MQTTError(kind: .connection, code: MOSQ_ERR_ERRNO.rawValue, operation: "connect to \(target)", message: "could not start a thread to connect")
        }
        let timedOut = MQTTError(kind: .connection, code: MOSQ_ERR_TIMEOUT.rawValue, operation: "connect to \(target)",
                                 message: "no answer within \(options.connectTimeoutMilliseconds) ms (the network, or a firewall, drops the connection)")
        guard let (rc, errnoCode) = attempt.wait(until: deadline) else {
            self.mosq = nil  // the attempt's thread destroys it
            isConnected = false
            throw timedOut
        }
        if rc == MOSQ_ERR_ERRNO.rawValue && errnoCode == ETIMEDOUT { throw timedOut }
        if isHandshakeFailure(rc, errno: errnoCode) { throw handshakeFailed(rc, errno: errnoCode, target: target) }
        if rc == MOSQ_ERR_ERRNO.rawValue {
            throw MQTTError(kind: .connection, code: rc, operation: "connect to \(target)", message: errnoDescription(errnoCode))
        }
        try check(rc, "connect to \(target)")
        connackCode = -1
        while connackCode < 0 {
            let lrc = mosquitto_loop(mosq, 100, 1)
            if lrc != MOSQ_ERR_SUCCESS.rawValue && connackCode > 0 { break }  // refused, then closed: report the refusal
            if lrc != MOSQ_ERR_SUCCESS.rawValue {
                let code = errno
                if isHandshakeFailure(lrc, errno: code) { throw handshakeFailed(lrc, errno: code, target: target) }
                let message = lrc == MOSQ_ERR_CONN_LOST.rawValue ? "the broker closed the connection before accepting it (a TLS mismatch, or a refused client)"
                    : String(cString: mosquitto_strerror(lrc))
                throw MQTTError(kind: .connection, code: lrc, operation: "connect to \(target)", message: message)
            }
            if SystemClock().nanoseconds() > deadline {
                throw MQTTError(kind: .connection, code: MOSQ_ERR_TIMEOUT.rawValue, operation: "connect to \(target)", message: "no CONNACK within \(options.connectTimeoutMilliseconds) ms")
            }
        }
        guard connackCode == 0 else {
            throw MQTTError(kind: .refused, code: connackCode, operation: "log in to \(target)", message: String(cString: mosquitto_connack_string(connackCode)))
        }
    }

    /// Whether a failure before the CONNACK is the TLS handshake. libmosquitto says so with
    /// MOSQ_ERR_TLS in some versions; others (Debian 13's 2.0.21) give a protocol error, a lost
    /// connection, or MOSQ_ERR_ERRNO with errno EPROTO, in mosquitto_connect and in the loop alike.
    private func isHandshakeFailure(_ rc: Int32, errno code: Int32) -> Bool {
        rc == MOSQ_ERR_TLS.rawValue
            || (options.tls != nil && (rc == MOSQ_ERR_PROTOCOL.rawValue || rc == MOSQ_ERR_CONN_LOST.rawValue
                || (rc == MOSQ_ERR_ERRNO.rawValue && code == EPROTO)))
    }

    private func handshakeFailed(_ rc: Int32, errno code: Int32, target: String) -> MQTTError {
        let detail = rc == MOSQ_ERR_ERRNO.rawValue ? errnoDescription(code) : String(cString: mosquitto_strerror(rc))
        return MQTTError(kind: .tls, code: rc, operation: "connect to \(target)",
                         message: "TLS handshake failed (is the broker's certificate signed by the configured CA, and for this host name?; libmosquitto: \(detail))")
    }

    /// Publishes and returns the message id (its PUBACK arrives through `onPublished`).
    public func publish(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false) throws(MQTTError) -> Int32 {
        let result = payload.withUnsafeBytes { bytes in Result { () throws(MQTTError) in try publish(topic: topic, bytes: bytes, qos: qos, retain: retain) } }
        return try result.get()
    }

    /// Publishes bytes the caller keeps: libmosquitto copies them before returning.
    public func publish(topic: String, bytes: UnsafeRawBufferPointer, qos: Int32 = 1, retain: Bool = false) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        let rc = mosquitto_publish(mosq, &mid, topic, Int32(bytes.count), bytes.baseAddress, qos, retain)
        try check(rc, "publish to \(topic)")
        return mid
    }

    public func subscribe(_ topic: String, qos: Int32 = 1) throws(MQTTError) {
        try check(mosquitto_subscribe(mosq, nil, topic, qos), "subscribe to \(topic)")
    }

    /// Runs network I/O for up to `timeoutMilliseconds`: receives acknowledgements and messages
    /// (callbacks run here), sends what is queued, keeps the connection alive.
    ///
    /// libmosquitto's external-loop calls (`mosquitto_loop_read`, `_write`, `_misc` on
    /// `mosquitto_socket`), not `mosquitto_loop`: that one starts with a select over the socket
    /// and the pipe `mosquitto_publish` writes a byte to, so a loop after a publish returned at
    /// once for that byte, and a busy client paid a select and a read for it every message.
    /// This reads what has already arrived first and waits (poll, on the socket alone) only when
    /// that ran no callback. The pipe is never read: its writes fail harmlessly once it is full.
    public func loop(timeoutMilliseconds: Int32) throws(MQTTError) {
        guard let mosq else {
            isConnected = false
            try check(MOSQ_ERR_NO_CONN.rawValue, "keep the connection to \(options.host):\(options.port)")
            return
        }
        let before = events
        var rc = mosquitto_loop_read(mosq, 1)
        if rc == MOSQ_ERR_SUCCESS.rawValue, events == before, timeoutMilliseconds > 0 {
            let fd = mosquitto_socket(mosq)
            var p = pollfd(fd: fd, events: Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0), revents: 0)
            // At most a second: the keepalive (`mosquitto_loop_misc`) is checked after the wait.
            if fd >= 0, poll(&p, 1, min(timeoutMilliseconds, 1000)) > 0 {
                if p.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 { rc = mosquitto_loop_read(mosq, 1) }
            }
        }
        let received = events != before
        if rc == MOSQ_ERR_SUCCESS.rawValue, mosquitto_want_write(mosq) { rc = mosquitto_loop_write(mosq, 1) }
        if rc == MOSQ_ERR_SUCCESS.rawValue { rc = mosquitto_loop_misc(mosq) }
        // Linux clears TCP_QUICKACK as the connection goes on: set it again after receiving, which
        // also sends at once the acknowledgement owed for what was read.
        if options.quickAck, received { setTCPOption(TCP_QUICKACK, 1) }
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            isConnected = false
            try check(rc, "keep the connection to \(options.host):\(options.port)")
        }
    }

    /// Publishes a burst: the kernel holds what `body` writes (TCP_CORK) and sends it in as few
    /// segments as fit when the burst ends, so the broker is woken, and the network stack run,
    /// once a burst instead of once a message. For one message it adds nothing.
    public func corked<T>(_ body: () throws(MQTTError) -> T) throws(MQTTError) -> T {
        setTCPOption(TCP_CORK, 1)
        defer { setTCPOption(TCP_CORK, 0) }
        return try body()
    }

    /// Sets a TCP option on the client's socket, if it has one (a performance hint: a failure
    /// changes nothing that matters).
    private func setTCPOption(_ option: Int32, _ value: Int32) {
        let fd = mosquitto_socket(mosq)
        guard fd >= 0 else { return }
        var v = value
        _ = setsockopt(fd, Int32(IPPROTO_TCP), option, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    public func disconnect() {
        if let mosq, isConnected {
            mosquitto_disconnect(mosq)
            _ = mosquitto_loop(mosq, 10, 1)
        }
        isConnected = false
    }
}

/// One `mosquitto_connect` on a thread of its own. The caller waits for it with a deadline; if
/// the deadline passes first, the client is the attempt's to destroy when the call returns.
private final class ConnectAttempt: @unchecked Sendable {
    private let lock = Lock()
    private let mosq: OpaquePointer
    private var result: (rc: Int32, errno: Int32)?
    private var abandoned = false

    init(_ mosq: OpaquePointer) { self.mosq = mosq }

    func run(host: String, port: Int32, keepalive: Int32, deadline: UInt64) {
        // A blocked `mosquitto_connect` that is given up keeps retrying its SYN in the kernel; if
        // the network comes back, it connects and sends CONNECT with the same client id after all,
        // and the broker hands it the session, dropping the connection that replaced it (which
        // then republished its window a second time). So the path is tried first with a socket
        // of our own that is closed at the deadline, and libmosquitto connects only over a path
        // that just answered.
        let probe = tcpProbe(host: host, port: port, deadline: deadline)
        let proceed: Bool? = lock.withLock {
            if abandoned { return nil }
            if probe != 0 { result = (MOSQ_ERR_ERRNO.rawValue, probe) }
            return probe == 0
        }
        guard let proceed else {
            destroyClient()
            return
        }
        guard proceed else { return }
        let rc = mosquitto_connect(mosq, host, port, keepalive)
        let code = errno
        let destroy: Bool = lock.withLock {
            result = (rc, code)
            return abandoned
        }
        if destroy { destroyClient() }
    }

    private func destroyClient() {
        mosquitto_user_data_set(mosq, nil)  // no callback may reach the connection that gave it up
        mosquitto_destroy(mosq)
    }

    /// The result, or nil (and the client given up) if the deadline passed first.
    func wait(until deadline: UInt64) -> (rc: Int32, errno: Int32)? {
        var pause: UInt32 = 500
        while true {
            let outcome: (rc: Int32, errno: Int32)?? = lock.withLock {
                if let result { return .some(result) }
                if SystemClock().nanoseconds() >= deadline {
                    abandoned = true
                    return .some(nil)
                }
                return nil
            }
            if let outcome { return outcome }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Connects a TCP socket of our own to `host:port` and closes it: 0 if some address of the host
/// answered before `deadline`, else the errno (ETIMEDOUT when none did in time). A host that
/// does not resolve gives 0: `mosquitto_connect` then reports the resolver's error itself.
private func tcpProbe(host: String, port: Int32, deadline: UInt64) -> Int32 {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_family = AF_UNSPEC
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return 0 }
    defer { freeaddrinfo(list) }
    var failure: Int32 = ETIMEDOUT
    var next: UnsafeMutablePointer<addrinfo>? = first
    while let ai = next {
        next = ai.pointee.ai_next
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { failure = errno; continue }
        defer { close(fd) }
        if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return 0 }
        guard errno == EINPROGRESS else { failure = errno; continue }
        let now = SystemClock().nanoseconds()
        guard now < deadline else { return ETIMEDOUT }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, Int32(min((deadline - now) / 1_000_000 + 1, 60_000))) > 0 else {
            failure = ETIMEDOUT
            continue
        }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { failure = errno; continue }
        if error == 0 { return 0 }
        failure = error
    }
    return failure
}
