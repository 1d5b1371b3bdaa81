import Crypto
import Foundation
import HandoffCore
import HandoffStore

/// Dashboard sessions as signed, opaque cookies: `<payload>.<hmac>` where the payload names the API key
/// the reviewer signed in with, when the session ends, and a random nonce. Nothing secret is in the
/// cookie; the key is re-checked on every request, so revoking it ends its sessions at once.
///
/// CSRF tokens are an HMAC of the session nonce (a synchronizer token that needs no server state), and
/// the sign-in form, which has no session yet, uses a double-submit cookie.
struct SessionCodec: Sendable {
    struct Session: Sendable, Hashable {
        var keyID: String
        var expires: Date
        var nonce: String
    }

    let secret: Secret

    /// The kv key the session secret is kept under (generated once, so sessions survive restarts).
    static let storeKey = "dashboard.session_secret"

    static func loadSecret(store: any WorkflowStore, now: Date) async throws -> Secret {
        try await WebhookSignature.storedSecret(key: storeKey, store: store, now: now) { APIKeys.randomToken(length: 48) }
    }

    private func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: secret.key).map { String(format: "%02x", $0) }.joined()
    }

    /// A new session for a key.
    func issue(keyID: String, now: Date, lifetime: TimeInterval) -> (cookie: String, session: Session) {
        let session = Session(keyID: keyID, expires: now.addingTimeInterval(lifetime), nonce: APIKeys.randomToken(length: 24))
        let payload = "\(session.keyID)~\(Int64(session.expires.timeIntervalSince1970))~\(session.nonce)"
        return ("\(payload).\(mac("session|" + payload))", session)
    }

    /// The session a cookie carries, when its signature is valid and it has not expired.
    func open(_ cookie: String, now: Date) -> Session? {
        guard let dot = cookie.lastIndex(of: ".") else { return nil }
        let payload = String(cookie[..<dot])
        let signature = String(cookie[cookie.index(after: dot)...])
        guard constantTimeEqual(signature, mac("session|" + payload)) else { return nil }
        let parts = payload.split(separator: "~", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let expiry = Int64(parts[1]) else { return nil }
        let session = Session(keyID: parts[0], expires: Date(timeIntervalSince1970: TimeInterval(expiry)), nonce: parts[2])
        guard session.expires > now else { return nil }
        return session
    }

    /// The CSRF token every form of this session carries.
    func csrfToken(for session: Session) -> String { mac("csrf|" + session.nonce) }

    func csrfValid(_ token: String?, for session: Session) -> Bool {
        guard let token, !token.isEmpty else { return false }
        return constantTimeEqual(token, csrfToken(for: session))
    }
}
