import Foundation
import HandoffCore
import Yams

/// Reads the YAML policy file (groups, approval policies, queues, routes, escalation tiers).
package enum PolicyFile {
    package struct LoadError: Error, CustomStringConvertible {
        package var description: String
    }

    package static func load(path: String) throws -> WorkflowPolicy {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(description: "cannot read the policy file \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }

    package static func parse(_ text: String, source: String = "policy") throws -> WorkflowPolicy {
        let policy: WorkflowPolicy
        do {
            policy = text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                ? WorkflowPolicy() : try YAMLDecoder().decode(WorkflowPolicy.self, from: text)
        } catch let error as DecodingError {
            throw LoadError(description: "\(source): \(describe(error))")
        } catch {
            throw LoadError(description: "\(source): \(error)")
        }
        let problems = policy.problems()
        guard problems.isEmpty else {
            throw LoadError(description: "\(source) has problems:\n  - " + problems.joined(separator: "\n  - "))
        }
        return policy
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c): return "\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "\(path(c)): missing key '\(key.stringValue)'"
        case .typeMismatch(_, let c): return "\(path(c)): \(c.debugDescription)"
        case .valueNotFound(_, let c): return "\(path(c)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
