import Foundation
import HandoffCore
import HandoffTesting
import Testing

/// People and groups shared by the core suites.
enum People {
    static let alice = Actor("slack:alice")
    static let bob = Actor("slack:bob")
    static let carol = Actor("slack:carol")
    static let meg = Actor("slack:meg")
    static let mallory = Actor("slack:mallory")
    static let root = Actor("cli:root", isAdmin: true)
    static let agentBot: ActorID = "key:agent"

    static let directory = Directory(groups: [
        "approvers": ["slack:alice", "slack:bob", "slack:carol"],
        "managers": ["slack:meg"],
        "reviewers": ["slack:alice", "slack:bob", "slack:carol"],
        "agents": ["slack:ana", "slack:andy"],
        "experts": ["slack:eve"],
        "labelers": ["slack:alice", "slack:bob", "slack:carol"],
    ])
}

/// Asserts that `body` is refused with a ``WorkflowError`` of `code` whose message contains every
/// fragment given. Returns the error so a test can look closer.
@discardableResult
func expectRefusal<T>(
    _ code: WorkflowError.Code, _ fragments: String..., field: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T
) -> WorkflowError? {
    let value: T
    do {
        value = try body()
    } catch let error as WorkflowError {
        #expect(error.code == code, "message: \(error.message)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "'\(error.message)' should mention '\(fragment)'", sourceLocation: sourceLocation)
        }
        if let field { #expect(error.field == field, sourceLocation: sourceLocation) }
        return error
    } catch {
        Issue.record("expected a WorkflowError (\(code.rawValue)), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("expected a \(code.rawValue) refusal, but it succeeded with \(value)", sourceLocation: sourceLocation)
    return nil
}

/// `{"to": "acct-9", "amount": 250, "memo": "rent"}`-style arguments.
func args(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
    .object(Dictionary(uniqueKeysWithValues: pairs.map { ($0.key, $0.value) }))
}

extension Effect {
    var scheduledKind: TimerKind? {
        if case .schedule(let kind, _) = self { return kind }
        return nil
    }
}

extension Array where Element == Effect {
    func scheduled(_ kind: TimerKind) -> Date? {
        for effect in self { if case .schedule(kind, let at) = effect { return at } }
        return nil
    }

    var postedDestinations: [String] {
        compactMap { if case .postCard(let d) = $0 { d } else { nil } }
    }

    var notices: [Notice] {
        compactMap { if case .notify(let n) = $0 { n } else { nil } }
    }
}
