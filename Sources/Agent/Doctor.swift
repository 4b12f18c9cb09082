#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import EdgeCore
import Hardware
import MQTT
import Spool
import TagoKit

/// One finding of `tagoedge doctor`: what was checked, how it went, and how to fix it.
public struct DoctorCheck: Sendable, Equatable {
    public enum Status: String, Sendable {
        case ok, warning, failed, skipped
    }

    /// `config`, `token`, `api`, `mqtt`, `bus`, `sensor`, `clock`, `spool`, `service`.
    public var check: String
    /// What it is about: a file, a device, a sensor's name.
    public var subject: String
    public var status: Status
    public var detail: String
    public var fix: String?

    public init(_ check: String, _ subject: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.check = check
        self.subject = subject
        self.status = status
        self.detail = detail
        self.fix = fix
    }

    public var json: JSONValue {
        .object([("check", .string(check)), ("subject", .string(subject)), ("status", .string(status.rawValue)),
                 ("detail", .string(detail)), ("fix", fix.map(JSONValue.string) ?? .null)])
    }
}

/// What `tagoedge doctor` looks at. Every system path is under `systemRoot` (empty on a gateway;
/// a folder in tests, or a gateway's SD card mounted elsewhere).
public struct DoctorOptions: Sendable {
    public var configPath: String
    public var systemRoot = ""
    /// The user the service runs as (`User=` in the unit).
    public var serviceUser = "tagoedge"
    public var unitName = "tagoedge.service"
    /// Read every sensor once (a few hundred milliseconds per chip).
    public var readSensors = true
    public var clockSynchronised: @Sendable () -> Bool = { linuxClockIsSynchronised() }

    public init(configPath: String) {
        self.configPath = configPath
    }
}

/// Checks a gateway from its configuration to the cloud and says, for each problem, how to fix
/// it. Never changes anything, never prints a token.
public struct Doctor {
    public let options: DoctorOptions

    public init(options: DoctorOptions) {
        self.options = options
    }

    public func run() -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let config: AgentConfig
        do {
            config = try AgentConfig.load(path: options.configPath)
            let simulated = config.sensors.filter { $0.simulate != nil }.count
            let summary = "valid: \(config.sensors.count) sensor(s)\(simulated > 0 ? " (\(simulated) simulated)" : ""), uplink \(config.uplink.transport.rawValue)"
            if config.warnings.isEmpty {
                checks.append(DoctorCheck("config", options.configPath, .ok, summary))
            } else {
                checks.append(DoctorCheck("config", options.configPath, .warning, summary + "; " + config.warnings.map(\.description).joined(separator: "; "),
                                          fix: "see the warnings; `tagoedge check-config \(options.configPath)` lists them"))
            }
        } catch {
            checks.append(DoctorCheck("config", options.configPath, .failed, error.description,
                                      fix: "correct the lines named above; `tagoedge check-config \(options.configPath)` lists every problem"))
            checks.append(clockCheck(mode: .auto))
            checks.append(serviceCheck(bench: false))
            return checks
        }
        let token = tokenCheck(config, &checks)
        cloudChecks(config, token: token, &checks)
        checks += deviceChecks(config)
        if options.readSensors { checks += sensorChecks(config) }
        checks.append(clockCheck(mode: config.agent.clock))
        checks.append(spoolCheck(config))
        checks.append(budgetCheck(config))
        checks.append(serviceCheck(bench: !config.sensors.isEmpty && config.sensors.allSatisfy { $0.simulate != nil }))
        return checks
    }

    /// What `tagoedge budget` says, in one line: records a day expected and requests a minute
    /// against the plan; and, when the agent runs, what it actually sends a day at its pace.
    func budgetCheck(_ config: AgentConfig) -> DoctorCheck {
        let b = estimateBudget(config, simulatedMilliseconds: 3_600_000)
        let perMinute = b.requestsPerMinute(recordsPerDay: b.sentPerDay)
        func n(_ v: Double) -> String { JSONValue.format((v * 10).rounded() / 10) }
        var detail = "\(n(b.sentPerDay.rounded())) records a day expected (\(n(b.readPerDay.rounded())) read), \(b.route.rawValue) at most \(n(perMinute)) a minute"
        let limit = b.plan?[b.route]
        if let limit, let plan = b.plan { detail += " of the \(plan.name) plan's \(limit)" }
        for path in statusFileCandidates(spool: config.spool.path) {
            guard let text = try? readTextFile(path), let status = try? JSONValue.parse(text),
                  let up = status["uptime_seconds"]?.numberValue, up >= 60, let spooled = status["spooled"]?.numberValue else { continue }
            detail += "; the running agent sends \(n((spooled * 86_400 / up).rounded())) records a day at its pace"
            break
        }
        if let limit, perMinute > Double(limit) {
            return DoctorCheck("budget", "[device] plan", .warning, detail + ": over the plan's limit, readings will wait in the spool",
                               fix: "raise [agent] upload_interval or [uplink] batch_size, or send less with [sensor.report] (tagoedge budget --config FILE)")
        }
        return DoctorCheck("budget", "[device] plan", .ok, detail)
    }

    // MARK: token and cloud

    private func tokenCheck(_ config: AgentConfig, _ checks: inout [DoctorCheck]) -> String? {
        guard let source = config.device.token else {
            if config.uplink.transport == .tagotip {
                checks.append(DoctorCheck("token", "[device] token", .skipped, "no device token: TagoTiP logs in with [tagotip] token; no configuration_params"))
            } else if config.uplink.transport == .mqtt {
                checks.append(DoctorCheck("token", "[device] token", .skipped, "no device token: MQTT without a password, and no configuration_params"))
            } else {
                checks.append(DoctorCheck("token", "[device] token", .failed, "no device token in \(options.configPath)",
                                          fix: "add `token = \"file:/etc/tagoedge/token\"` to [device] and put the device token in that file (mode 0600, owner \(options.serviceUser))"))
            }
            return nil
        }
        do {
            var rooted = source
            if case .file(let path) = source { rooted = .file(options.systemRoot + path) }
            let (token, warning) = try rooted.resolve()
            if case .file(let path) = source, let problem = access(path, write: false) {
                checks.append(DoctorCheck("token", path, .failed, "the service user cannot read the token file: \(problem)",
                                          fix: "sudo chown \(options.serviceUser):\(options.serviceUser) \(path) && sudo chmod 600 \(path)"))
            } else if let warning {
                checks.append(DoctorCheck("token", source.description, .warning, warning, fix: warning.components(after: "run: ")))
            }
            return token
        } catch {
            let fix: String
            switch source {
            case .file(let path): fix = "write the device token to \(path) (mode 0600, owner \(options.serviceUser)), or provision the gateway: tagoedge provision"
            case .environment(let name): fix = "set \(name) for the service (EnvironmentFile=/etc/tagoedge/env in the unit holds `\(name)=…`)"
            case .literal: fix = "set [device] token"
            }
            checks.append(DoctorCheck("token", source.description, .failed, error.description, fix: fix))
            return nil
        }
    }

    private func cloudChecks(_ config: AgentConfig, token: String?, _ checks: inout [DoctorCheck]) {
        let api = config.device.api
        if let token {
            if config.uplink.insecure {
                checks.append(DoctorCheck("api", api, .warning, "TLS certificate verification is off ([uplink] insecure = true)",
                                          fix: "remove `insecure = true`; for a private CA set [uplink] ca_file"))
            }
            do {
                let info = try config.tagoDevice(token: token).info()
                let name = info["name"]?.stringValue.map { " (device '\($0)')" } ?? ""
                checks.append(DoctorCheck("api", api, .ok, "reachable\(api.hasPrefix("https:") && !config.uplink.insecure ? ", TLS verified" : "")"))
                let hasTokenCheck = checks.contains { $0.check == "token" }
                if !hasTokenCheck { checks.append(DoctorCheck("token", config.device.token?.description ?? "", .ok, "accepted by TagoIO (GET /info)\(name)")) }
            } catch {
                switch error.kind {
                case .unauthorized, .forbidden:
                    checks.append(DoctorCheck("api", api, .ok, "reachable"))
                    checks.append(DoctorCheck("token", config.device.token?.description ?? "", .failed,
                                              "TagoIO refused the device token (\(error.status.map(String.init) ?? "401")): revoked, mistyped, or from another region than \(api)",
                                              fix: "make a new token (`tagoedge provision rotate-token SERIAL`, or the device's Token tab in TagoIO) and write it where [device] token points"))
                case .transport(let kind):
                    checks.append(DoctorCheck("api", api, .failed, "cannot reach the API: \(error.message)", fix: transportFix(kind, host: api)))
                    checks.append(DoctorCheck("token", config.device.token?.description ?? "", .skipped, "not asked: the API is unreachable"))
                default:
                    checks.append(DoctorCheck("api", api, .failed, "GET /info failed: \(error)",
                                              fix: "check [device] api (\(api)): TagoIO's is https://api.tago.io (EU: https://api.eu-w1.tago.io)"))
                }
            }
        }
        if config.uplink.transport == .mqtt {
            let m = config.mqtt.connection
            let target = "\(m.host):\(m.port)"
            if m.tls?.insecure == true {
                checks.append(DoctorCheck("mqtt", target, .warning, "TLS certificate verification is off ([mqtt] insecure = true)",
                                          fix: "remove `insecure = true`; for a private CA set [mqtt] ca_file"))
            }
            do {
                var o = config.mqttOptions(token: token ?? "")
                o.clientID = o.clientID + "-doctor"
                o.connectTimeoutMilliseconds = 5_000
                let c = try MQTTConnection(options: o)
                try c.connect()
                c.disconnect()
                checks.append(DoctorCheck("mqtt", target, .ok, "the broker accepted the connection\(m.tls.map { $0.insecure ? "" : ", TLS verified" } ?? "")"))
            } catch {
                let fix: String
                switch error.kind {
                case .refused: fix = "the broker refused the login: check [mqtt] username, and the token (TagoIO's convention: the device token is the password)"
                case .tls: fix = "the broker's certificate did not verify: check the system clock, [mqtt] ca_file, and that the host name matches the certificate"
                default: fix = "check [mqtt] host and port, DNS, and that the firewall lets TCP \(m.port) out; readings wait in the spool meanwhile"
                }
                checks.append(DoctorCheck("mqtt", target, .failed, error.description, fix: fix))
            }
        }
    }

    private func transportFix(_ kind: TransportError.Kind, host: String) -> String {
        switch kind {
        case .dns: return "the name does not resolve: check DNS (/etc/resolv.conf, `resolvectl status`) and [device] api"
        case .tls: return "TLS verification failed: check the system clock (certificates are not valid before it is set), install ca-certificates, or set [uplink] ca_file for a private CA"
        case .refused: return "nothing listens there: check [device] api (\(host))"
        case .timeout: return "no answer in time: check the network route and the firewall (TCP 443 out); readings wait in the spool meanwhile"
        default: return "check the network and [device] api; readings wait in the spool meanwhile"
        }
    }

    // MARK: hardware

    private func deviceChecks(_ config: AgentConfig) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let real = config.sensors.filter { $0.enabled && $0.simulate == nil }
        var seen = Set<String>()
        for s in real {
            switch s.options {
            case .bme280, .sht3x, .bh1750, .ads1115:
                let path = "/dev/i2c-\(s.bus)"
                guard seen.insert(path).inserted else { continue }
                checks.append(characterDevice(path, kind: "I2C adapter", missingFix: """
                    enable I2C: add `dtparam=i2c_arm=on` to /boot/firmware/config.txt (/boot/config.txt before Raspberry Pi OS Bookworm) \
                    and reboot, or run `sudo raspi-config nonint do_i2c 0`; on other boards load i2c-dev (`echo i2c-dev | sudo tee /etc/modules-load.d/i2c-dev.conf`)
                    """, group: "i2c", open: { try LinuxI2CBus(number: s.bus, path: options.systemRoot + path) }))
            case .gpio(let g) where !g.chip.hasPrefix("/") && !(g.chip.hasPrefix("gpiochip") && Int(g.chip.dropFirst(8)) != nil):
                // A label (`pinctrl-rp1`) or `header`: the form the Pi 5 needs, resolved as the agent does.
                guard seen.insert("label " + g.chip).inserted else { continue }
                do {
                    let chip = try LinuxGPIOChip(g.chip)
                    checks.append(DoctorCheck("gpio", g.chip, .ok, "is \(chip.name) (\(chip.label), \(chip.lineCount) lines)"))
                } catch {
                    checks.append(DoctorCheck("gpio", g.chip, .failed, "\(error)", fix: """
                        `ls /dev/gpiochip*` lists the chips; chip = "header" finds a Raspberry Pi's header by its label \
                        (\(LinuxGPIOChip.headerLabels.joined(separator: ", "))); any chip may be named by its label or as gpiochipN
                        """))
                }
            case .gpio(let g):
                let path = g.chip.hasPrefix("/") ? g.chip : "/dev/" + g.chip
                guard seen.insert(path).inserted else { continue }
                checks.append(characterDevice(path, kind: "GPIO chip", missingFix: """
                    check [sensor] chip: `ls /dev/gpiochip*` lists the chips (on a Pi 5 the header is pinctrl-rp1: gpiochip4 on older kernels, gpiochip0 on newer; \
                    a chip may be named by its label); hardware/boards/raspberry-pi.toml lists them per model
                    """, group: "gpio", open: { try LinuxGPIOChip(options.systemRoot + path) }))
            case .ds18b20(let id):
                let dir = "/sys/bus/w1/devices"
                guard seen.insert(dir + (id ?? "")).inserted else { continue }
                let present = ((try? LinuxSysfs(root: options.systemRoot).list(dir)) ?? []).filter { $0.hasPrefix("28-") }
                if !exists(dir) {
                    checks.append(DoctorCheck("bus", dir, .failed, "no 1-Wire bus",
                                              fix: "add `dtoverlay=w1-gpio` (data on GPIO4, pin 7; `dtoverlay=w1-gpio,gpiopin=N` for another) to /boot/firmware/config.txt and reboot"))
                } else if let id, !present.contains(id) {
                    checks.append(DoctorCheck("bus", dir + "/" + id, .failed, "no 1-Wire device \(id); present: \(present.isEmpty ? "none" : present.joined(separator: ", "))",
                                              fix: "check the probe's wiring (a 4.7 kΩ pull-up from data to 3V3) and the id in [sensor] id"))
                } else if present.isEmpty {
                    checks.append(DoctorCheck("bus", dir, .failed, "the 1-Wire bus is up but no DS18B20 (28-*) answers",
                                              fix: "check the probe's wiring: data to GPIO4 with a 4.7 kΩ pull-up to 3V3, ground, power"))
                } else {
                    checks.append(DoctorCheck("bus", dir, .ok, "1-Wire: \(present.joined(separator: ", "))"))
                }
            case .board(let zone):
                let path = "/sys/class/thermal/thermal_zone\(zone)/temp"
                guard seen.insert(path).inserted else { continue }
                if let problem = access(path, write: false) {
                    checks.append(DoctorCheck("bus", path, .failed, problem, fix: "this board has no thermal zone \(zone): `ls /sys/class/thermal` lists them; set [sensor] zone"))
                } else {
                    checks.append(DoctorCheck("bus", path, .ok, "readable"))
                }
            }
        }
        return checks
    }

    private func characterDevice(_ path: String, kind: String, missingFix: String, group: String, open: () throws -> AnyObject) -> DoctorCheck {
        guard exists(path) else { return DoctorCheck("bus", path, .failed, "\(path) does not exist (\(kind))", fix: missingFix) }
        do {
            _ = try open()
        } catch let error as HardwareError {
            let fix: String
            switch error.errno {
            case EACCES, EPERM: fix = "the device's permissions keep this user out: sudo usermod -aG \(group) \(options.serviceUser), and install the udev rule (hardware/udev/60-tagoedge.rules)"
            case ENOTTY: fix = "\(path) is not a \(kind): on a Raspberry Pi enable it in config.txt and reboot"
            default: fix = "see the error; `dmesg | tail` may say more"
            }
            return DoctorCheck("bus", path, .failed, error.description, fix: fix)
        } catch {
            return DoctorCheck("bus", path, .failed, "\(error)", fix: "see the error")
        }
        if let problem = access(path, write: true) {
            return DoctorCheck("bus", path, .failed, "opens for this user, but the service user cannot: \(problem)",
                               fix: "sudo usermod -aG \(group) \(options.serviceUser), and install the udev rule (hardware/udev/60-tagoedge.rules)")
        }
        return DoctorCheck("bus", path, .ok, "\(kind), accessible to \(options.serviceUser)")
    }

    private func sensorChecks(_ config: AgentConfig) -> [DoctorCheck] {
        var enabled = config
        enabled.sensors = config.sensors.filter(\.enabled)
        let environment = HardwareEnvironment(clock: SystemClock(), sysfsRoot: options.systemRoot, deviceRoot: options.systemRoot)
        return environment.makeSensors(enabled).map { instance in
            let s = instance.config
            let outcome = sample(instance, at: SystemClock().now())
            let place: String
            switch s.options {
            case .bme280, .sht3x, .bh1750, .ads1115: place = "\(s.driver.rawValue) at \(hexAddress(s.address ?? 0)) on /dev/i2c-\(s.bus)"
            default: place = s.driver.rawValue
            }
            if let error = outcome.error {
                let fix: String
                if error.contains("No such device or address") || error.contains("ENXIO") || error.contains("EREMOTEIO") || error.contains("Remote I/O") {
                    fix = "nothing answers at \(hexAddress(s.address ?? 0)): check the wiring (hardware/wiring/README.md) and the address; `tagoedge scan --bus \(s.bus)` lists what answers"
                } else if error.contains("chip id") {
                    fix = "another chip answers at this address: `tagoedge scan --bus \(s.bus)` names what is there; set [sensor] driver or address to match"
                } else {
                    fix = "see the error; `tagoedge read --config \(options.configPath) --sensor \(s.name)` retries it"
                }
                return DoctorCheck("sensor", s.name, .failed, "\(place): \(error)", fix: fix)
            }
            let values = outcome.readings.prefix(4).map { "\($0.variable) = \($0.value.display)\($0.unit.map { " " + $0 } ?? "")" }.joined(separator: ", ")
            return DoctorCheck("sensor", s.name, .ok, "\(place)\(s.simulate != nil ? " (simulated)" : ""): \(values)")
        }
    }

    // MARK: system

    private func clockCheck(mode: ClockGuard.Mode) -> DoctorCheck {
        let now = SystemClock().now()
        let earliest = ClockGuard().earliest
        if now < earliest {
            return DoctorCheck("clock", "system clock", .failed, "the clock reads \(now.iso8601), before this version was built: readings are held until it is set",
                               fix: "enable time synchronisation: sudo timedatectl set-ntp true (and let UDP 123 out); a Pi has no battery-backed clock")
        }
        if options.clockSynchronised() { return DoctorCheck("clock", "system clock", .ok, "synchronised (\(now.iso8601))") }
        if mode == .trust { return DoctorCheck("clock", "system clock", .ok, "trusted by [agent] clock = \"trust\" (\(now.iso8601))") }
        return DoctorCheck("clock", "system clock", .warning,
                           "the kernel says the clock is not synchronised (\(now.iso8601))\(mode == .kernel ? "; with [agent] clock = \"kernel\" readings are held until it is" : "")",
                           fix: "enable time synchronisation: sudo timedatectl set-ntp true (systemd-timesyncd), and let UDP 123 out")
    }

    private func spoolCheck(_ config: AgentConfig) -> DoctorCheck {
        let path = config.spool.path
        let dir = directoryOf(path)
        guard exists(dir) else {
            return DoctorCheck("spool", dir, .failed, "the spool's directory does not exist",
                               fix: "the service's StateDirectory= makes /var/lib/tagoedge; elsewhere: sudo install -d -o \(options.serviceUser) -m 0750 \(dir)")
        }
        // Write, sync and remove a file, as the agent will.
        let probe = options.systemRoot + dir + "/.tagoedge-doctor-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        if fd < 0 {
            return DoctorCheck("spool", dir, .failed, "cannot create a file there: \(errnoDescription(errno))",
                               fix: "sudo chown \(options.serviceUser) \(dir); it must be writable by the service")
        }
        let wrote = write(fd, "ok", 2) == 2 && fdatasync(fd) == 0
        close(fd)
        unlink(probe)
        guard wrote else { return DoctorCheck("spool", dir, .failed, "cannot write and sync a file there (read-only or failing storage?)", fix: "check `dmesg` for SD card errors") }
        if let problem = access(dir, write: true) {
            return DoctorCheck("spool", dir, .failed, "the service user cannot write there: \(problem)", fix: "sudo chown \(options.serviceUser) \(dir)")
        }
        var st = stat()
        let existing: Int64 = stat(options.systemRoot + path, &st) == 0 ? Int64(st.st_size) : 0
        var fs = statvfs()
        guard statvfs(options.systemRoot + dir, &fs) == 0 else { return DoctorCheck("spool", dir, .warning, "cannot tell the free space: \(errnoDescription(errno))") }
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        let needed = max(0, config.spool.options.capacityBytes - existing)
        let margin = max(Int64(16 << 20), Int64(fs.f_blocks) * Int64(fs.f_frsize) / 20)  // 5 % of the file system, 16 MiB at least
        var detail = "writable; capacity \(formatByteSize(config.spool.options.capacityBytes)), \(formatByteSize(free)) free"
        if existing > 0, let s = try? FileSpool(path: options.systemRoot + path, options: .init(readOnly: true)).stats {
            detail += "; \(s.recordCount) reading(s) waiting, \(s.dropped) dropped, \(s.damaged) damaged over its life"
        }
        if free < needed {
            return DoctorCheck("spool", dir, .failed, detail + ": the spool needs \(formatByteSize(needed)) more",
                               fix: "free space there, or lower [spool] capacity (64MiB holds about 600,000 readings)")
        }
        if free - needed < margin {
            return DoctorCheck("spool", dir, .warning, detail + ": less than \(formatByteSize(margin)) would be left once the spool is full",
                               fix: "free space there, or lower [spool] capacity")
        }
        return DoctorCheck("spool", dir, .ok, detail)
    }

    private func serviceCheck(bench: Bool) -> DoctorCheck {
        let unit = options.unitName
        let places = ["/etc/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/"].map { $0 + unit }
        guard let file = places.first(where: exists) else {
            return DoctorCheck("service", unit, bench ? .warning : .failed, "not installed",
                               fix: "install the package (scripts/package-deb), or: sudo install -m 0644 config/tagoedge.service /etc/systemd/system/ && sudo systemctl daemon-reload")
        }
        let wants = "/etc/systemd/system/multi-user.target.wants/" + unit
        guard exists(wants) else {
            return DoctorCheck("service", file, bench ? .warning : .failed, "installed, not enabled: it will not start at boot",
                               fix: "sudo systemctl enable --now tagoedge")
        }
        if let text = try? readTextFile(options.systemRoot + file, limit: 1 << 16),
           let exec = text.split(separator: "\n").first(where: { $0.hasPrefix("ExecStart=") }),
           !exec.contains(options.configPath) {
            return DoctorCheck("service", file, .warning, "enabled, but it runs with another configuration: \(exec.dropFirst(10))",
                               fix: "check that file too: tagoedge doctor --config <the file in ExecStart>")
        }
        return DoctorCheck("service", file, .ok, "installed and enabled")
    }

    // MARK: helpers

    private func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(options.systemRoot + path, &st) == 0
    }

    private func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether the service user may read (or read and write) `path`, by its owner, group and mode;
    /// nil if it may, or why not. Unknown user (not installed yet): nil, nothing to say.
    func access(_ path: String, write: Bool) -> String? {
        var st = stat()
        guard stat(options.systemRoot + path, &st) == 0 else { return "\(path): \(errnoDescription(errno))" }
        guard let user = lookupUser(options.serviceUser) else { return nil }
        if user.uid == 0 { return nil }
        let need: mode_t = write ? 0o6 : 0o4
        let mode = st.st_mode
        if st.st_uid == user.uid { return (mode >> 6) & need == need ? nil : "owned by \(options.serviceUser) but mode \(octal(mode & 0o777))" }
        if user.groups.contains(st.st_gid) { return (mode >> 3) & need == need ? nil : "group \(groupName(st.st_gid)) lacks \(write ? "read-write" : "read") access (mode \(octal(mode & 0o777)))" }
        if mode & need == need { return nil }
        return "\(options.serviceUser) is not its owner (\(userName(st.st_uid))) nor in its group (\(groupName(st.st_gid))), mode \(octal(mode & 0o777))"
    }

    private func lookupUser(_ name: String) -> (uid: uid_t, groups: [gid_t])? {
        guard let pw = getpwnam(name) else { return nil }
        let uid = pw.pointee.pw_uid, gid = pw.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return (uid, Array(groups.prefix(Int(max(count, 0)))))
    }

    private func groupName(_ gid: gid_t) -> String { getgrgid(gid).map { String(cString: $0.pointee.gr_name) } ?? "\(gid)" }
    private func userName(_ uid: uid_t) -> String { getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "\(uid)" }
    private func octal(_ m: mode_t) -> String { "0" + String(m, radix: 8) }
}

extension String {
    /// The text after `marker`, if it occurs.
    fileprivate func components(after marker: String) -> String? {
        guard let r = firstRange(of: marker) else { return nil }
        return String(self[r.upperBound...])
    }
}
