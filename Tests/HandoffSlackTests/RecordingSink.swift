import Foundation
import HandoffChatKit

/// An in-memory ``InboundSink`` for adapter tests: dedupes by key like the store does, records what was
/// accepted, can fail (nothing durable → the adapter must not ack) and can answer commands slowly.
actor RecordingSink: InboundSink {
    private(set) var recorded: [RawInbound] = []
    private var keys: Set<String> = []
    private var failures = 0
    private var reply: String?
    /// How long a command's "work" takes; past the deadline the sink answers with a holding reply.
    private var commandWork: Duration?
    private(set) var duplicates = 0

    var recordedKeys: [String] { recorded.map(\.key) }

    func failNext(_ times: Int = 1) { failures += times }
    func setReply(_ text: String?) { reply = text }
    func setCommandWork(_ duration: Duration?) { commandWork = duration }

    func accept(_ raw: RawInbound) async throws -> Acceptance {
        if failures > 0 {
            failures -= 1
            throw CancellationError()
        }
        guard keys.insert(raw.key).inserted else {
            duplicates += 1
            return .duplicate
        }
        recorded.append(raw)
        guard let deadline = raw.replyDeadline else { return .recorded }
        if let work = commandWork, work > deadline {
            // Like the router: the work goes on; the ack carries a holding reply within the deadline.
            try? await Task.sleep(for: deadline)
            return .reply("working on it")
        }
        return reply.map { .reply($0) } ?? .recorded
    }
}
