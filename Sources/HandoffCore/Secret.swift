import Crypto

/// A credential (bot token, app token, signing secret, webhook or session secret, LLM API key) that
/// never prints its value: not in logs, not in `print(configuration)`, not in error messages, not in
/// `debugPrint`, and not in `dump()` or any other `Mirror` walk.
package struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The value, for the one place that sends it (an `Authorization` header, an HMAC key) or must show
    /// it (`handoff webhooks secret`).
    package let revealed: String

    package init(_ value: String) { self.revealed = value }

    /// The value's bytes as an HMAC key.
    package var key: SymmetricKey { SymmetricKey(data: Array(revealed.utf8)) }

    /// A hint safe to log: the token kind prefix only (`xoxb-…`).
    package var description: String {
        if let dash = revealed.firstIndex(of: "-"), revealed.distance(from: revealed.startIndex, to: dash) <= 5 {
            return String(revealed[...dash]) + "…(redacted)"
        }
        return "(redacted)"
    }

    package var debugDescription: String { description }

    /// `dump()` and other reflection see the redacted hint, never the stored value.
    package var customMirror: Mirror { Mirror(self, children: ["value": description], displayStyle: .struct) }
}
