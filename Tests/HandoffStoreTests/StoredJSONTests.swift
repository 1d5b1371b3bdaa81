import Foundation
import HandoffCore
@testable import HandoffStore
import Testing

/// Rows written by Foundation's coders (every database before ``JSONValueCoder``) read back the same, and
/// rows written now read back the same through Foundation's coders: for every entity, in several states.
@Suite("Stored JSON: the store's coder and Foundation's agree on every entity")
struct StoredJSONTests {
    func foundation() -> (JSONEncoder, JSONDecoder) {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .millisecondsSince1970
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return (e, d)
    }

    func roundTrips<E: Codable & Equatable>(_ value: E, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (encoder, decoder) = foundation()
        let old = String(decoding: try encoder.encode(value), as: UTF8.self)
        #expect(try StoreJSON.decode(E.self, from: old) == value, "reading Foundation's \(E.self)", sourceLocation: sourceLocation)
        let new = try StoreJSON.encode(value)
        #expect(try decoder.decode(E.self, from: Data(new.utf8)) == value, "Foundation reading our \(E.self)", sourceLocation: sourceLocation)
        #expect(try StoreJSON.decode(E.self, from: new) == value, "our \(E.self) round trip", sourceLocation: sourceLocation)
        #expect(JSONValue.parseStrict(new.utf8) == JSONValue.parseStrict(old.utf8), "the same JSON as Foundation's for \(E.self)",
                sourceLocation: sourceLocation)
    }

    @Test func everyEntityInSeveralStates() throws {
        let f = Fixtures()
        let alice = Actor("slack:alice")
        let directory = Directory(groups: ["approvers": ["slack:alice", "slack:bob"]])

        let approval = try f.approval(1, callbackURL: "https://example.com/hook").entity
        try roundTrips(approval)
        let decided = try ApprovalMachine.decide(approval, verdict: .approve, comment: "ship it", by: alice, directory: directory, now: f.now).entity
        try roundTrips(decided)
        let consumed = try ApprovalMachine.consume(decided, argumentsHash: decided.argumentsHash, by: Actor("key:agent"), now: f.now).entity
        try roundTrips(consumed)
        try roundTrips(try ApprovalMachine.reportOutcome(consumed, outcome: .failed(message: "disk full"), by: Actor("key:agent"), now: f.now).entity)
        try roundTrips(try ApprovalMachine.decide(approval, verdict: .reject, comment: "not now", by: alice, directory: directory, now: f.now).entity)

        let item = try f.reviewItem(2).entity
        try roundTrips(item)
        let queue = QueueConfig(reviewers: ["*"])
        let claimed = try ReviewMachine.claim(item, by: alice, queue: queue, directory: directory, now: f.now).entity
        try roundTrips(claimed)
        try roundTrips(try ReviewMachine.submit(claimed, verdict: .rejected, feedback: "wrong", correctedAnswer: "right", by: alice, now: f.now).entity)

        try roundTrips(try f.escalation(3).entity)
        try roundTrips(try f.feedback(4).entity)
        try roundTrips(try f.correction(5, query: "refund window?").entity)
        let task = try f.labelTask(6).entity
        try roundTrips(task)
        for value: LabelValue in [.choice("positive"), .rating(4), .text("a \"quoted\" note"), .span(start: 3, end: 17),
                                  .boundingBox(x: 1.5, y: 2, width: 30.25, height: 4)] {
            try roundTrips(value)
        }
    }
}
