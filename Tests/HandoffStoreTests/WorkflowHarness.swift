import Foundation
import HandoffCore
import HandoffStore
import HandoffTesting
import HandoffWorkflow
import Testing

/// A workflow on a real SQLite file with a manual clock. Several workflows can be opened on the same
/// file (a restart, or a second instance).
struct WorkflowHarness: Sendable {
    let directory: TemporaryDirectory
    let clock: ManualClock
    let policy: WorkflowPolicy

    var path: String { directory.file("handoff.sqlite") }

    static let policy: WorkflowPolicy = {
        var policy = WorkflowPolicy(
            directory: Directory(groups: [
                "approvers": ["slack:alice", "slack:bob", "slack:carol"],
                "managers": ["slack:meg"],
                "reviewers": ["slack:alice", "slack:bob", "slack:carol"],
                "agents": ["slack:ana", "slack:andy"],
                "experts": ["slack:eve"],
                "labelers": ["slack:alice", "slack:bob", "slack:carol"],
            ]),
            approvals: [
                "default": ApprovalPolicy(expiresAfter: .hours(1)),
                "pair": ApprovalPolicy(quorum: 2, expiresAfter: .hours(1)),
                "escalating": ApprovalPolicy(expiresAfter: .hours(1), onExpiry: .escalate(group: "managers", extra: .hours(1))),
            ],
            queues: [
                "default": QueueConfig(lease: .minutes(15), sla: .hours(4), reviewers: ["reviewers"]),
                "double": QueueConfig(lease: .minutes(15), sla: .hours(4), reviewsRequired: 2, reviewers: ["reviewers"]),
            ])
        policy.routes = ["default": RouteConfig(threshold: 0.8, queue: "default", escalationFloor: 0.2)]
        return policy
    }()

    init(policy: WorkflowPolicy = WorkflowHarness.policy) throws {
        directory = try TemporaryDirectory(prefix: "handoff-workflow")
        clock = ManualClock()
        self.policy = policy
    }

    /// A new workflow (with its own connection pool) on the harness's database file.
    func open() async throws -> Workflow {
        let store = try await SQLWorkflowStore(database: SQLiteDatabase(path: path))
        return Workflow(store: store, clock: clock, configuration: Workflow.Configuration(policy: policy))
    }

    /// Runs `body` with one open workflow, then closes it and removes the file.
    static func with<T>(policy: WorkflowPolicy = WorkflowHarness.policy,
                        _ body: (WorkflowHarness, Workflow) async throws -> T) async throws -> T {
        let harness = try WorkflowHarness(policy: policy)
        defer { harness.directory.remove() }
        let workflow = try await harness.open()
        do {
            let result = try await body(harness, workflow)
            try await workflow.store.close()
            return result
        } catch {
            try? await workflow.store.close()
            throw error
        }
    }
}

enum Who {
    static let alice = Actor("slack:alice")
    static let bob = Actor("slack:bob")
    static let carol = Actor("slack:carol")
    static let meg = Actor("slack:meg")
    static let ana = Actor("slack:ana")
    static let eve = Actor("slack:eve")
    static let agent = Actor("key:agent")
}

/// Asserts that `body` throws a ``WorkflowError`` with `code`; returns it.
@discardableResult
func expectWorkflowError<T>(
    _ code: WorkflowError.Code, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> WorkflowError? {
    do {
        _ = try await body()
        Issue.record("expected a \(code.rawValue) error, but it succeeded", sourceLocation: sourceLocation)
    } catch let error as WorkflowError {
        #expect(error.code == code, "message: \(error.message)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "'\(error.message)' should mention '\(fragment)'", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a WorkflowError (\(code.rawValue)), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Parses one JSON object.
func jsonObject(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(value as? [String: Any], sourceLocation: sourceLocation)
}

/// A JSON number read back by `JSONSerialization`, whatever type it arrived as.
func number(_ value: Any?) -> Double? {
    if let i = value as? Int { return Double(i) }
    if let d = value as? Double { return d }
    if let n = value as? NSNumber { return n.doubleValue }
    return nil
}
