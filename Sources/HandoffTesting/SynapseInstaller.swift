import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why the test Synapse could not be installed or started: the test fails with this, it never skips.
package struct SynapseFailure: Error, CustomStringConvertible {
    package var description: String

    package init(description: String) { self.description = description }
}

/// Installs `matrix-synapse` from PyPI into `.test-support/synapse-venv` (ignored by git) once, and
/// reuses it afterwards. Concurrent installs (two `swift test` runs, two suites) are serialized by a
/// lock file, so one installs and the others wait and reuse it.
package enum SynapseInstaller {
    /// `<package>/.test-support`.
    package static var supportDirectory: String { BuiltProducts.packageRoot.appendingPathComponent(".test-support").path }
    package static var venv: String { supportDirectory + "/synapse-venv" }
    package static var python: String { venv + "/bin/python" }
    /// What pip installs (`HANDOFF_SYNAPSE_REQUIREMENT` overrides it, e.g. `matrix-synapse==1.163.2`).
    package static var requirement: String {
        ProcessInfo.processInfo.environment["HANDOFF_SYNAPSE_REQUIREMENT"].flatMap { $0.isEmpty ? nil : $0 } ?? "matrix-synapse"
    }

    /// The venv's Python with Synapse importable, and the installed version; installs when needed.
    package static func ensureInstalled(timeout: TimeInterval = 900) async throws -> (python: String, version: String, installed: Bool) {
        try FileManager.default.createDirectory(atPath: supportDirectory, withIntermediateDirectories: true)
        let lock = try await FileLock.acquire(path: supportDirectory + "/synapse-install.lock", timeout: timeout)
        defer { lock.release() }
        if let version = try? await installedVersion() { return (python, version, false) }
        try? FileManager.default.removeItem(atPath: venv)  // a half-made venv from an interrupted install
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/python3" } + ["/usr/bin/python3", "/usr/local/bin/python3"]
        guard let python3 = candidates.first(where: FileManager.default.isExecutableFile) else {
            throw SynapseFailure(description: "cannot install Synapse for the Matrix tests: python3 is not installed (apt-get install python3 python3-venv)")
        }
        let made = try await runProcess(python3, ["-m", "venv", venv], timeout: 300)
        guard made.status == 0 else {
            throw SynapseFailure(description: "cannot install Synapse for the Matrix tests: `python3 -m venv` failed (install python3-venv): \(tail(made.stderr + made.stdout))")
        }
        let pip = try await runProcess(venv + "/bin/pip", ["install", "--disable-pip-version-check", "--no-input", "--quiet", requirement],
                                       timeout: timeout)
        guard pip.status == 0 else {
            try? FileManager.default.removeItem(atPath: venv)
            throw SynapseFailure(description: "cannot install Synapse for the Matrix tests: `pip install \(requirement)` failed (is PyPI reachable?): \(tail(pip.stderr + pip.stdout))")
        }
        do {
            return (python, try await installedVersion(), true)
        } catch {
            throw SynapseFailure(description: "Synapse was installed into \(venv) but does not import: \(error)")
        }
    }

    private static func installedVersion() async throws -> String {
        guard FileManager.default.isExecutableFile(atPath: python) else { throw SynapseFailure(description: "no venv at \(venv)") }
        let out = try await runProcess(python, ["-c", "import synapse; print(synapse.__version__)"], timeout: 120)
        guard out.status == 0 else { throw SynapseFailure(description: tail(out.stderr)) }
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func tail(_ text: String, lines: Int = 25) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines).joined(separator: "\n")
    }
}

/// An exclusive lock on a file (`flock`), held across processes; polled so no thread blocks on it.
package final class FileLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    package static func acquire(path: String, timeout: TimeInterval) async throws -> FileLock {
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SynapseFailure(description: "cannot open the lock file \(path): errno \(errno)") }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if Date() > deadline {
                close(fd)
                throw SynapseFailure(description: "another process held \(path) for more than \(Int(timeout)) s (a Synapse install still running?)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return FileLock(descriptor: fd)
    }

    package func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
