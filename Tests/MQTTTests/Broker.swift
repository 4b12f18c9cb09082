import Foundation
import EdgeCore
import MQTT

/// A mosquitto broker of the test's own, on a free loopback port, with its own config file.
final class Broker {
    let dir: String
    private(set) var port: Int
    private var pid: pid_t = 0
    var extraConfig: String

    init(extraConfig: String = "allow_anonymous true\n") throws {
        dir = NSTemporaryDirectory() + "tagoedge-broker-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = Broker.freePort()
        self.extraConfig = extraConfig
        // Another test may take the free port between our probe and the broker's bind: retry.
        for attempt in 0..<3 {
            do {
                try start()
                return
            } catch where attempt < 2 {
                port = Broker.freePort()
            }
        }
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func start() throws {
        let config = """
        user root
        listener \(port) 127.0.0.1
        persistence true
        persistence_location \(dir)/
        log_dest stdout
        max_queued_messages 100000
        \(extraConfig)
        """
        try config.write(toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        pid = try spawn("/usr/sbin/mosquitto", ["-c", dir + "/mosquitto.conf"], output: dir + "/broker.log")
        // Ready when it accepts a TCP connection.
        for _ in 0..<300 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                let log = (try? String(contentsOfFile: dir + "/broker.log", encoding: .utf8)) ?? ""
                throw MQTTError(kind: .connection, code: status, operation: "start mosquitto", message: "it exited: \(log.suffix(300))")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            close(fd)
            if rc == 0 { return }
            usleep(30_000)
        }
        throw MQTTError(kind: .connection, code: -1, operation: "start mosquitto", message: "the broker did not listen on \(port)")
    }

    /// Stops the broker (SIGTERM: it saves its persistent sessions and queues, as a service stop does).
    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing is acknowledged.
    func pause() { if pid > 0 { kill(pid, SIGSTOP) } }
    func resume() { if pid > 0 { kill(pid, SIGCONT) } }

    deinit {
        resume()
        stop()
        if ProcessInfo.processInfo.environment["KEEP_BROKER_LOGS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    func options(clientID: String = "client-\(UUID().uuidString.prefix(8))") -> MQTTOptions {
        var o = MQTTOptions()
        o.host = "127.0.0.1"
        o.port = port
        o.clientID = clientID
        o.connectTimeoutMilliseconds = 3_000
        return o
    }
}

/// A subscriber that collects messages, reconnecting when the broker comes back.
final class Subscriber {
    let broker: Broker
    let topic: String
    let clientID = "sub-\(UUID().uuidString.prefix(8))"
    var connection: MQTTConnection?
    var messages: [(topic: String, payload: [UInt8])] = []
    /// Every number value in the JSON arrays received, in arrival order.
    private(set) var values: [Double] = []

    init(_ broker: Broker, topic: String) throws {
        self.broker = broker
        self.topic = topic
        try ensureConnected()
    }

    @discardableResult
    func ensureConnected() throws -> Bool {
        if connection?.isConnected == true { return true }
        var o = broker.options(clientID: clientID)
        o.cleanSession = false  // queued messages wait for us across a broker restart
        let c = try MQTTConnection(options: o)
        c.onMessage = { [unowned self] topic, payload in
            messages.append((topic, payload))
            if let v = try? JSONValue.parse(String(decoding: payload, as: UTF8.self)), let items = v.arrayValue {
                values += items.compactMap { $0["value"]?.numberValue }
            }
        }
        do {
            try c.connect()
        } catch {
            connection = nil
            return false
        }
        try c.subscribe(topic)
        connection = c
        return true
    }

    func pump(_ ms: Int32 = 10) {
        guard let c = connection else { _ = try? ensureConnected(); return }
        do { try c.loop(timeoutMilliseconds: ms) } catch { connection = nil }
    }
}

func trace(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Starts a program with an empty signal mask (the test runner blocks some signals, and a child
/// inheriting that mask would ignore SIGTERM), its output appended to `output`.
func spawn(_ path: String, _ arguments: [String], output: String, environment: [String]? = nil) throws -> pid_t {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGTERM)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
    defer { envp?.forEach { free($0) } }
    let rc = envp.map { e in posix_spawn(&pid, path, &actions, &attr, argv, e) } ?? posix_spawn(&pid, path, &actions, &attr, argv, environ)
    guard rc == 0 else { throw MQTTError(kind: .connection, code: rc, operation: "spawn \(path)", message: String(cString: strerror(rc))) }
    return pid
}
