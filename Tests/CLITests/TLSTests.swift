import Foundation
import Testing
import TagoKit

/// TLS through libcurl against a real TLS server (openssl s_server): certificates are verified
/// unless the user turns verification off.
@Suite(.serialized) struct TLSTests {
    func openssl(_ args: [String], in dir: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "openssl \(args)")
    }

    /// Waits (up to 10 s) until something listens on 127.0.0.1:`port`, read from /proc/net/tcp: a
    /// probe connection would use up the server's only accept, and a fixed pause was too short for
    /// openssl on a loaded machine.
    func waitForListener(port: Int) {
        let local = String(format: "0100007F:%04X", port)
        for _ in 0..<200 {
            let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
            if table.split(separator: "\n").contains(where: { line in
                let f = line.split(separator: " ")
                return f.count > 3 && f[1] == local && f[3] == "0A"  // 0A: LISTEN
            }) { return }
            usleep(50_000)
        }
    }

    @Test func certificatesAreVerified() throws {
        let dir = NSTemporaryDirectory() + "tagoedge-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=TagoEdge Test CA"], in: dir)
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], in: dir)
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"], in: dir)
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=Other CA"], in: dir)

        /// A fresh one-connection TLS server per request, so no request depends on how the last ended.
        func get(_ configure: (inout CurlHTTPClient.Options) -> Void) -> Result<HTTPResponse, TransportError> {
            let port = Int.random(in: 20_000...40_000)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            server.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", "server.pem", "-key", "server.key", "-www", "-naccept", "1", "-quiet"]
            server.currentDirectoryURL = URL(fileURLWithPath: dir)
            server.standardInput = FileHandle.nullDevice
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            guard (try? server.run()) != nil else { return .failure(TransportError(kind: .other, message: "openssl s_server did not start")) }
            defer {
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            }
            waitForListener(port: port)
            var options = CurlHTTPClient.Options()
            options.timeoutMilliseconds = 3_000
            configure(&options)
            do throws(TransportError) {
                return .success(try CurlHTTPClient(options: options).send(HTTPRequest(method: "GET", url: "https://127.0.0.1:\(port)/")))
            } catch {
                return .failure(error)
            }
        }
        guard case .failure(let untrusted) = get({ _ in }) else { Issue.record("a certificate from an unknown CA was accepted"); return }
        #expect(untrusted.kind == .tls)
        guard case .failure(let wrongCA) = get({ $0.caFile = dir + "/other.pem" }) else { Issue.record("the wrong CA was accepted"); return }
        #expect(wrongCA.kind == .tls)
        guard case .success(let trusted) = get({ $0.caFile = dir + "/ca.pem" }) else { Issue.record("the right CA was refused"); return }
        #expect(trusted.status == 200)
        guard case .success(let insecure) = get({ $0.insecure = true }) else { Issue.record("insecure mode still verified"); return }
        #expect(insecure.status == 200)
    }
}
