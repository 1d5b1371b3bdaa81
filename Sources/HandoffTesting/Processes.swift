import Foundation

/// Where the package's built executables are, for tests that run them as real processes.
package enum BuiltProducts {
    /// The package root (three levels above this file).
    package static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The path of a built executable product, next to the running test bundle or in .build/debug.
    package static func executable(_ name: String) throws -> String {
        var candidates: [URL] = []
        if let runner = CommandLine.arguments.first {
            var dir = URL(fileURLWithPath: runner).deletingLastPathComponent()
            // The runner may be inside a bundle directory (…/handoffPackageTests.xctest/…).
            for _ in 0..<3 {
                candidates.append(dir.appendingPathComponent(name))
                dir.deleteLastPathComponent()
            }
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
        for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url.path }
        throw ProcessFailure(description: "the \(name) executable was not found (looked in \(candidates.map(\.path))); run `swift build` first")
    }
}

package struct ProcessFailure: Error, CustomStringConvertible {
    package var description: String
}

/// The result of a finished process.
package struct ProcessOutput: Sendable {
    package var status: Int32
    package var stdout: String
    package var stderr: String
}

/// Runs a process to completion (killing it after `timeout`), collecting its output.
/// Inherited variables for which `dropInherited` returns true are not passed on.
package func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
    timeout: TimeInterval = 60, dropInherited: (String) -> Bool = { _ in false }
) async throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { !dropInherited($0.key) }
    for (k, v) in environment { env[k] = v }
    process.environment = env
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drain both pipes while the process runs, so a chatty process never blocks on a full pipe.
    async let stdout = readToEnd(out.fileHandleForReading)
    async let stderr = readToEnd(err.fileHandleForReading)
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning {
        if Date() > deadline {
            kill(process.processIdentifier, SIGKILL)
            throw ProcessFailure(description: "\(executable) \(arguments.joined(separator: " ")) did not finish within \(Int(timeout))s")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return ProcessOutput(status: process.terminationStatus, stdout: String(decoding: await stdout, as: UTF8.self),
                         stderr: String(decoding: await stderr, as: UTF8.self))
}

/// Reads a handle to its end on a Dispatch thread: a blocking read must never occupy one of the few
/// cooperative-pool threads (two on a 2-core machine), or a child process that talks back to this one
/// (a fake server in the test) could never be answered.
package func readToEnd(_ handle: FileHandle) async -> Data {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: handle.readDataToEndOfFile()) }
    }
}

/// Splits a shell command line into words, honouring single and double quotes (no expansion).
package func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quote: Character?
    for ch in line {
        if let q = quote {
            if ch == q { quote = nil } else { current.append(ch) }
        } else if ch == "'" || ch == "\"" {
            quote = ch
            inWord = true
        } else if ch == " " || ch == "\t" {
            if inWord { words.append(current); current = ""; inWord = false }
        } else {
            current.append(ch)
            inWord = true
        }
    }
    if inWord { words.append(current) }
    return words
}
