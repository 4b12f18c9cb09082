#if canImport(Glibc)
import Glibc
#endif
import EdgeCore
import MQTT
import Spool
import TagoKit
import Uplink
import TagoTiP

/// What the parsed configuration builds for the parts that run: the spool's options, the uplinks'
/// policies and the broker connection. Each default lives once, in the settings type it belongs to.
extension AgentConfig {
    /// The Device API client the agent uses: the `[uplink]` timeouts, CA file and TLS choice.
    public func tagoDevice(token: String) -> TagoDevice {
        var http = CurlHTTPClient.Options()
        http.timeoutMilliseconds = Int(uplink.timeoutMilliseconds)
        http.connectTimeoutMilliseconds = Int(uplink.connectTimeoutMilliseconds)
        http.caFile = uplink.caFile
        http.insecure = uplink.insecure
        return TagoDevice(token: token, endpoint: TagoEndpoint(api: device.api), http: CurlHTTPClient(options: http))
    }

    /// The broker connection of the `[mqtt]` table; by TagoIO's convention the token is the password.
    public func mqttOptions(token: String) -> MQTTOptions {
        var options = mqtt.connection
        options.password = token
        return options
    }

    /// The HTTP uplink's batching and backoff.
    public var uplinkPolicy: UplinkPolicy {
        var policy = UplinkPolicy()
        policy.maxRecords = uplink.batchSize
        policy.backoff = uplink.backoff
        return policy
    }

    /// What the MQTT uplink publishes, where, and how it retries.
    public var mqttUplinkSettings: MQTTUplinkSettings {
        var settings = mqtt.publishing
        settings.backoff = uplink.backoff
        return settings
    }
}

extension AgentConfig {
    /// The TagoTiP uplink's settings; its counter lives next to the spool.
    public var tagoTiPUplinkSettings: TagoTiPUplinkSettings {
        var settings = TagoTiPUplinkSettings()
        settings.serial = tagotip.serial ?? "tagoedge"
        settings.maxReadings = tagotip.batchSize
        settings.ackTimeoutMilliseconds = tagotip.ackTimeoutMilliseconds
        settings.backoff = uplink.backoff
        settings.counterFile = spool.path + ".tagotip-counter"
        return settings
    }

    /// The binding the `[tagotip] url` names, logging in with `token`'s hash.
    public func tagoTiPTransport(token: String, key: [UInt8]? = nil) -> TipTransport? {
        guard let e = tagotip.endpoint else { return nil }
        let serial = tagotip.serial ?? "tagoedge"
        switch e.binding {
        case .udp:
            return TipRawTransport(.udp, host: e.host, port: e.port, authorizationToken: token, serial: serial, key: key)
        case .tcp:
            return TipRawTransport(.tcp(tls: e.tls), host: e.host, port: e.port, authorizationToken: token, serial: serial, key: key,
                                   connectTimeoutMilliseconds: Int(uplink.connectTimeoutMilliseconds), caFile: tagotip.caFile, insecure: tagotip.insecure)
        case .mqtt:
            var options = MQTTOptions()
            options.host = e.host
            options.port = e.port
            options.clientID = mqtt.connection.clientID
            options.keepaliveSeconds = mqtt.connection.keepaliveSeconds
            if e.tls {
                var tls = MQTTOptions.TLSOptions()
                tls.caFile = tagotip.caFile
                tls.insecure = tagotip.insecure
                options.tls = tls
            }
            return TipMQTTTransport(options: options, authorizationToken: token, serial: serial)
        case .http:
            var http = CurlHTTPClient.Options()
            http.timeoutMilliseconds = Int(min(uplink.timeoutMilliseconds, tagotip.ackTimeoutMilliseconds))
            http.connectTimeoutMilliseconds = Int(uplink.connectTimeoutMilliseconds)
            http.caFile = tagotip.caFile
            http.insecure = tagotip.insecure
            return TipHTTPTransport(baseURL: e.base, authorizationToken: token, serial: serial, http: CurlHTTPClient(options: http), key: key)
        }
    }
}

extension TagoTiPSettings {
    /// The TagoTiP/S key: nil without one; derived from the token (§2.4) with `derive`.
    public func resolveKey(token: String) throws(TokenError) -> [UInt8]? {
        guard let key else { return nil }
        if case .literal("derive") = key { return TipSecure.deriveKey(token: token, serial: serial ?? "tagoedge") }
        let digits = Array(try key.resolve().token.utf8)
        // Hex digits only: UInt8(_:radix:) alone would also take a sign.
        let isHex = { (b: UInt8) in (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }
        let bytes = digits.count == 32 && digits.allSatisfy(isHex)
            ? stride(from: 0, to: 32, by: 2).compactMap { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16) } : []
        guard bytes.count == 16 else {
            throw TokenError(description: "the TagoTiP/S key in \(key) is not 32 hex characters (AES-128)")
        }
        return bytes
    }
}

func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

