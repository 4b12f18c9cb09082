import Foundation
import Testing
import Emulator

/// The `tago` 3.x Python library that the project's original documentation describes, unchanged,
/// against the emulator. `.ci/run` makes a virtualenv with it and sets TAGOEDGE_PYTHON.
@Suite struct PythonSDKTests {
    static let python = ProcessInfo.processInfo.environment["TAGOEDGE_PYTHON"]

    @Test(.enabled(if: python != nil, "set TAGOEDGE_PYTHON to a python with `tago==3.1.1` (bash .ci/run does)"))
    func tagoPythonLibraryWorksUnchanged() throws {
        var options = Emulator.Options()
        options.deviceTokens = ["py-device-token"]
        options.profileTokens = ["py-profile-token"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        // What TagoIO would have put in the account's inbox.
        _ = emulator.addAccountNotification(title: "Limit", message: "90 % of the data limit")
        _ = emulator.addAccountNotification(title: "Shared", message: "a dashboard was shared with you", acceptable: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python!)
        process.arguments = [CLI.root + "/Tests/Python/tago_sdk_against_emulator.py"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "TAGOIO_API": "http://127.0.0.1:\(port)", "EMULATOR_DEVICE_TOKEN": "py-device-token", "EMULATOR_PROFILE_TOKEN": "py-profile-token",
        ]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.components(separatedBy: "\nok   ").count >= 20, "\(text)")
        #expect(!text.contains("FAIL"), "\(text)")
    }
}

/// TagoIO's current Python SDK (`tagoio-sdk`, pinned in .ci/run), unchanged, against the emulator:
/// every Device, Resources and Services call it has that the emulator models.
@Suite struct CurrentPythonSDKTests {
    static let python = ProcessInfo.processInfo.environment["TAGOEDGE_PYTHON_CURRENT"]

    @Test(.enabled(if: python != nil, "set TAGOEDGE_PYTHON_CURRENT to a python with `tagoio-sdk` (bash .ci/run does)"))
    func currentSDKWorksUnchanged() throws {
        var options = Emulator.Options()
        options.profileTokens = ["p-current-sdk"]
        let emulator = try Emulator(options: options)
        let port = try emulator.start()
        defer { emulator.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python!)
        process.arguments = [CLI.root + "/Tests/Python/current_sdk_check.py", "http://127.0.0.1:\(port)", "p-current-sdk"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(text.split(separator: "\n").last ?? "")  // the summary line: current SDK: N ok, M failed, K not modelled
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("current SDK: ") && text.contains(" 0 failed"), "\(text)")
    }
}
