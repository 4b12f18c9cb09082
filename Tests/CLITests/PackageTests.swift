import Foundation
import Testing
import EdgeCore

/// `scripts/package-deb`: the package's contents, control data and maintainer scripts; and, where
/// the tests run as root on a throwaway machine (CI sets TAGOEDGE_PACKAGE_INSTALL_TEST=1), a real
/// install, upgrade and purge with dpkg.
@Suite(.serialized) struct PackageTests {
    func sh(_ command: String) throws -> CLI.Result { try CLI.run(["-c", command], executable: "/bin/sh") }

    func build(version: String, into dir: String) throws -> String {
        let r = try sh("scripts/package-deb --binary '\(CLI.binary)' --version \(version) --out '\(dir)' --compression gzip")
        #expect(r.status == 0, "\(r.stderr)")
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FileManager.default.fileExists(atPath: path), "no package at '\(path)'")
        return path
    }

    var architecture: String { (try? sh("dpkg --print-architecture").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?" }

    @Test func contentsControlAndMaintainerScripts() throws {
        let dir = NSTemporaryDirectory() + "tagoedge-deb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deb = try build(version: "9.8.7", into: dir)
        #expect(deb.hasSuffix("/tagoedge_9.8.7_\(architecture).deb"))

        let contents = try sh("dpkg-deb -c '\(deb)'").stdout
        for path in ["./usr/bin/tagoedge", "./lib/systemd/system/tagoedge.service", "./lib/udev/rules.d/60-tagoedge.rules",
                     "./etc/tagoedge/tagoedge.toml", "./usr/share/doc/tagoedge/README.md"] {
            #expect(contents.contains(" \(path)\n"), "missing \(path)")
        }
        #expect(contents.contains("-rwxr-xr-x root/root") && contents.contains("-rw-r----- root/root"), "modes and owners as packaged")

        func field(_ name: String) throws -> String { try sh("dpkg-deb -f '\(deb)' \(name)").stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(try field("Package") == "tagoedge")
        #expect(try field("Version") == "9.8.7")
        #expect(try field("Architecture") == architecture)
        let depends = try field("Depends")
        #expect(depends.contains("libmosquitto1"))
        #expect(depends.contains("libcurl4"))
        #expect(depends.contains("ca-certificates"))

        let control = dir + "/control"
        #expect(try sh("dpkg-deb -e '\(deb)' '\(control)'").status == 0)
        #expect(try String(contentsOfFile: control + "/conffiles", encoding: .utf8) == "/etc/tagoedge/tagoedge.toml\n")
        for script in ["postinst", "prerm", "postrm"] {
            #expect(try sh("sh -n '\(control)/\(script)'").status == 0, "\(script) is not valid sh")
            let attributes = try FileManager.default.attributesOfItem(atPath: control + "/" + script)
            #expect((attributes[.posixPermissions] as? Int) == 0o755)
        }
        let postinst = try String(contentsOfFile: control + "/postinst", encoding: .utf8)
        #expect(postinst.contains("useradd --system"))
        #expect(postinst.contains("usermod -a -G i2c,gpio tagoedge"))
        let postrm = try String(contentsOfFile: control + "/postrm", encoding: .utf8)
        #expect(postrm.contains("rm -rf /var/lib/tagoedge /etc/tagoedge"))

        // The files as installed: the unit runs the packaged binary, the default config is valid.
        let tree = dir + "/tree"
        #expect(try sh("dpkg-deb -x '\(deb)' '\(tree)'").status == 0)
        let unit = try String(contentsOfFile: tree + "/lib/systemd/system/tagoedge.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/tagoedge run --config /etc/tagoedge/tagoedge.toml"))
        #expect(!unit.contains("/usr/local/bin"))
        let check = try CLI.run(["check-config", tree + "/etc/tagoedge/tagoedge.toml"])
        #expect(check.status == 0, "\(check.stderr)")
    }

    /// Only as root, only when asked, and never where tagoedge is really installed.
    static let mayInstall: Bool = {
        guard getuid() == 0, ProcessInfo.processInfo.environment["TAGOEDGE_PACKAGE_INSTALL_TEST"] == "1" else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/dpkg-query")
        p.arguments = ["-W", "tagoedge"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus != 0
    }()

    @Test(.enabled(if: mayInstall))
    func installUpgradePurgeLeaveTheSystemClean() throws {
        let dir = NSTemporaryDirectory() + "tagoedge-deb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let groupsBefore = try sh("getent group i2c gpio | cut -d: -f1").stdout
        let first = try build(version: "0.0.1", into: dir)
        let second = try build(version: "0.0.2", into: dir)

        let install = try sh("dpkg -i '\(first)'")
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        #expect(try sh("/usr/bin/tagoedge --version").stdout == (try CLI.run(["--version"])).stdout, "the packaged binary runs")
        let groups = try sh("id -nG tagoedge").stdout
        #expect(groups.contains("i2c") && groups.contains("gpio"), "tagoedge is in \(groups)")
        #expect(try sh("stat -c '%U:%G %a' /var/lib/tagoedge").stdout == "tagoedge:tagoedge 750\n")
        #expect(try sh("stat -c '%U:%G %a' /etc/tagoedge/tagoedge.toml").stdout == "root:tagoedge 640\n")
        #expect(try sh("test -x /usr/bin/tagoedge && /usr/bin/tagoedge check-config /etc/tagoedge/tagoedge.toml").status == 0)

        // An upgrade keeps the operator's config.
        #expect(try sh("echo '# edited on site' >> /etc/tagoedge/tagoedge.toml").status == 0)
        let upgrade = try sh("dpkg -i '\(second)'")
        #expect(upgrade.status == 0, "\(upgrade.stdout)\(upgrade.stderr)")
        #expect(try sh("dpkg-query -W -f='${Version}' tagoedge").stdout == "0.0.2")
        #expect(try sh("tail -1 /etc/tagoedge/tagoedge.toml").stdout == "# edited on site\n")

        // Purge: nothing of tagoedge is left.
        #expect(try sh("echo token > /etc/tagoedge/token && : > /var/lib/tagoedge/spool").status == 0)
        let purge = try sh("dpkg --purge tagoedge")
        #expect(purge.status == 0, "\(purge.stdout)\(purge.stderr)")
        for path in ["/usr/bin/tagoedge", "/etc/tagoedge", "/var/lib/tagoedge", "/lib/systemd/system/tagoedge.service", "/lib/udev/rules.d/60-tagoedge.rules"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left")
        }
        #expect(try sh("getent passwd tagoedge").status != 0, "the user is left")
        #expect(try sh("getent group tagoedge").status != 0, "the group is left")
        #expect(try sh("getent group i2c gpio | cut -d: -f1").stdout == groupsBefore, "groups the package made are removed, others kept")
        #expect(try sh("dpkg-query -W tagoedge").status != 0)
    }
}
