import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    package func approvalPolicy(named name: String) throws(WorkflowError) -> ApprovalPolicy {
        guard let policy = policy.approvals[name] else {
            throw .invalid("policy", "'\(name)' is not a configured approval policy (configured: \(policy.approvals.keys.sorted().joined(separator: ", ")))")
        }
        return policy
    }

    func loadApproval(_ id: ApprovalID) async throws -> Versioned<Approval> {
        guard let found = try await store.approval(id) else { throw WorkflowError.notFound(EntityRef(kind: .approval, id: id.rawValue)) }
        return found
    }

    /// Creates an approval. With an idempotency key, a retry returns the approval the first call made
    /// (`created` false) instead of making another.
    package func requestApproval(_ request: ApprovalRequest, idempotencyKey: EventKey? = nil) async throws -> (approval: Approval, created: Bool) {
        let idempotencyKey = try bind(idempotencyKey, to: request)
        if let found = try await replay(idempotencyKey, kind: .approval, load: { try await store.approval(ApprovalID($0)) }) {
            return (found.value, false)
        }
        let policy = try approvalPolicy(named: request.policyName)
        let now = clock.now()
        let id = ApprovalID(try await nextID(.approval))
        let transition = try ApprovalMachine.create(id: id, request: request, policy: policy, now: now)
        if let winner = try await createOnce(transition.entity.ref, key: idempotencyKey, load: { try await store.approval(ApprovalID($0)) }, {
            try await commit(try changeSet(transition, expectedVersion: nil, event: idempotencyKey, now: now), now: now)
        }) {
            return (winner.value, false)
        }
        return (transition.entity, true)
    }

    /// The key with the request's fingerprint attached, so a reuse for another request is detected.
    func bind(_ key: EventKey?, to request: some Encodable) throws -> EventKey? {
        guard var key else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        let json = try JSONValue.decodeDocument(try encoder.encode(request))
        key.requestHash = json.canonicalHash
        return key
    }

    /// The entity an idempotency key already created, or nil when the key is new. A key used for a
    /// different kind of entity, or with a different request, is refused.
    func replay<E: Sendable>(_ key: EventKey?, kind: EntityKind, load: (Int64) async throws -> E?) async throws -> E? {
        guard let key, let record = try await store.eventRecord(source: key.source, key: key.key) else { return nil }
        guard let existing = record.entity else { throw WorkflowError.invalid("Idempotency-Key", "was already used") }
        guard existing.kind == kind, let found = try await load(existing.id) else {
            throw WorkflowError.invalid("Idempotency-Key", "was already used for a \(existing.kind.displayName)")
        }
        if let stored = record.requestHash, let now = key.requestHash, stored != now {
            throw WorkflowError.invalid(
                "Idempotency-Key", "was already used for a different request (\(existing.kind.displayName) #\(existing.id)); use a new key")
        }
        return found
    }

    /// Commits the creation of an entity under an idempotency key; nil when this call created it. When a
    /// concurrent request with the same key committed first (an agent retrying after its own timeout while
    /// the first attempt still waited on the database), the store refuses this one as a duplicate: answer
    /// with what the first one created, exactly as a later retry would get it.
    func createOnce<E: Sendable>(_ ref: EntityRef, key: EventKey?, load: (Int64) async throws -> E?,
                                 _ commitCreation: () async throws -> Void) async throws -> E?
    {
        do {
            try await retrying(ref) { try await commitCreation() }
            return nil
        } catch let error as WorkflowError where error.code == .duplicate {
            if let found = try await replay(key, kind: ref.kind, load: load) { return found }
            throw error
        }
    }

    package func approval(_ id: ApprovalID) async throws -> Approval { try await loadApproval(id).value }

    package func approvals(status: String? = nil, limit: Int = 50, before: ApprovalID? = nil) async throws -> [Approval] {
        if let status, !ApprovalStatus.allNames.contains(status) {
            throw WorkflowError.invalid("status", "must be one of \(ApprovalStatus.allNames.joined(separator: ", "))")
        }
        return try await store.approvals(status: status, limit: limit, before: before)
    }

    /// Applies one transition to a stored approval: read, decide and write in one transaction (see
    /// ``transition(_:id:event:_:)``).
    func mutateApproval(
        _ id: ApprovalID, event: EventKey?, _ decide: @escaping @Sendable (Approval, Date) throws -> Transition<Approval>
    ) async throws -> Approval {
        try await transition(Approval.self, id: id.rawValue, event: event, decide: decide)
    }

    /// Approve, reject (reason required) or ask for a revision (comment required). A second decision
    /// on a decided approval throws a ``WorkflowError`` that says who decided, and changes nothing.
    package func decide(
        _ id: ApprovalID, verdict: Verdict, comment: String?, by actor: Actor, argumentsHash: String? = nil, event: EventKey? = nil,
        allowDefaultReason: Bool = false
    ) async throws -> Approval {
        let directory = policy.directory
        return try await mutateApproval(id, event: event) { approval, now in
            try ApprovalMachine.decide(approval, verdict: verdict, comment: comment, by: actor, directory: directory, now: now,
                                       argumentsHash: argumentsHash, allowDefaultReason: allowDefaultReason)
        }
    }

    /// Why this actor could not decide now (for explaining a refused click privately), or nil.
    package func decisionRefusal(_ id: ApprovalID, by actor: Actor) async throws -> WorkflowError? {
        ApprovalMachine.refusal(for: actor, on: try await loadApproval(id).value, directory: policy.directory, now: clock.now())
    }

    package func withdrawVote(_ id: ApprovalID, by actor: Actor, event: EventKey? = nil) async throws -> Approval {
        try await mutateApproval(id, event: event) { approval, now in
            try ApprovalMachine.withdrawVote(approval, by: actor, now: now)
        }
    }

    package func cancelApproval(_ id: ApprovalID, by actor: Actor, reason: String?) async throws -> Approval {
        try await mutateApproval(id, event: nil) { approval, now in
            try ApprovalMachine.cancel(approval, by: actor, reason: reason, now: now)
        }
    }

    /// Uses the execution grant for exactly these arguments. Succeeds once.
    package func consume(_ id: ApprovalID, arguments: JSONValue, by actor: Actor) async throws -> Approval {
        try await consume(id, argumentsHash: arguments.canonicalHash, by: actor)
    }

    package func consume(_ id: ApprovalID, argumentsHash: String, by actor: Actor) async throws -> Approval {
        try await mutateApproval(id, event: nil) { approval, now in
            try ApprovalMachine.consume(approval, argumentsHash: argumentsHash, by: actor, now: now)
        }
    }

    package func reportOutcome(_ id: ApprovalID, outcome: Execution.Outcome, by actor: Actor) async throws -> Approval {
        try await mutateApproval(id, event: nil) { approval, now in
            try ApprovalMachine.reportOutcome(approval, outcome: outcome, by: actor, now: now)
        }
    }
}
