/// A credential (bot token, app token, signing secret, LLM API key) that never prints its value: not in
/// logs, not in `print(configuration)`, not in error messages.
package struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The value, for the one place that sends it (an `Authorization` header, an HMAC key).
    package let revealed: String

    package init(_ value: String) { self.revealed = value }

    /// A hint safe to log: the token kind prefix only (`xoxb-…`).
    package var description: String {
        if let dash = revealed.firstIndex(of: "-"), revealed.distance(from: revealed.startIndex, to: dash) <= 5 {
            return String(revealed[...dash]) + "…(redacted)"
        }
        return "(redacted)"
    }

    package var debugDescription: String { description }
}
