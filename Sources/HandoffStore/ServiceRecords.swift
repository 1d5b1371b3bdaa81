import Foundation
import HandoffCore

/// What an API key may do.
package enum APIKeyScope: String, Hashable, Sendable, Codable, CaseIterable {
    /// AI apps and agents: create approvals, enqueue, route, escalate, ask for feedback; read their results.
    case agent
    /// People: decide, claim, submit, resolve, label, respond; read everything.
    case reviewer
    /// Everything, including acting for any group.
    case admin
}

package struct APIKeyRecord: Hashable, Sendable {
    /// The public part of the key (`hk_<id>_…`), used to look it up.
    package var id: String
    package var name: String
    package var scope: APIKeyScope
    /// SHA-256 hex of the secret part.
    package var secretHash: String
    package var createdAt: Date
    package var lastUsedAt: Date?
    package var revokedAt: Date?

    package init(id: String, name: String, scope: APIKeyScope, secretHash: String, createdAt: Date,
                 lastUsedAt: Date? = nil, revokedAt: Date? = nil)
    {
        self.id = id
        self.name = name
        self.scope = scope
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

package enum CardState: String, Hashable, Sendable, Codable {
    /// Recorded before the platform call; a crash leaves it here for reconciliation.
    case posting
    case posted
    case failed
}

/// One card the bot posted (or is posting) for an entity on a platform.
package struct CardRef: Hashable, Sendable {
    package var id: Int64
    package var entity: EntityRef
    package var platform: String
    /// The policy's channel binding name (approvals, reviews, agents, …).
    package var destination: String
    /// The platform's channel id (Slack `C…`, Matrix `!room:server`, …), kept as an opaque string.
    package var channel: String
    /// The platform's message id (Slack `ts`, Matrix `$event`), exactly as the platform sent it.
    package var messageID: String?
    package var threadID: String?
    package var state: CardState
    /// Unique per card, sent with the post so a lost reply can be reconciled.
    package var nonce: String
    package var createdAt: Date
    package var updatedAt: Date
}

/// A raw inbound event kept until it has been processed.
package struct InboundEvent: Hashable, Sendable {
    package var id: Int64
    package var platform: String
    package var eventKey: String
    package var payload: String
    package var attempts: Int
    package var receivedAt: Date
}

extension SQLWorkflowStore {
    // MARK: Inbound events

    /// Durably records an inbound event; false when (platform, key) was already recorded (a redelivery).
    package func recordInbound(platform: String, eventKey: String, payload: String, at: Date) async throws -> Bool {
        // Urgent: the platform waits for this write's commit before it hears the ack (Slack's 3 s).
        let r = try await database.write([WriteStep(SQLStatement(
            """
            INSERT INTO inbound_events (platform, event_key, payload, status, attempts, received_at)
            VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT DO NOTHING
            """, [.text(platform), .text(eventKey), .text(payload), SQLValue(at)]))], urgent: true)
        return (r.first?.changes ?? 0) == 1
    }

    /// Records several events in one transaction (one disk sync); returns which were new.
    package func recordInbound(_ events: [(platform: String, eventKey: String, payload: String)], at: Date) async throws -> [Bool] {
        guard !events.isEmpty else { return [] }
        let r = try await database.write(events.map { e in
            WriteStep(SQLStatement(
                """
                INSERT INTO inbound_events (platform, event_key, payload, status, attempts, received_at)
                VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT DO NOTHING
                """, [.text(e.platform), .text(e.eventKey), .text(e.payload), SQLValue(at)]))
        }, urgent: true)
        return r.map { $0.changes == 1 }
    }

    package func pendingInbound(platform: String?, limit: Int) async throws -> [InboundEvent] {
        let filter = platform == nil ? "" : "AND platform = ?"
        let binds: [SQLValue] = (platform.map { [.text($0)] } ?? []) + [SQLValue(limit)]
        return try await database.read(
            "SELECT id, platform, event_key, payload, attempts, received_at FROM inbound_events WHERE status = 'pending' \(filter) ORDER BY id LIMIT ?",
            binds
        ).map { row in
            InboundEvent(id: try row.int("id"), platform: try row.string("platform"), eventKey: try row.string("event_key"),
                         payload: try row.string("payload"), attempts: Int(try row.int("attempts")), receivedAt: try row.date("received_at"))
        }
    }

    /// Marks an inbound event processed (status `done`) or given up (`failed`, with the error).
    package func finishInbound(_ id: Int64, failed error: String? = nil, at: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE inbound_events SET status = ?, processed_at = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
            [.text(error == nil ? "done" : "failed"), SQLValue(at), SQLValue(error.map { String($0.prefix(1000)) }), .integer(id)]))])
    }

    /// Forgets processed events older than the cutoff (their effects' event keys stay in `inbox`).
    package func pruneInbound(before: Date) async throws -> Int {
        let r = try await database.write([WriteStep(SQLStatement(
            "DELETE FROM inbound_events WHERE status <> 'pending' AND received_at < ?", [SQLValue(before)]))])
        return r.first?.changes ?? 0
    }

    // MARK: API keys

    package func insertAPIKey(_ key: APIKeyRecord) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "INSERT INTO api_keys (id, name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [.text(key.id), .text(key.name), .text(key.scope.rawValue), .text(key.secretHash), SQLValue(key.createdAt)]),
            expect: .exactlyOne(.uniqueViolation("an API key with id \(key.id)")))])
    }

    private func decodeKey(_ row: SQLRow) throws -> APIKeyRecord {
        guard let scope = APIKeyScope(rawValue: try row.string("scope")) else { throw StoreError.corrupt("api key scope") }
        return APIKeyRecord(id: try row.string("id"), name: try row.string("name"), scope: scope,
                            secretHash: try row.string("secret_hash"), createdAt: try row.date("created_at"),
                            lastUsedAt: row.optionalDate("last_used_at"), revokedAt: row.optionalDate("revoked_at"))
    }

    package func apiKey(id: String) async throws -> APIKeyRecord? {
        try await database.read("SELECT * FROM api_keys WHERE id = ?", [.text(id)]).first.map(decodeKey)
    }

    package func apiKeys() async throws -> [APIKeyRecord] {
        try await database.read("SELECT * FROM api_keys ORDER BY created_at, id").map(decodeKey)
    }

    /// Revokes the live key with that name; false when there is none.
    package func revokeAPIKey(name: String, at: Date) async throws -> Bool {
        let r = try await database.write([WriteStep(SQLStatement(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [SQLValue(at), .text(name)]))])
        return (r.first?.changes ?? 0) > 0
    }

    package func touchAPIKey(id: String, at: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", [SQLValue(at), .text(id)]))])
    }

    // MARK: Card references

    private func decodeCard(_ row: SQLRow) throws -> CardRef {
        guard let kind = EntityKind(rawValue: try row.string("entity_kind")),
              let state = CardState(rawValue: try row.string("state"))
        else { throw StoreError.corrupt("card_refs row") }
        return CardRef(
            id: try row.int("id"), entity: EntityRef(kind: kind, id: try row.int("entity_id")), platform: try row.string("platform"),
            destination: try row.string("destination"), channel: try row.string("channel"), messageID: row["message_id"].string,
            threadID: row["thread_id"].string, state: state, nonce: try row.string("nonce"), createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"))
    }

    /// Records that a card is about to be posted (state `posting`); returns its row id.
    package func beginCard(entity: EntityRef, platform: String, destination: String, channel: String, threadID: String?,
                           nonce: String, at: Date) async throws -> Int64
    {
        let r = try await database.write([WriteStep(SQLStatement(
            """
            INSERT INTO card_refs (entity_kind, entity_id, platform, destination, channel, thread_id, state, nonce, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, 'posting', ?, ?, ?) RETURNING id
            """,
            [.text(entity.kind.rawValue), .integer(entity.id), .text(platform), .text(destination), .text(channel),
             SQLValue(threadID), .text(nonce), SQLValue(at), SQLValue(at)]),
            expect: .exactlyOne(.uniqueViolation("a card with nonce \(nonce)")))])
        guard let id = r.first?.rows.first?["id"].int else { throw StoreError.corrupt("card_refs insert returned no id") }
        return id
    }

    /// The platform accepted the card: keep its message id exactly as sent.
    package func cardPosted(_ id: Int64, messageID: String, threadID: String?, at: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE card_refs SET state = 'posted', message_id = ?, thread_id = COALESCE(?, thread_id), updated_at = ? WHERE id = ?",
            [.text(messageID), SQLValue(threadID), SQLValue(at), .integer(id)]),
            expect: .exactlyOne(.conflict("card #\(id)")))])
    }

    package func cardFailed(_ id: Int64, at: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE card_refs SET state = 'failed', updated_at = ? WHERE id = ?", [SQLValue(at), .integer(id)]))])
    }

    package func cards(of entity: EntityRef) async throws -> [CardRef] {
        try await database.read(
            "SELECT * FROM card_refs WHERE entity_kind = ? AND entity_id = ? ORDER BY id",
            [.text(entity.kind.rawValue), .integer(entity.id)]
        ).map(decodeCard)
    }

    /// The card a platform message is, for resolving a click or reaction to its entity.
    package func card(platform: String, channel: String, messageID: String) async throws -> CardRef? {
        try await database.read(
            "SELECT * FROM card_refs WHERE platform = ? AND channel = ? AND message_id = ?",
            [.text(platform), .text(channel), .text(messageID)]
        ).first.map(decodeCard)
    }

    /// Cards of a channel left in `posting`, newest first. A posting card has no message id yet, so the
    /// `(platform, channel, message_id)` index finds them.
    package func cardsPosting(platform: String, channel: String, since: Date, limit: Int) async throws -> [CardRef] {
        try await database.read(
            """
            SELECT * FROM card_refs WHERE platform = ? AND channel = ? AND message_id IS NULL AND state = 'posting' AND created_at >= ?
            ORDER BY id DESC LIMIT ?
            """,
            [.text(platform), .text(channel), SQLValue(since), SQLValue(limit)]
        ).map(decodeCard)
    }

    // MARK: Key-value

    package func value(forKey key: String) async throws -> String? {
        try await database.read("SELECT value FROM kv WHERE key = ?", [.text(key)]).first?["value"].string
    }

    /// Stores `value` unless the key already has one, and returns whichever value is stored: two
    /// processes generating a secret at once end up using the same one.
    package func insertValueIfAbsent(_ value: String, forKey key: String, at: Date) async throws -> String {
        _ = try await database.write([WriteStep(SQLStatement(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [.text(key), .text(value), SQLValue(at)]))])
        guard let stored = try await self.value(forKey: key) else { throw StoreError.corrupt("kv \(key) vanished") }
        return stored
    }

    package func setValue(_ value: String, forKey key: String, at: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            """
            INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, [.text(key), .text(value), SQLValue(at)]))])
    }
}
