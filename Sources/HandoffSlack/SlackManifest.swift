import Foundation
import HandoffChatKit

/// The Slack app manifest (`manifests/slack/app-manifest.yaml`), generated from the ``Command`` enum
/// so the slash command Slack knows is the grammar the bot parses; a test keeps the file in step.
package enum SlackManifest {
    /// Events the bot subscribes to: mentions, DMs, thread replies on cards in channels, reactions.
    package static let botEvents = [
        "app_mention", "message.im", "message.channels", "message.groups", "reaction_added", "reaction_removed",
    ]

    /// OAuth scopes the bot token needs, each for a reason.
    package static let botScopes = [
        "app_mentions:read",        // app_mention events
        "channels:history",         // thread replies on cards; finding a card after a lost reply
        "groups:history",           // the same in private channels
        "chat:write",               // cards, edits, replies, ephemeral explanations
        "commands",                 // /handoff
        "im:history",               // DMs ("I want a person")
        "im:read",
        "im:write",                 // conversations.open for DMs
        "metadata.message:read",    // card nonces in message metadata
        "reactions:read",           // reaction_added / reaction_removed
        "reactions:write",          // ✅ on handled thread replies
        "users:read",               // users.info
    ]

    /// The manifest YAML, for Socket Mode (no request URLs needed).
    package static func yaml(appName: String = "Handoff") -> String {
        var lines: [String] = [
            "# Generated from the Command enum (Sources/HandoffChatKit/Command.swift) by SlackManifest.yaml().",
            "# Create the app at https://api.slack.com/apps → Create New App → From an app manifest, paste this file.",
            "# A test (SlackManifestTests) fails when the file and the command grammar disagree.",
            "display_information:",
            "  name: \(appName)",
            "  description: Human-in-the-loop approvals, reviews, escalations, feedback and labeling for AI apps",
            "  background_color: \"#2c2d30\"",
            "features:",
            "  app_home:",
            "    home_tab_enabled: false",
            "    messages_tab_enabled: true",
            "    messages_tab_read_only_enabled: false",
            "  bot_user:",
            "    display_name: \(appName.lowercased())",
            "    always_online: true",
            "  slash_commands:",
            "    - command: /\(Command.slashName)",
            "      description: \(quoted(Command.slashDescription))",
            "      usage_hint: \(quoted(Command.usageHint))",
            "      should_escape: false",
            "oauth_config:",
            "  scopes:",
            "    bot:",
        ]
        lines += botScopes.map { "      - \($0)" }
        lines += [
            "settings:",
            "  event_subscriptions:",
            "    bot_events:",
        ]
        lines += botEvents.map { "      - \($0)" }
        lines += [
            "  interactivity:",
            "    is_enabled: true",
            "  org_deploy_enabled: false",
            "  socket_mode_enabled: true",
            "  token_rotation_enabled: false",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
