import Foundation

/// Waits until `condition` holds, checking every `poll`, for at most `timeout`. Returns whether it held:
/// a bounded wait for a condition, never a sleep standing in for one.
@discardableResult
package func eventually(
    timeout: Duration = .seconds(10), poll: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: poll)
    }
}

/// Where the package's top-level folders are (templates, manifests), for tests.
package enum PackagePaths {
    package static var cardTemplates: String { BuiltProducts.packageRoot.appendingPathComponent("templates/cards").path }
    package static var slackManifest: String { BuiltProducts.packageRoot.appendingPathComponent("manifests/slack/app-manifest.yaml").path }
}
