import Foundation
import HandoffCore

extension SQLWorkflowStore {
    /// Pending inbound events that are due (`next_attempt_at <= now`) on one of `platforms`: fresh
    /// events (due at 0) first in arrival order, then retried ones by the time they came due.
    ///
    /// Rows of platforms that are not ready, and rows still backing off, are filtered here, in SQL, so
    /// the router never re-reads rows it would skip and newer events are never starved behind them.
    package func dueInbound(platforms: Set<String>, now: Date, limit: Int) async throws -> [InboundEvent] {
        guard !platforms.isEmpty, limit > 0 else { return [] }
        let list = platforms.sorted()
        let placeholders = list.map { _ in "?" }.joined(separator: ", ")
        return try await database.read(
            """
            SELECT id, platform, event_key, payload, attempts, received_at FROM inbound_events
            WHERE status = 'pending' AND next_attempt_at <= ? AND platform IN (\(placeholders))
            ORDER BY next_attempt_at, id LIMIT ?
            """,
            [SQLValue(now)] + list.map { SQLValue.text($0) } + [SQLValue(limit)]
        ).map { row in
            InboundEvent(id: try row.int("id"), platform: try row.string("platform"), eventKey: try row.string("event_key"),
                         payload: try row.string("payload"), attempts: Int(try row.int("attempts")), receivedAt: try row.date("received_at"))
        }
    }

    /// Counts a failed attempt and keeps the event pending until `next` (a persisted backoff that
    /// survives restarts). The event stays pending however many attempts it takes: an acknowledged
    /// event is never given up on for a transient failure.
    package func retryInbound(_ id: Int64, error: String, next: Date) async throws {
        _ = try await database.write([WriteStep(SQLStatement(
            "UPDATE inbound_events SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'",
            [.text(String(error.prefix(1000))), SQLValue(next), .integer(id)]))])
    }

    /// Events set aside as failed (payloads that can never be understood), newest first, for operators and tests.
    package func failedInbound(limit: Int) async throws -> [(event: InboundEvent, error: String)] {
        try await database.read(
            """
            SELECT id, platform, event_key, payload, attempts, received_at, last_error FROM inbound_events
            WHERE status = 'failed' ORDER BY id DESC LIMIT ?
            """, [SQLValue(limit)]
        ).map { row in
            (InboundEvent(id: try row.int("id"), platform: try row.string("platform"), eventKey: try row.string("event_key"),
                          payload: try row.string("payload"), attempts: Int(try row.int("attempts")), receivedAt: try row.date("received_at")),
             row["last_error"].string ?? "")
        }
    }
}
