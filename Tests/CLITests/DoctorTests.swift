import Foundation
import Testing
import EdgeCore

/// `tagoedge doctor` against the emulator and a folder standing in for the gateway's system
/// (`--system-root`): each check must name the problem and its fix.
@Suite(.serialized) struct DoctorTests {
    struct Report {
        var status: Int32
        var checks: [JSONValue]
        var stdout: String

        func status(of check: String, _ subject: String? = nil) -> String? {
            find(check, subject)?["status"]?.stringValue
        }

        func find(_ check: String, _ subject: String? = nil) -> JSONValue? {
            checks.first { $0["check"]?.stringValue == check && (subject == nil || $0["subject"]?.stringValue == subject) }
        }
    }

    func doctor(_ config: String, root: String, environment: [String: String] = [:]) throws -> Report {
        let r = try CLI.run(["doctor", "--config", config, "--json", "--system-root", root], environment: environment)
        let json = try #require(try? JSONValue.parse(r.stdout), "not JSON: \(r.stdout) \(r.stderr)")
        return Report(status: r.status, checks: json["checks"]?.arrayValue ?? [], stdout: r.stdout)
    }

    func makeRoot() throws -> String {
        let root = NSTemporaryDirectory() + "tagoedge-doctor-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/var/lib/tagoedge", withIntermediateDirectories: true)
        return root
    }

    func benchConfig(api: String, capacity: String = "1MiB") -> String {
        """
        [device]
        token = "env:DOCTOR_TOKEN"
        api = "\(api)"
        [spool]
        path = "/var/lib/tagoedge/spool"
        capacity = "\(capacity)"
        [[sensor]]
        name = "env"
        driver = "bme280"
        address = 0x76
        [sensor.simulate]
        signal = "sine"
        [[sensor]]
        name = "climate"
        driver = "sht3x"
        address = 0x44
        [sensor.simulate]
        """
    }

    @Test func aHealthyBenchPasses() throws {
        let setup = try AgentTestSetup(deviceToken: "doctor-token-0123456789")
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try CLI.temporaryConfig(benchConfig(api: "http://127.0.0.1:\(setup.port)"))
        let r = try doctor(config, root: root, environment: ["DOCTOR_TOKEN": "doctor-token-0123456789"])
        #expect(r.status(of: "config") == "ok")
        #expect(r.status(of: "token") == "ok")
        #expect(r.status(of: "api") == "ok")
        #expect(r.status(of: "sensor", "env") == "ok")
        #expect(r.status(of: "sensor", "climate") == "ok")
        #expect(r.find("sensor", "env")?["detail"]?.stringValue?.contains("env_temperature = ") == true)
        // Ok, or a warning when this machine's own disk would keep less than 5 % free (the
        // check's rule: it failed a CI run on a disk 88 % full). Near that line, either.
        var fs = statvfs()
        #expect(statvfs(root, &fs) == 0)
        let room = Int64(fs.f_bavail) * Int64(fs.f_frsize) - (1 << 20) - max(Int64(16 << 20), Int64(fs.f_blocks) * Int64(fs.f_frsize) / 20)
        let expected: Set<String> = abs(room) < 512 << 20 ? ["ok", "warning"] : room < 0 ? ["warning"] : ["ok"]
        #expect(expected.contains(r.status(of: "spool") ?? "none"), "\(r.find("spool") ?? .null)")
        #expect(r.status(of: "budget") == "ok")
        #expect(r.find("budget")?["detail"]?.stringValue?.contains("records a day expected") == true, "\(r.stdout)")
        #expect(r.status(of: "service") == "warning", "a bench config without the unit is a warning, not a failure")
        #expect(r.status == 0, "\(r.stdout)")
        #expect(!r.stdout.contains("doctor-token-0123456789"))
    }

    @Test func aRefusedTokenFailsWithItsFixAndIsNeverPrinted() throws {
        let setup = try AgentTestSetup(deviceToken: "doctor-token-good")
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try CLI.temporaryConfig(benchConfig(api: "http://127.0.0.1:\(setup.port)"))
        let r = try doctor(config, root: root, environment: ["DOCTOR_TOKEN": "doctor-token-revoked-42"])
        #expect(r.status == 1)
        #expect(r.status(of: "api") == "ok")
        #expect(r.status(of: "token") == "failed")
        #expect(r.find("token")?["fix"]?.stringValue?.contains("rotate-token") == true)
        #expect(!r.stdout.contains("doctor-token-revoked-42"))
        // The same report for people.
        let text = try CLI.run(["doctor", "--config", config, "--system-root", root, "--no-read"], environment: ["DOCTOR_TOKEN": "doctor-token-revoked-42"])
        #expect(text.status == 1)
        #expect(text.stdout.contains("FAIL  token"))
        #expect(text.stdout.contains("fix: make a new token"))
        #expect(!text.stdout.contains("doctor-token-revoked-42") && !text.stderr.contains("doctor-token-revoked-42"))
    }

    @Test func anUnreachableAPIIsNamedAndTheTokenNotJudged() throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try CLI.temporaryConfig(benchConfig(api: "http://127.0.0.1:1"))
        let r = try doctor(config, root: root, environment: ["DOCTOR_TOKEN": "t"])
        #expect(r.status == 1)
        #expect(r.status(of: "api") == "failed")
        #expect(r.find("api")?["fix"]?.stringValue?.contains("nothing listens") == true)
        #expect(r.status(of: "token") == "skipped")
    }

    @Test func aSpoolLargerThanTheDiskFails() throws {
        let setup = try AgentTestSetup(deviceToken: "doctor-token-2")
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try CLI.temporaryConfig(benchConfig(api: "http://127.0.0.1:\(setup.port)", capacity: "5000000GiB"))
        let r = try doctor(config, root: root, environment: ["DOCTOR_TOKEN": "doctor-token-2"])
        #expect(r.status(of: "spool") == "failed")
        #expect(r.find("spool")?["fix"]?.stringValue?.contains("[spool] capacity") == true)
        // And a missing spool directory.
        try FileManager.default.removeItem(atPath: root + "/var/lib/tagoedge")
        let r2 = try doctor(config, root: root, environment: ["DOCTOR_TOKEN": "doctor-token-2"])
        #expect(r2.find("spool")?["detail"]?.stringValue == "the spool's directory does not exist")
    }

    @Test func hardwareProblemsNameTheConfigTxtLineOrTheWiring() throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        // /dev/i2c-1 exists but is not an i2c-dev device; no /dev/gpiochip0; a 1-Wire probe and a
        // thermal zone that read; a unit installed, not enabled.
        try fm.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
        try "".write(toFile: root + "/dev/i2c-1", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: root + "/sys/bus/w1/devices/28-0000075a3c11", withIntermediateDirectories: true)
        try "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
            .write(toFile: root + "/sys/bus/w1/devices/28-0000075a3c11/w1_slave", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: root + "/sys/class/thermal/thermal_zone0", withIntermediateDirectories: true)
        try "48312\n".write(toFile: root + "/sys/class/thermal/thermal_zone0/temp", atomically: true, encoding: .utf8)
        try fm.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
        try "[Service]\nExecStart=/usr/bin/tagoedge run --config /etc/tagoedge/tagoedge.toml\n"
            .write(toFile: root + "/etc/systemd/system/tagoedge.service", atomically: true, encoding: .utf8)
        try "sometoken\n".write(toFile: root + "/token", atomically: true, encoding: .utf8)
        chmod(root + "/token", 0o644)
        let config = try CLI.temporaryConfig("""
            [device]
            token = "file:/token"
            api = "http://127.0.0.1:1"
            [spool]
            path = "/var/lib/tagoedge/spool"
            capacity = "1MiB"
            [[sensor]]
            name = "env"
            driver = "bme280"
            bus = 1
            address = 0x76
            [[sensor]]
            name = "probe"
            driver = "ds18b20"
            device = "28-0000075a3c11"
            [[sensor]]
            name = "missing_probe"
            driver = "ds18b20"
            device = "28-00000000ffff"
            [[sensor]]
            name = "door"
            driver = "gpio"
            chip = "gpiochip0"
            line = 17
            [[sensor]]
            name = "board"
            driver = "board"
            """)
        let r = try doctor(config, root: root)
        #expect(r.status == 1)
        #expect(r.status(of: "token") == "warning", "a token file others can read")
        #expect(r.find("token")?["fix"]?.stringValue?.contains("chmod 600") == true)
        let i2c = try #require(r.find("bus", "/dev/i2c-1"))
        #expect(i2c["status"]?.stringValue == "failed")
        #expect(i2c["detail"]?.stringValue?.contains("not an i2c-dev character device") == true)
        let gpio = try #require(r.find("bus", "/dev/gpiochip0"))
        #expect(gpio["status"]?.stringValue == "failed")
        #expect(gpio["fix"]?.stringValue?.contains("ls /dev/gpiochip*") == true)
        #expect(r.status(of: "bus", "/sys/bus/w1/devices/28-00000000ffff") == "failed")
        #expect(r.find("bus", "/sys/bus/w1/devices/28-00000000ffff")?["detail"]?.stringValue?.contains("28-0000075a3c11") == true, "lists the probes present")
        #expect(r.status(of: "bus", "/sys/class/thermal/thermal_zone0/temp") == "ok")
        #expect(r.status(of: "sensor", "probe") == "ok")
        #expect(r.find("sensor", "probe")?["detail"]?.stringValue?.contains("probe_temperature = 23.125 °C") == true)
        #expect(r.status(of: "sensor", "board") == "ok")
        #expect(r.status(of: "sensor", "env") == "failed")
        #expect(r.status(of: "service") == "failed")
        #expect(r.find("service")?["fix"]?.stringValue == "sudo systemctl enable --now tagoedge")

        // Without the 1-Wire overlay, and with no I2C adapter at all.
        try fm.removeItem(atPath: root + "/sys/bus/w1")
        try fm.removeItem(atPath: root + "/dev/i2c-1")
        try fm.createDirectory(atPath: root + "/etc/systemd/system/multi-user.target.wants", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/etc/systemd/system/multi-user.target.wants/tagoedge.service", withDestinationPath: "../tagoedge.service")
        let r2 = try doctor(config, root: root)
        #expect(r2.find("bus", "/dev/i2c-1")?["fix"]?.stringValue?.contains("dtparam=i2c_arm=on") == true)
        #expect(r2.find("bus", "/sys/bus/w1/devices")?["fix"]?.stringValue?.contains("dtoverlay=w1-gpio") == true)
        #expect(r2.status(of: "service") == "warning", "enabled, but with another config file")
        #expect(r2.find("service")?["detail"]?.stringValue?.contains("/etc/tagoedge/tagoedge.toml") == true)
    }

    @Test func anInvalidConfigStopsEarlyWithItsLine() throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try CLI.temporaryConfig("[device]\napi = \"http://x\"\n[[sensor]]\nname = \"a\"\ndriver = \"bme281\"\n")
        let r = try doctor(config, root: root)
        #expect(r.status == 1)
        #expect(r.status(of: "config") == "failed")
        #expect(r.find("config")?["detail"]?.stringValue?.contains(":5:") == true)
        #expect(r.find("config")?["fix"]?.stringValue?.contains("check-config") == true)
        #expect(r.find("sensor") == nil)
    }
}
