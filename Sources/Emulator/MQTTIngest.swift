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
        startThread { [weak self] in
            var connection: MQTTConnection?
            while let self, self.isRunning {
                if connection?.isConnected != true {
                    var options = MQTTOptions()
                    options.host = host
                    options.port = port
                    options.clientID = "tagoedge-emulator-\(getpid())"
                    options.connectTimeoutMilliseconds = 2_000
                    connection = try? MQTTConnection(options: options)
                    connection?.onMessage = { [weak self] t, payload in self?.ingestMessage(topic: t, payload: payload, defaultToken: defaultToken) }
                    do {
                        try connection?.connect()
                        try connection?.subscribe(topic)
                        try connection?.subscribe(topic + "/+")
                    } catch {
                        connection = nil
                        self.countMQTT("mqtt_connect_failures")
                        sleep(1)
                        continue
                    }
                }
                do { try connection?.loop(timeoutMilliseconds: 200) } catch { connection = nil }
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
