// swift-tools-version:6.0
import PackageDescription

// The benchmarks, in a package of their own: each prints ratios against a baseline run side by
// side (docs/benchmarks.md). SQLite, the spool's baseline, comes with them and not with the agent.
//
//   swift run --package-path Benchmarks -c release tagoedge-bench spool
let package = Package(
    name: "TagoEdgeBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "TagoEdge", path: "..")],
    targets: [
        // SQLite, the spool benchmark's baseline (system libsqlite3).
        .systemLibrary(name: "CSQLite", path: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(
            name: "tagoedge-bench",
            dependencies: ["CSQLite", .product(name: "TagoEdgeModules", package: "TagoEdge")],
            path: "Sources/tagoedge-bench"
        ),
    ]
)
