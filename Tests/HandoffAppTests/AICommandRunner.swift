import Foundation
import HandoffCore
import HandoffTesting

/// What a `handoff` command printed.
typealias CommandRun = ProcessOutput

/// Runs the built `handoff` binary without inheriting the machine's Handoff or provider settings.
func runHandoff(_ arguments: [String], environment: [String: String], timeout: Duration = .seconds(60)) async throws -> CommandRun {
    try await runProcess(try BuiltProducts.executable("handoff"), arguments, environment: environment, timeout: timeout.seconds,
                         dropInherited: { $0.hasPrefix("HANDOFF_") || $0.hasSuffix("_API_KEY") })
}
