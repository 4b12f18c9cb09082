// swift-tools-version:6.0
import PackageDescription

// Module boundaries follow docs/architecture.md: drivers never see Linux, the core never sees C.
let package = Package(
    name: "TagoEdge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tagoedge", targets: ["tagoedge"]),
        // The modules, for the benchmarks' own package (Benchmarks/Package.swift), which brings
        // SQLite with it: building the product needs no libsqlite3.
        .library(name: "TagoEdgeModules", targets: ["EdgeCore", "Spool", "TagoKit", "MQTT", "TagoTiP", "Uplink", "Emulator", "Agent"]),
    ],
    dependencies: [],
    targets: [
        // Thin C shim over i2c-dev and the GPIO character device (uAPI v2): returns 0 or -errno, no policy.
        .target(name: "CLinuxHAL"),
        // Readings, errors, clocks, and the protocols every other module implements or consumes.
        .target(name: "EdgeCore"),
        // Linux implementations over CLinuxHAL, and the bus-level simulation used on the bench.
        .target(name: "Hardware", dependencies: ["EdgeCore", "CLinuxHAL"]),
        // One folder per chip: registers, driver, conversion math. Sees only EdgeCore.
        .target(name: "Sensors", dependencies: ["EdgeCore"]),
        // libcurl behind one non-variadic call (curl_easy_setopt cannot be called from Swift).
        .target(name: "CCurlShim", linkerSettings: [.linkedLibrary("curl")]),
        // Typed TagoIO client: Device and Account APIs, envelopes, errors, data validation.
        .target(name: "TagoKit", dependencies: ["EdgeCore", "CCurlShim"]),
        // libmosquitto (MQTT), from the system (pkg-config libmosquitto).
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        // One libmosquitto client, used as its documentation requires.
        .target(name: "MQTT", dependencies: ["CMosquitto", "EdgeCore"]),
        // TagoTiP held to its spec: builder and strict parser for frames, bodies, acks; no Foundation.
        .target(name: "TagoTiP"),
        // Uplinks, HTTP, MQTT and TagoTiP: drain a spool, retry with backoff.
        .target(name: "Uplink", dependencies: ["EdgeCore", "TagoKit", "MQTT", "TagoTiP"]),
        // The local TagoIO emulator: a real HTTP server with TagoIO's behaviour and faults on demand.
        .target(name: "Emulator", dependencies: ["EdgeCore", "TagoKit", "MQTT", "TagoTiP"]),
        // CRC-32C with the CPU's instruction where there is one (the spool checks every frame it reads).
        .target(name: "CChecksum"),
        // The persistent ring buffer of readings waiting for the cloud.
        .target(name: "Spool", dependencies: ["EdgeCore", "CChecksum"]),
        // Configuration file, sensor assembly, and (later) the scheduler and lifecycle.
        .target(name: "Agent", dependencies: ["EdgeCore", "Hardware", "Sensors", "Spool", "TagoKit", "Uplink", "MQTT", "TagoTiP"]),
        .executableTarget(
            name: "tagoedge",
            dependencies: [
                "Agent", "EdgeCore", "Hardware", "Sensors", "Spool", "Emulator", "TagoKit", "Uplink",
            ]
        ),
        // What the test suites share: temporary folders, waiting for a condition, seeded randomness.
        .target(name: "TestSupport", dependencies: ["EdgeCore"], path: "Tests/TestSupport"),
        .testTarget(name: "EdgeCoreTests", dependencies: ["EdgeCore", "TestSupport"]),
        .testTarget(name: "TagoTiPTests", dependencies: ["TagoTiP", "TestSupport"]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware", "EdgeCore"]),
        .testTarget(name: "SensorsTests", dependencies: ["Sensors", "Hardware", "EdgeCore"]),
        .testTarget(name: "TagoTests", dependencies: ["TagoKit", "Emulator", "Uplink", "Spool", "EdgeCore", "TestSupport", "TagoTiP"]),
        // Against a real mosquitto broker that each test starts on a free loopback port.
        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "Uplink", "Spool", "EdgeCore", "Emulator", "TagoKit", "Agent", "tagoedge", "TagoTiP", "TestSupport"]),
        .testTarget(name: "SpoolTests", dependencies: ["Spool", "EdgeCore", "CChecksum", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Hardware", "Sensors", "EdgeCore", "Spool", "Uplink", "TagoKit", "TestSupport", "Emulator"]),
        // Runs the built `tagoedge` binary as a user or script would.
        .testTarget(name: "CLITests", dependencies: ["EdgeCore", "Spool", "Emulator", "TagoKit", "tagoedge", "TestSupport"]),
    ]
)
