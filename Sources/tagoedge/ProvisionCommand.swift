#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Agent
import EdgeCore
import TagoKit

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fleet provisioning over TagoIO's Account API.",
        subcommands: [ProvisionFleet.self, RotateToken.self, Deprovision.self],
        defaultSubcommand: ProvisionFleet.self
    )
}

/// Options every provisioning command shares.
struct AccountOptions: ParsableArguments {
    @Option(name: .customLong("profile-token"), help: "env:NAME, file:/path, or the token.") var profileToken = "env:TAGO_PROFILE_TOKEN"
    @Option(help: "TagoIO API base: a region, a dedicated deployment, or the local emulator (default: $TAGOIO_API, as TagoIO's SDKs read it, else https://api.tago.io).")
    var api: String?

    /// `--api`, else `$TAGOIO_API` (the variable TagoIO's current SDKs take the API from), else TagoIO's US region.
    var apiBase: String {
        if let api { return api }
        if let env = getenv("TAGOIO_API").map({ String(cString: $0) }), !env.isEmpty { return env }
        return "https://api.tago.io"
    }

    func account() throws -> (TagoAccount, TagoEndpoint, CurlHTTPClient) {
        let token: String
        do {
            token = try TokenSource(profileToken).resolve().token
        } catch {
            throw ValidationError("profile token: \(error.description.replacingPrefix("device.token", with: "--profile-token"))")
        }
        let endpoint = TagoEndpoint(api: apiBase)
        let http = CurlHTTPClient()
        return (TagoAccount(token: token, endpoint: endpoint, http: http), endpoint, http)
    }

    /// The device carrying `serial` in its `serial` tag.
    func device(_ account: TagoAccount, serial: String) throws -> String {
        guard let id = try account.devices(tags: [("serial", serial)]).first?["id"]?.stringValue else {
            throw ValidationError("no device has the tag serial=\(serial)")
        }
        return id
    }
}

struct RotateToken: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-token", abstract: "Give a gateway a new token, rewrite its bundle, revoke the old one.")

    @Argument(help: "The gateway's serial.") var serial: String
    @Option(help: "The bundles folder (<out>/<serial>/token).") var out: String
    @OptionGroup var options: AccountOptions

    func run() throws {
        let (account, _, _) = try options.account()
        let id = try options.device(account, serial: serial)
        let path = out + "/" + serial + "/token"
        let old = (try? readTextFile(path))?.split(separator: "\n").first.map(String.init)
        // The new token keeps the old one's permission and expiry span, when the device lists it.
        let previous = old.flatMap { o in (try? account.tokens(deviceID: id))?.first { $0["token"]?.stringValue == o } }
        let fresh = try account.createToken(deviceID: id, name: "tagoedge-\(serial)",
                                            permission: previous?["permission"]?.stringValue ?? "full",
                                            expire: previous?["expire_time"]?.stringValue ?? "never")
        guard writeFileAtomically(path, Array((fresh + "\n").utf8), mode: 0o600) else { throw ValidationError("cannot write \(path)") }
        if let old, !old.isEmpty, old != fresh { try account.deleteToken(old) }
        print("\(serial): rotated; \(path) holds the new credential\(old == nil ? "" : ", the old one is revoked")")
    }
}

struct Deprovision: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a gateway's device and its tokens from TagoIO.")

    @Argument(help: "The gateway's serial.") var serial: String
    @Flag(help: "Do not ask.") var yes = false
    @OptionGroup var options: AccountOptions

    func run() throws {
        let (account, _, _) = try options.account()
        let id = try options.device(account, serial: serial)
        if !yes {
            guard isatty(0) != 0 else { throw ValidationError("deleting \(serial) needs --yes when not asked on a terminal") }
            print("delete device \(id) (serial \(serial)) with its data and credentials? [y/N] ", terminator: "")
            guard readLine()?.lowercased().hasPrefix("y") == true else { throw ExitCode(Exit.failure) }
        }
        for t in try account.tokens(deviceID: id) {
            if let token = t["token"]?.stringValue { try account.deleteToken(token) }
        }
        try account.deleteDevice(id: id)
        print("\(serial): device \(id) deleted, with its credentials")
    }
}

struct ProvisionFleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Create (or bring up to date) one TagoIO device per gateway of a manifest, and write its config bundle.",
        discussion: """
        Idempotent: devices are found by their `serial` tag, so running it again after an interruption \
        finishes the job and creates nothing twice. Requests are spaced within the plan's per-minute \
        limits, and 429s are waited out. Exit status 1 if any gateway failed.
        """
    )

    @Option(help: "The manifest: CSV (serial,name[,tags][,params][,template]…) or TOML ([defaults], [[gateway]]); docs/provisioning.md.") var manifest: String
    @Option(help: "Where the bundles go: <out>/<serial>/{tagoedge.toml,token,tagoedge.service}.") var out: String
    @OptionGroup var options: AccountOptions
    @Option(help: "Rate limits of this TagoIO plan: free, starter or scale.") var plan = "free"
    @Option(help: "Where a manifest's `template` names are looked up.") var templates = "config"
    @Flag(name: .customLong("dry-run"), help: "Look up, change nothing, say what would be done.") var dryRun = false
    @Flag(help: "JSON lines (the default when standard output is not a terminal).") var json = false
    @Option(help: ArgumentHelp("The window the plan's per-minute limits count over (tests run a plan's pace faster).", visibility: .hidden))
    var rateWindow = "60s"

    func run() throws {
        let gateways: [GatewaySpec]
        let text: String
        do {
            text = try readTextFile(manifest, limit: 64 << 20)
        } catch {
            throw ValidationError("cannot read the manifest: \(error)")
        }
        // The whole manifest is checked, templates included, before any API call.
        gateways = try Manifest.parse(text, file: manifest) { name in
            var st = stat()
            return stat(name.hasPrefix("/") ? name : templates + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }
        guard let limits = AccountRateLimits.plan(plan) else { throw ValidationError("--plan must be free, starter or scale") }
        guard let window = parseDuration(rateWindow), window > 0 else { throw ValidationError("--rate-window: '\(rateWindow)' is not a duration") }
        let (account, endpoint, http) = try options.account()
        let provisioner = Provisioner(account: account, endpoint: endpoint, http: http, limits: limits, out: out, dryRun: dryRun,
                                      rateWindowMilliseconds: window) { name in
            try readTextFile(name.hasPrefix("/") ? name : templates + "/" + name)
        }
        let lines = json || isatty(1) == 0
        let clock = SystemClock()
        let start = clock.nanoseconds()
        func elapsed() -> Double { Double(clock.nanoseconds() - start) / 1e9 }
        func bar(_ done: Int) {
            guard !lines else { return }
            print("\r\u{1B}[K" + provisioningProgressBar(done: done, total: gateways.count, elapsedSeconds: elapsed()), terminator: "")
            fflush(stdout)
        }
        bar(0)
        do {
            try provisioner.prefetch()
        } catch where error.kind == .unauthorized || error.kind == .forbidden {
            if !lines { print("") }
            throw ValidationError("the profile token was refused by \(endpoint.api): \(error)")
        } catch {
            // Look each gateway up on its own instead; those lookups fail (and say so) one by one.
            if lines { print(JSONValue.object([("warning", .string("cannot list the account's devices (\(error)); looking gateways up one by one"))]).serialized) } else { print("\r\u{1B}[Kcannot list the account's devices (\(error)); looking gateways up one by one") }
        }
        var counts: [ProvisionOutcome.Status: Int] = [:]
        var failures: [ProvisionOutcome] = []
        for (i, g) in gateways.enumerated() {
            let outcome = provisioner.provision(g)
            counts[outcome.status, default: 0] += 1
            if outcome.status == .failed { failures.append(outcome) }
            if lines {
                print(outcome.json.serialized)
            } else {
                // Above the bar: what changed or failed; created and present only count.
                if outcome.status == .failed || outcome.status == .updated || !outcome.detail.isEmpty {
                    print("\r\u{1B}[K\(g.serial) \(outcome.status.rawValue)\(outcome.detail.isEmpty ? "" : ": \(outcome.detail)")")
                }
                bar(i + 1)
            }
        }
        let summary = ProvisionOutcome.Status.allCasesInOrder.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ")
        if lines {
            var fields: [(String, JSONValue)] = ProvisionOutcome.Status.allCasesInOrder.map { ($0.rawValue, .number(Double(counts[$0] ?? 0))) }
            fields.append(("rate_limited", .number(Double(provisioner.throttled))))
            fields.append(("seconds", .number((elapsed() * 10).rounded() / 10)))
            print(JSONValue.object([("summary", .object(fields))]).serialized)
        } else {
            print("")
            print("done: \(summary)\(provisioner.throttled > 0 ? " (\(provisioner.throttled) rate-limit wait(s))" : "")")
            for f in failures { print("failed \(f.serial): \(f.detail)") }
        }
        if !failures.isEmpty { throw ExitCode(Exit.failure) }
    }
}

extension ProvisionOutcome.Status {
    static let allCasesInOrder: [ProvisionOutcome.Status] = [.created, .present, .updated, .planned, .failed]
}

extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
