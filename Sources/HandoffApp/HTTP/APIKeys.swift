import Crypto
import Foundation
import HandoffCore
import HandoffStore

/// API keys: `hk_<id>_<secret>`. The id is public (it finds the row); only a SHA-256 of the secret is
/// stored, and the key is shown once, at creation.
package enum APIKeys {
    /// Why a key cannot be created.
    package struct CreateError: Error, CustomStringConvertible {
        package var description: String
    }

    /// A freshly made key: the record to store and the full key to show once.
    package struct Issued: Sendable {
        package var record: APIKeyRecord
        /// `hk_<id>_<secret>`; never stored, never logged.
        package var key: String
    }

    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    /// Random letters and digits from the system's cryptographic generator.
    package static func randomToken(length: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))] })
    }

    /// Key names become identities (`key:<name>`), so they stay simple.
    package static func validate(name: String) throws(CreateError) {
        guard (1...64).contains(name.count),
              name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) })
        else {
            throw CreateError(description: "a key name is 1–64 letters, digits, '-', '_' or '.' (it becomes the identity key:<name>), not '\(name)'")
        }
    }

    /// Makes a key (not yet stored).
    package static func issue(name: String, scope: APIKeyScope, now: Date) throws(CreateError) -> Issued {
        try validate(name: name)
        let id = randomToken(length: 12)
        let secret = randomToken(length: 40)
        let record = APIKeyRecord(id: id, name: name, scope: scope, secretHash: hash(secret: secret), createdAt: now)
        return Issued(record: record, key: "hk_\(id)_\(secret)")
    }

    /// Creates and stores a key; refuses a name that a live key already has.
    package static func create(name: String, scope: APIKeyScope, store: any WorkflowStore, now: Date) async throws -> Issued {
        let issued = try issue(name: name, scope: scope, now: now)
        if try await store.apiKeys().contains(where: { $0.name == name && $0.revokedAt == nil }) {
            throw CreateError(description: "a live key named '\(name)' exists; revoke it first (handoff keys revoke \(name))")
        }
        do {
            try await store.insertAPIKey(issued.record)
        } catch StoreError.uniqueViolation {
            throw CreateError(description: "a live key named '\(name)' exists; revoke it first (handoff keys revoke \(name))")
        }
        return issued
    }

    /// Splits `hk_<id>_<secret>`; nil when the text is not shaped like a key.
    package static func parse(_ key: String) -> (id: String, secret: String)? {
        let parts = key.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "hk", !parts[1].isEmpty, !parts[2].isEmpty, key.count <= 200 else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    /// SHA-256 of the secret, lowercase hex (what the store keeps).
    package static func hash(secret: String) -> String {
        SHA256.hash(data: Array(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// True when `secret` hashes to `storedHash`, compared in constant time.
    package static func matches(secret: String, storedHash: String) -> Bool {
        let computed = Array(hash(secret: secret).utf8)
        let stored = Array(storedHash.utf8)
        return constantTimeEqual(computed, stored)
    }
}

/// Compares two byte strings without an early exit, so timing does not reveal where they differ.
package func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}

package func constantTimeEqual(_ a: String, _ b: String) -> Bool { constantTimeEqual(Array(a.utf8), Array(b.utf8)) }

/// Who is calling: the API key that authenticated the request.
package struct APIPrincipal: Sendable, Hashable {
    package var keyID: String
    package var name: String
    package var scope: APIKeyScope

    package init(keyID: String, name: String, scope: APIKeyScope) {
        self.keyID = keyID
        self.name = name
        self.scope = scope
    }

    /// `key:<name>`; admin keys act with administrator rights.
    package var actor: Actor { Actor(ActorID("key:\(name)"), isAdmin: scope == .admin) }

    /// The idempotency namespace of this caller.
    package var eventSource: String { "api:key:\(name)" }
}

/// What a route lets in.
package enum Access: String, Sendable, CaseIterable {
    /// Any valid key (reads).
    case anyKey = "any"
    /// Agent or admin keys: create, consume, report, enqueue, route, escalate, ask for feedback, record corrections, create label tasks.
    case agent
    /// Reviewer or admin keys: decide, claim, submit, resolve, label, respond.
    case reviewer
    /// Admin keys only.
    case admin

    package func allows(_ scope: APIKeyScope) -> Bool {
        switch self {
        case .anyKey: true
        case .agent: scope == .agent || scope == .admin
        case .reviewer: scope == .reviewer || scope == .admin
        case .admin: scope == .admin
        }
    }

    var description: String {
        switch self {
        case .anyKey: "any key"
        case .agent: "an agent or admin key"
        case .reviewer: "a reviewer or admin key"
        case .admin: "an admin key"
        }
    }
}

/// Checks `Authorization: Bearer hk_…` against the stored keys.
package struct APIAuthenticator: Sendable {
    let store: any WorkflowStore
    let clock: any WorkflowClock
    /// `last_used_at` is written at most this often per key (a write per request would serialize readers).
    let touchInterval: TimeInterval

    package init(store: any WorkflowStore, clock: any WorkflowClock, touchInterval: TimeInterval = 60) {
        self.store = store
        self.clock = clock
        self.touchInterval = touchInterval
    }

    /// The principal of a full key, or a 401 that says what is wrong (never echoing the key).
    package func authenticate(key: String) async throws -> (APIPrincipal, APIKeyRecord) {
        guard let (id, secret) = APIKeys.parse(key) else {
            throw APIError.unauthorized("the API key is malformed; keys look like hk_<id>_<secret> (create one with `handoff keys create`)")
        }
        guard let record = try await store.apiKey(id: id), APIKeys.matches(secret: secret, storedHash: record.secretHash) else {
            throw APIError.unauthorized("the API key is not valid")
        }
        guard record.revokedAt == nil else { throw APIError.unauthorized("the API key '\(record.name)' was revoked") }
        let now = clock.now()
        if record.lastUsedAt.map({ now.timeIntervalSince($0) >= touchInterval }) ?? true {
            try? await store.touchAPIKey(id: id, at: now)
        }
        return (APIPrincipal(keyID: record.id, name: record.name, scope: record.scope), record)
    }

    /// The principal behind a request's bearer token, checked against the route's access rule.
    package func principal(authorization: String?, access: Access) async throws -> APIPrincipal {
        guard let header = authorization?.trimmingCharacters(in: .whitespaces), !header.isEmpty else {
            throw APIError.unauthorized("send an API key as `Authorization: Bearer hk_…`")
        }
        let lower = header.lowercased()
        guard lower.hasPrefix("bearer ") else {
            throw APIError.unauthorized("use the Bearer scheme: `Authorization: Bearer hk_…`")
        }
        let key = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        let (principal, _) = try await authenticate(key: key)
        guard access.allows(principal.scope) else {
            throw APIError.forbidden("this route needs \(access.description); the key '\(principal.name)' has scope \(principal.scope.rawValue)")
        }
        return principal
    }
}
