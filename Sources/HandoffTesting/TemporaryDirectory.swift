import Foundation

/// A fresh directory under the system temp folder, removed by ``remove()``.
package struct TemporaryDirectory: Sendable {
    package let path: String

    package init(prefix: String = "handoff-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    package func file(_ name: String) -> String { "\(path)/\(name)" }

    package func remove() { try? FileManager.default.removeItem(atPath: path) }
}
