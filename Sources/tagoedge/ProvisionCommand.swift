#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Agent
import ArgumentParser
import EdgeCore
import TagoKit

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create (or bring up to date) one TagoIO device per gateway of a manifest, and write its config bundle.",
        discussion: """
        Idempotent: devices are found by their `serial` tag, so running it again after an interruption \
        finishes the job and creates nothing twice. Requests are spaced within the plan's per-minute \
        limits, and 429s are waited out. Exit status 1 if any gateway failed.
        """
    )

    @Option(help: "The CSV manifest: serial,name[,tags][,params][,template] (tags and params as key=value;key=value).") var manifest: String
    @Option(help: "Where the bundles go: <out>/<serial>/{tagoedge.toml,token,tagoedge.service}.") var out: String
    @Option(name: .customLong("profile-token"), help: "env:NAME, file:/path, or the token.") var profileToken = "env:TAGO_PROFILE_TOKEN"
    @Option(help: "TagoIO API base: a region, a dedicated deployment, or the local emulator.") var api = "https://api.tago.io"
    @Option(help: "Rate limits of this TagoIO plan: free, starter or scale.") var plan = "free"
    @Option(help: "Where a manifest's `template` names are looked up.") var templates = "config"
    @Flag(name: .customLong("dry-run"), help: "Look up, change nothing, say what would be done.") var dryRun = false
    @Flag(help: "JSON lines (the default when standard output is not a terminal).") var json = false

    func run() throws {
        let gateways: [GatewaySpec]
        do {
            gateways = try Manifest.parse(try readTextFile(manifest, limit: 64 << 20), file: manifest)
        } catch let e as ConfigErrors {
            throw e
        } catch {
            throw ValidationError("cannot read the manifest: \(error)")
        }
        guard let limits = AccountRateLimits.plan(plan) else { throw ValidationError("--plan must be free, starter or scale") }
        let token: String
        do {
            token = try TokenSource(profileToken).resolve().token
        } catch {
            throw ValidationError("profile token: \(error.description.replacingPrefix("device.token", with: "--profile-token"))")
        }
        let endpoint = TagoEndpoint(api: api)
        let http = CurlHTTPClient()
        let provisioner = Provisioner(account: TagoAccount(token: token, endpoint: endpoint, http: http), endpoint: endpoint, http: http,
                                      limits: limits, out: out, dryRun: dryRun) { name in
            try readTextFile(name.hasPrefix("/") ? name : templates + "/" + name)
        }
        let lines = json || isatty(1) == 0
        let clock = SystemClock()
        let start = clock.nanoseconds()
        var counts: [ProvisionOutcome.Status: Int] = [:]
        var failures: [ProvisionOutcome] = []
        for (i, g) in gateways.enumerated() {
            let outcome = provisioner.provision(g)
            counts[outcome.status, default: 0] += 1
            if outcome.status == .failed { failures.append(outcome) }
            if lines {
                print(outcome.json.serialized)
            } else {
                let elapsed = Double(clock.nanoseconds() - start) / 1e9
                let rate = Double(i + 1) / max(elapsed, 0.001)
                let eta = Double(gateways.count - i - 1) / rate
                print("[\(i + 1)/\(gateways.count)] \(g.serial) \(outcome.status.rawValue)\(outcome.detail.isEmpty ? "" : ": \(outcome.detail)")  (\(JSONValue.format((rate * 600).rounded() / 10))/min, ETA \(formatDuration(Int64(eta * 1000) / 1000 * 1000)))")
            }
        }
        let summary = ProvisionOutcome.Status.allCasesInOrder.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ")
        if lines {
            print(JSONValue.object([("summary", .object(ProvisionOutcome.Status.allCasesInOrder.map { ($0.rawValue, .number(Double(counts[$0] ?? 0))) }))]).serialized)
        } else {
            print("done: \(summary)")
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
