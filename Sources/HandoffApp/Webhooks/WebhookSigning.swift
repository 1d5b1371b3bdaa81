import Crypto
import Foundation
import HandoffCore
import HandoffStore

/// `Handoff-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
package enum WebhookSignature {
    package static let headerName = "Handoff-Signature"
    package static let deliveryHeaderName = "Handoff-Delivery"
    package static let eventHeaderName = "Handoff-Event"

    /// The hex HMAC of `"<timestamp>.<body>"`.
    package static func mac(secret: Secret, timestamp: Int64, body: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: secret.key)
        hmac.update(data: Array("\(timestamp).".utf8))
        hmac.update(data: body)
        return hmac.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The header value for a body signed at `timestamp`.
    package static func header(secret: Secret, timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=\(mac(secret: secret, timestamp: timestamp, body: body))"
    }

    /// Verifies a header the way a receiver should: parse `t` and every `v1`, recompute, compare in
    /// constant time, and refuse timestamps further than `tolerance` seconds from `now`.
    package static func verify(header: String, body: [UInt8], secret: Secret, now: Date, tolerance: TimeInterval = 300) -> Bool {
        var timestamp: Int64?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) }
            if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let expected = mac(secret: secret, timestamp: timestamp, body: body)
        return signatures.contains { constantTimeEqual($0, expected) }
    }

    /// The kv key the generated secret is kept under.
    package static let storeKey = "webhooks.signing_secret"

    /// The signing secret: `HANDOFF_WEBHOOK_SECRET` when set, else the one stored in the database, else a
    /// new random one, stored so every later start (and `handoff webhooks secret`) uses the same.
    package static func loadSecret(environment: [String: String], store: any WorkflowStore, now: Date) async throws -> Secret {
        if let configured = environment["HANDOFF_WEBHOOK_SECRET"], !configured.isEmpty {
            return Secret(configured)
        }
        return try await storedSecret(key: storeKey, store: store, now: now) { "whsec_" + APIKeys.randomToken(length: 43) }
    }

    /// A secret kept in the database: the stored one, or a new one stored only if none exists, so two
    /// processes starting at once end up with the same value.
    package static func storedSecret(
        key: String, store: any WorkflowStore, now: Date, generate: () -> String
    ) async throws -> Secret {
        if let stored = try await store.value(forKey: key), !stored.isEmpty { return Secret(stored) }
        return Secret(try await store.insertValueIfAbsent(generate(), forKey: key, at: now))
    }
}
