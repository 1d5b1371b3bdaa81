import Foundation
import Yams

/// The `chat:` section of the policy file: which platform channel each of the policy's channel
/// bindings (approvals, reviews, agents, experts, …) is, and which reactions mean what.
///
/// ```yaml
/// chat:
///   channels:
///     approvals: { slack: C0123APPROVE }
///     agents:    { slack: C0123AGENTS }
///     default:   { slack: C0123HANDOFF }   # for bindings not listed
///   reactions:
///     approve: [white_check_mark, heavy_check_mark, shipit]
/// ```
package struct ChatConfiguration: Hashable, Sendable {
    /// binding → platform → channel id.
    package var channels: [String: [String: String]]
    package var reactions: ReactionMap

    package init(channels: [String: [String: String]] = [:], reactions: ReactionMap = ReactionMap()) {
        self.channels = channels
        self.reactions = reactions
    }

    /// The platform channel for a binding, falling back to the `default` binding.
    package func channel(for binding: String, platform: String) -> String? {
        channels[binding]?[platform] ?? channels["default"]?[platform]
    }

    /// Every platform that has at least one channel configured.
    package var platforms: Set<String> { Set(channels.values.flatMap(\.keys)) }

    package struct LoadError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Reads the `chat:` section from the policy file's text (the rest of the file is the workflow's).
    package static func parse(_ text: String, source: String = "policy") throws -> ChatConfiguration {
        struct File: Decodable { var chat: Section? }
        struct Section: Decodable {
            var channels: [String: [String: String]]?
            var reactions: [String: [String]]?
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return ChatConfiguration() }
        let section: Section?
        do {
            section = try YAMLDecoder().decode(File.self, from: text).chat
        } catch {
            throw LoadError(description: "\(source): the chat section is not valid: \(error)")
        }
        guard let section else { return ChatConfiguration() }
        var overrides: [ReactionAction: [String]] = [:]
        for (name, list) in section.reactions ?? [:] {
            guard let action = ReactionAction(rawValue: name) else {
                let known = ReactionAction.allCases.map(\.rawValue).joined(separator: ", ")
                throw LoadError(description: "\(source): chat.reactions.\(name) is not an action (use one of \(known))")
            }
            overrides[action] = list
        }
        return ChatConfiguration(channels: section.channels ?? [:], reactions: ReactionMap().overriding(overrides))
    }

    /// Reads the chat section from a policy file; no file means no channels.
    package static func load(path: String?) throws -> ChatConfiguration {
        guard let path else { return ChatConfiguration() }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadError(description: "cannot read the policy file \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path)
    }
}
