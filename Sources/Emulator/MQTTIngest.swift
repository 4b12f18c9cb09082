#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import MQTT

extension Emulator {
    /// Subscribes to `topic` on a broker and stores JSON data objects published there into a
    /// device, as TagoIO's "Insert to Device" action does: the device whose token or id is the
    /// topic's last level, otherwise the first `--device-token` device. Runs on a thread of its
    /// own and reconnects every second while the broker is away.
    public func ingestMQTT(host: String, port: Int, topic: String = "tago/data/post", defaultToken: String?) {
        runBrokerClient(host: host, port: port, clientID: "tagoedge-emulator-\(getpid())", topics: [topic, topic + "/+"],
                        failures: "mqtt_connect_failures", retryMicroseconds: 1_000_000, loopMilliseconds: 200) { [weak self] _, t, payload in
            self?.ingestMessage(topic: t, payload: payload, defaultToken: defaultToken)
        }
    }

    /// A client of the emulator's own on a broker, on a thread of its own until the emulator
    /// stops: connects (again after `retryMicroseconds` while the broker is away, counting each
    /// failure under `failures`), subscribes to `topics`, hands each message to `onMessage` with
    /// the connection to answer on, and calls `tick` once a loop.
    func runBrokerClient(host: String, port: Int, username: String? = nil, password: String? = nil, clientID: String, topics: [String],
                         failures: String, retryMicroseconds: UInt32, loopMilliseconds: Int32,
                         tick: @escaping (MQTTConnection) -> Void = { _ in },
                         onMessage: @escaping (MQTTConnection, String, [UInt8]) -> Void) {
        startThread { [weak self] in
            var connection: MQTTConnection?
            while let self, self.isRunning {
                if connection?.isConnected != true {
                    var options = MQTTOptions()
                    options.host = host
                    options.port = port
                    options.username = username
                    options.password = password
                    options.clientID = clientID
                    options.connectTimeoutMilliseconds = 2_000
                    let c = try? MQTTConnection(options: options)
                    c?.onMessage = { [weak c] topic, payload in
                        if let c { onMessage(c, topic, payload) }
                    }
                    do {
                        try c?.connect()
                        for topic in topics { try c?.subscribe(topic) }
                        connection = c
                    } catch {
                        connection = nil
                        self.countMQTT(failures)
                        usleep(retryMicroseconds)
                        continue
                    }
                }
                if let connection { tick(connection) }
                do { try connection?.loop(timeoutMilliseconds: loopMilliseconds) } catch { connection = nil }
            }
            connection?.disconnect()
        }
    }

    func ingestMessage(topic: String, payload: [UInt8], defaultToken: String?) {
        guard let value = try? JSONValue.parse(String(decoding: payload, as: UTF8.self)) else {
            countMQTT("mqtt_not_json")
            return
        }
        let objects = value.arrayValue ?? [value]
        let last = String(topic.split(separator: "/").last ?? "")
        let token = deviceID(forToken: last) != nil ? last : (tokenForDevice(id: last) ?? defaultToken)
        guard let token, ingest(deviceToken: token, objects) == nil else {
            countMQTT("mqtt_rejected")
            return
        }
        countMQTT("mqtt_messages")
    }
}
