import Foundation
import HandoffChatKit
import HandoffSlack
import HandoffTesting
import Testing
import Yams

@Suite struct SlackManifestTests {
    /// `manifests/slack/app-manifest.yaml` is generated from the Command enum; regenerate with
    /// `HANDOFF_REGENERATE_MANIFEST=1 swift test --filter SlackManifestTests`.
    @Test func theManifestFileIsTheOneGeneratedFromTheCommandEnum() throws {
        let generated = SlackManifest.yaml()
        if ProcessInfo.processInfo.environment["HANDOFF_REGENERATE_MANIFEST"] == "1" {
            try generated.write(toFile: PackagePaths.slackManifest, atomically: true, encoding: .utf8)
        }
        let file = try String(contentsOfFile: PackagePaths.slackManifest, encoding: .utf8)
        #expect(file == generated, "manifests/slack/app-manifest.yaml is out of date; regenerate it (see this test)")
    }

    @Test func theManifestDeclaresSocketModeTheSlashCommandEventsAndScopes() throws {
        let yaml = try #require(try Yams.load(yaml: SlackManifest.yaml()) as? [String: Any])
        let features = try #require(yaml["features"] as? [String: Any])
        let commands = try #require(features["slash_commands"] as? [[String: Any]])
        #expect(commands.count == 1)
        #expect(commands[0]["command"] as? String == "/handoff")
        let hint = try #require(commands[0]["usage_hint"] as? String)
        for command in Command.allCases { #expect(hint.contains(command.rawValue), "usage hint lacks \(command)") }
        #expect(hint.count <= 1000)
        let settings = try #require(yaml["settings"] as? [String: Any])
        #expect(settings["socket_mode_enabled"] as? Bool == true)
        #expect((settings["interactivity"] as? [String: Any])?["is_enabled"] as? Bool == true)
        let events = try #require((settings["event_subscriptions"] as? [String: Any])?["bot_events"] as? [String])
        for required in ["app_mention", "message.im", "reaction_added", "reaction_removed"] {
            #expect(events.contains(required))
        }
        let scopes = try #require(((yaml["oauth_config"] as? [String: Any])?["scopes"] as? [String: Any])?["bot"] as? [String])
        for required in ["commands", "chat:write", "reactions:read", "im:history", "app_mentions:read", "im:write", "users:read"] {
            #expect(scopes.contains(required))
        }
    }
}
