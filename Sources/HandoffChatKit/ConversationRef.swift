import Foundation

/// Where a conversation happens on a platform: a channel (or DM), optionally a thread in it, and the
/// person it is with. Escalations and review items keep it, encoded as their opaque `origin` string,
/// so answers go back to the user's DM or thread.
package struct ConversationRef: Hashable, Sendable, Codable, CustomStringConvertible {
    /// `slack`, `discord`, …
    package var platform: String
    /// The platform's channel id (a DM is a channel too); nil means "a DM with `user`".
    package var channel: String?
    /// The thread's root message id, when the conversation is a thread.
    package var thread: String?
    /// The platform user id of the person (without the platform prefix).
    package var user: String?

    package init(platform: String, channel: String?, thread: String? = nil, user: String? = nil) {
        self.platform = platform
        self.channel = channel
        self.thread = thread
        self.user = user
    }

    private static let scheme = "chat:"

    /// `chat:slack?channel=D024BE91L&thread=1610241741.000200&user=U222`: every part percent-encoded,
    /// so channel ids with `:`/`!`/`@` (Matrix) survive, and ids stay exact strings.
    package var encoded: String {
        var items: [String] = []
        func add(_ name: String, _ value: String?) {
            guard let value else { return }
            items.append("\(name)=\(Self.percentEncode(value))")
        }
        add("channel", channel)
        add("thread", thread)
        add("user", user)
        return Self.scheme + Self.percentEncode(platform) + (items.isEmpty ? "" : "?" + items.joined(separator: "&"))
    }

    /// Decodes ``encoded``; nil for origins that are not chat conversations (e.g. an API caller's own id).
    package init?(encoded text: String) {
        guard text.hasPrefix(Self.scheme) else { return nil }
        let rest = text.dropFirst(Self.scheme.count)
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let platform = parts.first.flatMap({ String($0).removingPercentEncoding }), !platform.isEmpty else { return nil }
        self.platform = platform
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, let value = String(kv[1]).removingPercentEncoding else { return nil }
                switch kv[0] {
                case "channel": channel = value
                case "thread": thread = value
                case "user": user = value
                default: continue  // unknown parts from a newer version are ignored
                }
            }
        }
        if channel == nil && user == nil { return nil }
    }

    package var description: String { encoded }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    private static func percentEncode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }
}
