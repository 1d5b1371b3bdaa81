import Foundation
import HandoffChatKit
import HandoffCore
import Logging
import ServiceLifecycle
import Synchronization

/// The `/sync` long-poll loop as a `Service` (chat-protocols.md §4.2): it makes every event of a batch
/// durable at the ``InboundSink`` and only then stores the batch's `next_batch`, so nothing is lost
/// and a crash in between replays the batch (deduped by `event_id`).
///
/// - First start (no token stored): one sync is made only to learn the token; the history it shows is
///   not acted on (nanobot #3553, eliza #31765, opsdroid #1996).
/// - A `limited` timeline (more happened than the sync returned) is back-filled from
///   `/rooms/{id}/messages` between the previous token and the timeline's `prev_batch`.
/// - A room the bot has just joined shows its history in the timeline: only what follows the bot's
///   own join is taken (matrix-nio #443).
/// - Invites are joined when the inviter or the room is allowed, and declined otherwise.
/// - Errors back off exponentially with jitter; a token that cannot be renewed (or a refused login)
///   stops the loop with a clear error instead of retrying forever; the rest of the service runs on.
package final class MatrixSyncService: Service, Sendable {
    package struct Configuration: Sendable {
        /// The server-side wait of one `/sync`.
        package var syncTimeout: Duration = .seconds(30)
        /// How much longer than ``syncTimeout`` the HTTP request may take.
        package var httpMargin: Duration = .seconds(30)
        /// Events per room per sync before the timeline is `limited` (and back-filled).
        package var timelineLimit = 50
        package var backfillPageSize = 100
        /// Bound on one back-fill, in pages.
        package var maxBackfillPages = 20
        package var invites = InvitePolicy()
        /// Rooms that are channels (from the policy): always joined when invited, never a direct conversation.
        package var knownRooms: Set<String> = []
        package var initialBackoff: Duration = .seconds(1)
        package var maxBackoff: Duration = .seconds(60)
        /// Reactions are remembered this long (a removal after that changes nothing).
        package var reactionRetention: Duration = .seconds(30 * 24 * 3600)
        package var pruneEvery: Duration = .seconds(3600)

        package init() {}
    }

    /// Whose invites the bot accepts (edge case 70).
    package struct InvitePolicy: Hashable, Sendable {
        /// `@alice:example.org` (a person) or `:example.org` (everyone on a server). Empty: everyone on
        /// the bot's own homeserver.
        package var allowedInviters: [String] = []
        /// Rooms joined whoever invites.
        package var allowedRooms: Set<String> = []

        package init(allowedInviters: [String] = [], allowedRooms: Set<String> = []) {
            self.allowedInviters = allowedInviters
            self.allowedRooms = allowedRooms
        }

        package func allows(inviter: String?, room: String, botUserID: String, knownRooms: Set<String>) -> Bool {
            if allowedRooms.contains(room) || knownRooms.contains(room) { return true }
            guard let inviter else { return false }
            let rules = allowedInviters.isEmpty ? [":" + Self.server(of: botUserID)] : allowedInviters
            return rules.contains { rule in rule.hasPrefix(":") ? ":" + Self.server(of: inviter) == rule : rule == inviter }
        }

        static func server(of user: String) -> String {
            guard let colon = user.firstIndex(of: ":") else { return "" }
            return String(user[user.index(after: colon)...])
        }
    }

    package enum StopReason: Hashable, Sendable, CustomStringConvertible {
        case shutdown
        case fatal(String)

        package var description: String {
            switch self {
            case .shutdown: "shut down"
            case .fatal(let why): why
            }
        }
    }

    package enum Status: Hashable, Sendable {
        case starting
        case running
        case stopped(StopReason)
    }

    let client: MatrixClient
    let sink: any InboundSink
    let state: any MatrixStateStore
    let configuration: Configuration
    let logger: Logger
    private let statusBox = Mutex(Status.starting)
    private let memberCounts = Mutex<[String: Int]>([:])
    private let knownDirectRooms = Mutex<[String: String]>([:])
    private let syncCount = Atomic<Int>(0)
    private let backfillCount = Atomic<Int>(0)
    private let skippedHistoryCount = Atomic<Int>(0)

    package init(client: MatrixClient, sink: any InboundSink, state: any MatrixStateStore, configuration: Configuration = Configuration(),
                 logger: Logger = Logger(label: "handoff.matrix.sync"))
    {
        self.client = client
        self.sink = sink
        self.state = state
        self.configuration = configuration
        self.logger = logger
    }

    /// Where the loop stands (for health checks and tests).
    package var status: Status { statusBox.withLock { $0 } }
    /// Batches completed (their events durable and their token stored).
    package var completedSyncs: Int { syncCount.load(ordering: .relaxed) }
    /// Events recovered from `/messages` after `limited` timelines.
    package var backfilledEvents: Int { backfillCount.load(ordering: .relaxed) }
    /// Timeline events not acted on because they were history (before the bot joined).
    package var skippedHistoryEvents: Int { skippedHistoryCount.load(ordering: .relaxed) }

    private var filter: String {
        JSONValue.object([
            "room": .object([
                "timeline": .object(["limit": .int(Int64(configuration.timelineLimit))]),
                "state": .object(["lazy_load_members": .bool(true)]),
                "ephemeral": .object(["types": .array([])]),
                "account_data": .object(["types": .array([])]),
            ]),
            "presence": .object(["types": .array([])]),
            "account_data": .object(["types": .array([])]),
        ]).jsonText
    }

    /// The first sync only learns where "now" is: one event per room, nothing acted on. The filter is
    /// unique per call: Synapse caches `/sync` responses by their parameters (2 minutes by default), and
    /// a cached initial sync would hand out an old `next_batch`, replaying the history since then.
    static func initialFilter() -> String {
        JSONValue.object([
            "room": .object(["timeline": .object(["limit": .int(1)]), "state": .object(["lazy_load_members": .bool(true)])]),
            "presence": .object(["types": .array([]), "not_types": .array([.string("org.handoff.first_sync.\(MatrixTransactionIDs.random(12))")])]),
        ]).jsonText
    }

    package func run() async throws {
        logger.info("Matrix sync starting", metadata: ["homeserver": "\(client.configuration.homeserver)"])
        var delay = configuration.initialBackoff
        var lastPrune = ContinuousClock.now - configuration.pruneEvery
        var stop: StopReason = .shutdown
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await self.syncOnce() }
                if status != .running {
                    statusBox.withLock { $0 = .running }
                    logger.info("Matrix sync running", metadata: ["user": "\(client.currentSession?.userID ?? "-")"])
                }
                delay = configuration.initialBackoff
                if ContinuousClock.now - lastPrune >= configuration.pruneEvery {
                    lastPrune = .now
                    let pruned = try await state.pruneReactions(olderThan: configuration.reactionRetention)
                    if pruned > 0 { logger.debug("pruned old Matrix reactions", metadata: ["count": "\(pruned)"]) }
                }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                if let matrix = error as? MatrixError, isFatal(matrix) {
                    stop = .fatal(matrix.message)
                    break
                }
                logger.warning("Matrix sync failed; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                let wait = Duration.milliseconds(Int64(delay.seconds * Double.random(in: 0.5...1.0) * 1000))
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                delay = min(delay * 2, configuration.maxBackoff)
            }
        }
        statusBox.withLock { $0 = .stopped(stop) }
        if case .fatal(let why) = stop {
            logger.error("Matrix sync stopped: \(why)")
            // Stay down (reporting it) instead of retrying in a loop; the rest of the service runs on.
            try? await gracefulShutdown()
        }
        logger.info("Matrix sync stopped")
    }

    private func isFatal(_ error: MatrixError) -> Bool {
        switch error.code {
        case .fatal: true
        // A token refused again right after logging in with the password: back off and try again later.
        case .unknownToken: client.configuration.password == nil
        default: false
        }
    }

    /// One `/sync`: the first ever only stores its token; later ones make their events durable, then
    /// store the token.
    package func syncOnce() async throws {
        let session = try await client.ensureSession()
        let bot = session.userID
        let tokenKey = MatrixStateKeys.syncToken(user: bot)
        guard let since = try await state.value(forKey: tokenKey) else {
            let response = try await client.sync(since: nil, timeout: .zero, margin: configuration.httpMargin, filter: Self.initialFilter())
            let next = try Self.nextBatch(of: response)
            try await handleInvites(response, bot: bot)
            try await state.setValue(next, forKey: tokenKey)
            syncCount.add(1, ordering: .relaxed)
            logger.notice("Matrix first start: history before now is not acted on; following the rooms from here")
            return
        }
        let response = try await client.sync(since: since, timeout: configuration.syncTimeout, margin: configuration.httpMargin, filter: filter)
        let next = try Self.nextBatch(of: response)
        try await handleInvites(response, bot: bot)
        var raws: [RawInbound] = []
        var reactions: [MatrixReaction] = []
        var batchReactions: [String: MatrixReaction] = [:]
        let joined = response.member(path: "rooms", "join")?.asObject ?? [:]
        for (roomID, room) in joined.sorted(by: { $0.key < $1.key }) {
            let events = try await timeline(of: room, roomID: roomID, since: since, bot: bot)
            for event in events {
                guard let id = event.member("event_id")?.asString, let type = event.member("type")?.asString,
                      let sender = event.member("sender")?.asString, sender != bot
                else { continue }
                var removed: MatrixReaction?
                switch type {
                case "m.room.message":
                    break
                case "m.reaction":
                    if let relation = event.member(path: "content", "m.relates_to"), relation.member("rel_type")?.asString == "m.annotation",
                       let target = relation.member("event_id")?.asString, let key = relation.member("key")?.asString
                    {
                        let reaction = MatrixReaction(eventID: id, roomID: roomID, targetEventID: target, sender: sender, key: key)
                        reactions.append(reaction)
                        batchReactions[id] = reaction
                    }
                case "m.room.redaction":
                    // Only redactions of reactions mean something here: a reaction taken back.
                    guard let redacted = MatrixTranslator.redactedEventID(event) else { continue }
                    var reaction = batchReactions[redacted]
                    if reaction == nil { reaction = try await state.reaction(eventID: redacted) }
                    guard let reaction else { continue }
                    removed = reaction
                default:
                    continue
                }
                let direct = try await isDirect(roomID, bot: bot)
                if direct && type == "m.room.message" { try await rememberDirectRoom(roomID, with: sender, bot: bot) }
                let stored = MatrixStoredEvent(roomID: roomID, event: event, direct: direct, removedReaction: removed)
                raws.append(RawInbound(platform: MatrixStoredEvent.platform, key: MatrixStoredEvent.key(eventID: id), payload: stored.encoded))
            }
        }
        // Durable first (reactions, then events), the token last: a crash in between replays the batch.
        try await state.recordReactions(reactions)
        _ = try await sink.accept(batch: raws)
        try await state.setValue(next, forKey: tokenKey)
        syncCount.add(1, ordering: .relaxed)
    }

    /// A joined room's new events: the timeline, back-filled when `limited`, without the history
    /// before the bot's own join.
    private func timeline(of room: JSONValue, roomID: String, since: String, bot: String) async throws -> [JSONValue] {
        var events = room.member(path: "timeline", "events")?.asArray ?? []
        if let count = room.member(path: "summary", "m.joined_member_count")?.asInt {
            memberCounts.withLock { $0[roomID] = Int(count) }
        } else if events.contains(where: { $0.member("type")?.asString == "m.room.member" }) {
            memberCounts.withLock { $0[roomID] = nil }  // someone came or went: count again when needed
        }
        if room.member(path: "timeline", "limited")?.asBool == true, let prev = room.member(path: "timeline", "prev_batch")?.asString {
            let missed = try await backfill(roomID, from: since, to: prev)
            let seen = Set(events.compactMap { $0.member("event_id")?.asString })
            let fresh = missed.filter { ($0.member("event_id")?.asString).map { !seen.contains($0) } ?? false }
            backfillCount.add(fresh.count, ordering: .relaxed)
            if !fresh.isEmpty {
                logger.info("Matrix timeline was limited; back-filled", metadata: ["room": "\(roomID)", "events": "\(fresh.count)"])
            }
            events = fresh + events
        }
        if let join = events.lastIndex(where: { Self.isOwnJoin($0, bot: bot) }) {
            skippedHistoryCount.add(join + 1, ordering: .relaxed)
            events = Array(events[(join + 1)...])
        }
        return events
    }

    private func backfill(_ roomID: String, from since: String, to end: String) async throws -> [JSONValue] {
        var out: [JSONValue] = []
        var from = since
        for _ in 0..<configuration.maxBackfillPages {
            let page = try await client.messages(room: roomID, from: from, to: end, direction: "f", limit: configuration.backfillPageSize)
            let chunk = page.member("chunk")?.asArray ?? []
            out += chunk
            guard !chunk.isEmpty, let next = page.member("end")?.asString, next != from else { break }
            from = next
        }
        return out
    }

    /// The bot's own membership becoming `join` (not a profile change while joined).
    package static func isOwnJoin(_ event: JSONValue, bot: String) -> Bool {
        guard event.member("type")?.asString == "m.room.member", event.member("state_key")?.asString == bot,
              event.member(path: "content", "membership")?.asString == "join"
        else { return false }
        let previous = event.member(path: "unsigned", "prev_content", "membership")?.asString ?? event.member(path: "prev_content", "membership")?.asString
        return previous != "join"
    }

    // MARK: Rooms

    private func handleInvites(_ response: JSONValue, bot: String) async throws {
        guard let invites = response.member(path: "rooms", "invite")?.asObject else { return }
        for (roomID, invite) in invites.sorted(by: { $0.key < $1.key }) {
            let member = invite.member(path: "invite_state", "events")?.asArray?.last {
                $0.member("type")?.asString == "m.room.member" && $0.member("state_key")?.asString == bot
            }
            let inviter = member?.member("sender")?.asString
            if configuration.invites.allows(inviter: inviter, room: roomID, botUserID: bot, knownRooms: configuration.knownRooms) {
                do {
                    try await client.join(roomID)
                    memberCounts.withLock { $0[roomID] = nil }
                    logger.info("joined a Matrix room on invitation", metadata: ["room": "\(roomID)", "inviter": "\(inviter ?? "-")"])
                } catch {
                    // A refusal (the room is gone, the bot is banned) will not change; anything else retries the batch.
                    guard error.deliveryError.code == .permanent else { throw error }
                    logger.warning("could not join a Matrix room", metadata: ["room": "\(roomID)", "error": "\(error)"])
                }
            } else {
                do {
                    try await client.leave(roomID, reason: "Handoff only joins rooms its operators allow")
                } catch {
                    guard error.deliveryError.code == .permanent else { throw error }
                    logger.debug("could not decline a Matrix invite", metadata: ["room": "\(roomID)", "error": "\(error)"])
                }
                logger.notice("declined a Matrix invite: the inviter is not allowed (MATRIX_ALLOWED_INVITERS / MATRIX_ALLOWED_ROOMS)",
                              metadata: ["room": "\(roomID)", "inviter": "\(inviter ?? "-")"])
            }
        }
    }

    /// A room with only the bot and one person, that is not one of the configured channels.
    private func isDirect(_ roomID: String, bot: String) async throws -> Bool {
        if configuration.knownRooms.contains(roomID) { return false }
        if let count = memberCounts.withLock({ $0[roomID] }) { return count == 2 }
        let members = try await client.joinedMembers(roomID)
        memberCounts.withLock { $0[roomID] = members.count }
        return members.count == 2 && members.contains(bot)
    }

    /// Remembers the room a person talks to the bot in, so private notes go there.
    private func rememberDirectRoom(_ roomID: String, with user: String, bot: String) async throws {
        guard knownDirectRooms.withLock({ $0[user] }) != roomID else { return }
        try await state.setValue(roomID, forKey: MatrixStateKeys.directRoom(bot: bot, user: user))
        knownDirectRooms.withLock { $0[user] = roomID }
    }
}

extension MatrixError {
    static func missing(_ field: String) -> MatrixError {
        MatrixError(endpoint: "GET sync", code: .transport("no \(field) in the reply"), message: "no \(field) in the reply")
    }
}

extension MatrixSyncService {
    /// The longest `next_batch` kept. Synapse's tokens are tens of characters; one far longer (or with
    /// control characters) would be stored and sent back as `since` on every later request, where it can
    /// make the URL too long for the server: the loop would be stuck for good. Such a reply is refused
    /// like any malformed one, and the token before it stays.
    static let maxBatchTokenLength = 1024

    static func nextBatch(of response: JSONValue) throws(MatrixError) -> String {
        guard let next = response.member("next_batch")?.asString, !next.isEmpty else { throw MatrixError.missing("next_batch") }
        guard next.utf8.count <= maxBatchTokenLength, !next.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw MatrixError(endpoint: "GET sync", code: .transport("an unusable next_batch in the reply"),
                              message: "the reply's next_batch is not a usable token (\(next.utf8.count) bytes)")
        }
        return next
    }
}
