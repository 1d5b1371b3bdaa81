import Foundation
import HandoffChatKit

/// A failed Matrix client-server API call, sorted by what the caller should do about it.
package struct MatrixError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        /// The homeserver answered with an error (`{"errcode":"M_FORBIDDEN","error":"…"}`).
        case api(status: Int, errcode: String)
        /// 401 `M_UNKNOWN_TOKEN` (or `M_MISSING_TOKEN`) that logging in again could not fix.
        case unknownToken(softLogout: Bool)
        /// 429 `M_LIMIT_EXCEEDED`: wait `retryAfter` (the `Retry-After` header, else `retry_after_ms`).
        case rateLimited(retryAfter: Duration)
        /// No answer, a connection failure, or a body that is not the homeserver's JSON.
        case transport(String)
        /// Credentials or configuration no retry can fix (a refused password, no way to log in).
        case fatal
    }

    /// `PUT /rooms/{roomId}/send/m.room.message`, for messages.
    package let endpoint: String
    package let code: Code
    /// The homeserver's `error` text, or what went wrong.
    package let message: String

    package init(endpoint: String, code: Code, message: String) {
        self.endpoint = endpoint
        self.code = code
        self.message = message
    }

    /// The Matrix `errcode` of an API error (`M_DUPLICATE_ANNOTATION`).
    package var errcode: String? {
        if case .api(_, let e) = code { return e }
        return nil
    }

    package var description: String {
        switch code {
        case .api(let status, let errcode): "Matrix \(endpoint) failed: HTTP \(status) \(errcode): \(message)"
        case .unknownToken: "Matrix \(endpoint) refused the access token: \(message)"
        case .rateLimited(let after): "Matrix \(endpoint) is rate limited; retry after \(after)"
        case .transport(let what): "Matrix \(endpoint) could not be reached: \(what)"
        case .fatal: message
        }
    }

    /// True for errors no retry can fix (the sync loop stops on them instead of looping).
    package var isFatal: Bool {
        switch code {
        case .fatal, .unknownToken: true
        default: false
        }
    }

    /// The platform-neutral classification the outbox dispatcher acts on.
    package var deliveryError: ChatDeliveryError {
        switch code {
        case .rateLimited(let after): ChatDeliveryError(.rateLimited(retryAfter: after), description)
        case .fatal, .unknownToken: ChatDeliveryError(.fatal, description)
        case .transport: ChatDeliveryError(.transient, description)
        case .api(let status, _):
            (400..<500).contains(status) && status != 408 ? ChatDeliveryError(.permanent, description) : ChatDeliveryError(.transient, description)
        }
    }
}
