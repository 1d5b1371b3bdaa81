import Foundation

/// "May I do X with these arguments?" — one request from an agent, and what people decided.
package struct Approval: Hashable, Sendable, Codable {
    package var id: ApprovalID
    package var action: String
    package var arguments: JSONValue
    /// SHA-256 of the canonical arguments; a decision and the execution grant are bound to it.
    package var argumentsHash: String
    /// A human-readable summary shown on the card.
    package var summary: String?
    package var requester: ActorID
    /// Opaque state the caller gets back with the decision.
    package var callerState: JSONValue?
    package var callbackURL: String?
    package var policyName: String
    package var policy: ApprovalPolicy
    /// Groups who may decide now (the policy's, or the escalation group after expiry escalated it).
    package var deciders: [String]
    package var createdAt: Date
    package var expiresAt: Date
    package var expiryStage: ExpiryStage
    /// Approvals so far, toward the quorum.
    package var votes: [Vote]
    package var status: ApprovalStatus
    package var execution: Execution

    package enum ExpiryStage: String, Hashable, Sendable, Codable {
        case initial, extended, escalated
    }

    package struct Vote: Hashable, Sendable, Codable {
        package var by: ActorID
        package var at: Date
        package var comment: String?
    }

    package var ref: EntityRef { EntityRef(kind: .approval, id: id.rawValue) }
}

/// The outcome of a decision, kept with the approval.
package struct Decision: Hashable, Sendable, Codable {
    /// Who decided: the approvers that made the quorum, or the one who rejected.
    package var by: [ActorID]
    package var at: Date
    package var comment: String?
    /// The arguments hash the decision covers.
    package var argumentsHash: String
    /// True when the expiry policy decided, not a person.
    package var automatic: Bool

    package init(by: [ActorID], at: Date, comment: String?, argumentsHash: String, automatic: Bool = false) {
        self.by = by
        self.at = at
        self.comment = comment
        self.argumentsHash = argumentsHash
        self.automatic = automatic
    }
}

package enum ApprovalStatus: Hashable, Sendable, Codable {
    case pending
    case approved(Decision)
    case rejected(Decision)
    case needsRevision(Decision)
    case expired(at: Date)
    case cancelled(by: ActorID, at: Date, reason: String?)

    package var name: String {
        switch self {
        case .pending: "pending"
        case .approved: "approved"
        case .rejected: "rejected"
        case .needsRevision: "needs_revision"
        case .expired: "expired"
        case .cancelled: "cancelled"
        }
    }

    package static let allNames = ["pending", "approved", "rejected", "needs_revision", "expired", "cancelled"]

    package var decision: Decision? {
        switch self {
        case .approved(let d), .rejected(let d), .needsRevision(let d): d
        case .pending, .expired, .cancelled: nil
        }
    }

    package var isPending: Bool { self == .pending }
}

/// The execution grant of an approved request: used once, then its outcome is reported.
package enum Execution: Hashable, Sendable, Codable {
    case unused
    case consumed(at: Date, by: ActorID)
    case finished(consumedAt: Date, by: ActorID, outcome: Outcome, reportedAt: Date)

    package enum Outcome: Hashable, Sendable, Codable {
        case succeeded
        case failed(message: String)
    }

    package var name: String {
        switch self {
        case .unused: "unused"
        case .consumed: "consumed"
        case .finished(_, _, .succeeded, _): "succeeded"
        case .finished(_, _, .failed, _): "failed"
        }
    }
}

/// What a decider chooses.
package enum Verdict: String, Hashable, Sendable, Codable, CaseIterable {
    case approve, reject, revise

    package init?(word: String) {
        switch word.lowercased() {
        case "approve", "approved", "yes", "ok": self = .approve
        case "reject", "rejected", "deny", "no": self = .reject
        case "revise", "revision", "needs_revision", "needs-revision": self = .revise
        default: return nil
        }
    }
}

/// What an agent asks for.
package struct ApprovalRequest: Hashable, Sendable, Codable {
    package var action: String
    package var arguments: JSONValue
    package var summary: String?
    package var requester: ActorID
    package var callerState: JSONValue?
    package var callbackURL: String?
    package var policyName: String

    package init(action: String, arguments: JSONValue, summary: String? = nil, requester: ActorID,
                 callerState: JSONValue? = nil, callbackURL: String? = nil, policyName: String = "default")
    {
        self.action = action
        self.arguments = arguments
        self.summary = summary
        self.requester = requester
        self.callerState = callerState
        self.callbackURL = callbackURL
        self.policyName = policyName
    }
}

/// The approval rules. Pure functions: entity in, transition out; refusals are thrown and change nothing.
package enum ApprovalMachine {
    package static let maxActionLength = 200
    package static let maxCommentLength = 2000

    package static func create(
        id: ApprovalID, request: ApprovalRequest, policy: ApprovalPolicy, now: Date
    ) throws(WorkflowError) -> Transition<Approval> {
        let action = request.action.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !action.isEmpty else { throw .invalid("action", "is required") }
        guard action.count <= maxActionLength else {
            throw .invalid("action", "is longer than \(maxActionLength) characters")
        }
        guard !request.requester.rawValue.isEmpty else { throw .invalid("requester", "is required") }
        guard policy.quorum >= 1 else { throw .invalid("policy", "'\(request.policyName)' needs a quorum of at least 1") }
        guard !policy.deciders.isEmpty else { throw .invalid("policy", "'\(request.policyName)' names no decider groups") }
        if let url = request.callbackURL {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", parsed.host != nil
            else { throw .invalid("callback_url", "must be an http or https URL") }
        }
        let approval = Approval(
            id: id, action: action, arguments: request.arguments, argumentsHash: request.arguments.canonicalHash,
            summary: request.summary, requester: request.requester, callerState: request.callerState,
            callbackURL: request.callbackURL, policyName: request.policyName, policy: policy,
            deciders: policy.deciders, createdAt: now, expiresAt: now + policy.expiresAfter,
            expiryStage: .initial, votes: [], status: .pending, execution: .unused)
        return Transition(
            entity: approval,
            audit: [AuditEvent(at: now, actor: request.requester, entity: approval.ref, from: nil, to: "pending",
                               detail: "requested \(action)")],
            effects: [.schedule(.expiry, at: approval.expiresAt), .postCard(destination: policy.channel)])
    }

    /// Why an actor may not decide, or nil when they may.
    package static func refusal(for actor: Actor, on approval: Approval, directory: Directory, now: Date) -> WorkflowError? {
        if let stateError = closedError(approval, now: now) { return stateError }
        if actor.id == approval.requester && !approval.policy.requesterMayDecide {
            return .notAllowed("the requester cannot decide their own request (approval #\(approval.id))")
        }
        if !directory.mayActFor(actor, anyOf: approval.deciders) {
            let groups = approval.deciders.joined(separator: ", ")
            return .notAllowed("you are not an approver for approval #\(approval.id) (deciders: \(groups))")
        }
        return nil
    }

    private static func closedError(_ approval: Approval, now: Date) -> WorkflowError? {
        switch approval.status {
        case .pending:
            if now >= approval.expiresAt { return .wrongState("approval #\(approval.id) has expired") }
            return nil
        case .approved(let d), .rejected(let d), .needsRevision(let d):
            let who = d.automatic ? "the expiry policy" : d.by.map { "@\($0)" }.joined(separator: ", ")
            let what = approval.status.name.replacingOccurrences(of: "_", with: " ")
            return .wrongState("approval #\(approval.id) was already decided (\(what)) by \(who)")
        case .expired:
            return .wrongState("approval #\(approval.id) has expired")
        case .cancelled(let by, _, _):
            return .wrongState("approval #\(approval.id) was cancelled by @\(by)")
        }
    }

    /// A decision. Compare-and-set: only a pending, unexpired approval accepts one.
    package static func decide(
        _ approval: Approval, verdict: Verdict, comment rawComment: String?, by actor: Actor,
        directory: Directory, now: Date, argumentsHash: String? = nil, allowDefaultReason: Bool = false
    ) throws(WorkflowError) -> Transition<Approval> {
        if let refusal = refusal(for: actor, on: approval, directory: directory, now: now) { throw refusal }
        if let seen = argumentsHash, seen != approval.argumentsHash {
            throw .invalid("arguments_hash", "does not match approval #\(approval.id): its arguments are not the ones you reviewed")
        }
        let comment = rawComment?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty
        if let comment, comment.count > maxCommentLength {
            throw .invalid("comment", "is longer than \(maxCommentLength) characters")
        }
        var next = approval
        let decision: Decision
        switch verdict {
        case .approve:
            if approval.votes.contains(where: { $0.by == actor.id }) {
                let missing = approval.policy.quorum - approval.votes.count
                throw .wrongState("you already approved approval #\(approval.id); waiting for \(missing) more")
            }
            next.votes.append(.init(by: actor.id, at: now, comment: comment))
            if next.votes.count < approval.policy.quorum {
                let remaining = approval.policy.quorum - next.votes.count
                return Transition(
                    entity: next,
                    audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "pending", to: "pending",
                                       detail: "approval \(next.votes.count) of \(approval.policy.quorum); \(remaining) more needed")],
                    effects: [.updateCards])
            }
            let comments = next.votes.compactMap(\.comment)
            decision = Decision(by: next.votes.map(\.by), at: now, comment: comments.isEmpty ? nil : comments.joined(separator: "; "),
                                argumentsHash: approval.argumentsHash)
            next.status = .approved(decision)
        case .reject:
            // The policy's default reason stands in only where the platform cannot ask (a ❌ reaction).
            guard let reason = comment ?? (allowDefaultReason ? approval.policy.defaultRejectReason : nil) else {
                throw .invalid("reason", "is required to reject (say why, e.g. `reject \(approval.id) too risky`)")
            }
            decision = Decision(by: [actor.id], at: now, comment: reason, argumentsHash: approval.argumentsHash)
            next.status = .rejected(decision)
        case .revise:
            guard let comment else {
                throw .invalid("comment", "is required to ask for a revision (say what to change)")
            }
            decision = Decision(by: [actor.id], at: now, comment: comment, argumentsHash: approval.argumentsHash)
            next.status = .needsRevision(decision)
        }
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "pending", to: next.status.name,
                               detail: decision.comment)],
            effects: [.cancel(.expiry), .updateCards, .webhook(event: "approval.decided")])
    }

    /// Takes back an approval vote before the quorum is reached (e.g. a ✅ reaction removed).
    package static func withdrawVote(_ approval: Approval, by actor: Actor, now: Date) throws(WorkflowError) -> Transition<Approval> {
        guard approval.status.isPending else {
            throw .wrongState("approval #\(approval.id) is already \(approval.status.name); a vote cannot be taken back")
        }
        guard let index = approval.votes.firstIndex(where: { $0.by == actor.id }) else {
            throw .wrongState("you have not approved approval #\(approval.id)")
        }
        var next = approval
        next.votes.remove(at: index)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "pending", to: "pending",
                               detail: "vote withdrawn; \(next.votes.count) of \(approval.policy.quorum)")],
            effects: [.updateCards])
    }

    /// The requester (or an admin) withdraws a pending request.
    package static func cancel(_ approval: Approval, by actor: Actor, reason: String?, now: Date) throws(WorkflowError) -> Transition<Approval> {
        guard actor.id == approval.requester || actor.isAdmin else {
            throw .notAllowed("only the requester or an admin can cancel approval #\(approval.id)")
        }
        guard approval.status.isPending else {
            throw .wrongState("approval #\(approval.id) is already \(approval.status.name)")
        }
        var next = approval
        next.status = .cancelled(by: actor.id, at: now, reason: reason?.nilIfEmpty)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "pending", to: "cancelled", detail: reason)],
            effects: [.cancel(.expiry), .updateCards, .webhook(event: "approval.cancelled")])
    }

    /// Uses the execution grant. Only an approved request whose arguments hash matches, and only once.
    package static func consume(
        _ approval: Approval, argumentsHash: String, by actor: Actor, now: Date
    ) throws(WorkflowError) -> Transition<Approval> {
        guard actor.id == approval.requester || actor.isAdmin else {
            throw .notAllowed("only the requester of approval #\(approval.id) can use its execution grant")
        }
        guard case .approved = approval.status else {
            throw .wrongState("approval #\(approval.id) is \(approval.status.name.replacingOccurrences(of: "_", with: " ")); there is nothing to execute")
        }
        guard argumentsHash == approval.argumentsHash else {
            throw .notAllowed("the arguments differ from the approved ones (approval #\(approval.id)); execution refused")
        }
        guard case .unused = approval.execution else {
            throw .wrongState("the execution grant of approval #\(approval.id) was already used")
        }
        var next = approval
        next.execution = .consumed(at: now, by: actor.id)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "unused", to: "consumed", detail: "execution grant used")],
            effects: [.updateCards])
    }

    /// Records how the execution went.
    package static func reportOutcome(
        _ approval: Approval, outcome: Execution.Outcome, by actor: Actor, now: Date
    ) throws(WorkflowError) -> Transition<Approval> {
        guard actor.id == approval.requester || actor.isAdmin else {
            throw .notAllowed("only the requester of approval #\(approval.id) can report its outcome")
        }
        guard case .consumed(let at, let by) = approval.execution else {
            if case .finished = approval.execution {
                throw .wrongState("the outcome of approval #\(approval.id) was already reported")
            }
            throw .wrongState("approval #\(approval.id) has not been executed; consume the grant first")
        }
        if case .failed(let message) = outcome, message.trimmingCharacters(in: .whitespaces).isEmpty {
            throw .invalid("message", "is required when the execution failed")
        }
        var next = approval
        next.execution = .finished(consumedAt: at, by: by, outcome: outcome, reportedAt: now)
        return Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: approval.ref, from: "consumed", to: next.execution.name,
                               detail: { if case .failed(let m) = outcome { return m } else { return nil } }())],
            effects: [.updateCards, .webhook(event: "approval.executed")])
    }

    /// The expiry timer fired. Returns nil when there is nothing to do (already decided).
    package static func expire(_ approval: Approval, now: Date) -> Transition<Approval>? {
        guard approval.status.isPending else { return nil }
        guard now >= approval.expiresAt else {
            return Transition(entity: approval, effects: [.schedule(.expiry, at: approval.expiresAt)])
        }
        var next = approval
        func ended(_ status: ApprovalStatus, _ detail: String) -> Transition<Approval> {
            next.status = status
            return Transition(
                entity: next,
                audit: [AuditEvent(at: now, actor: .system, entity: approval.ref, from: "pending", to: status.name, detail: detail)],
                effects: [.updateCards, .webhook(event: "approval.decided")])
        }
        if approval.expiryStage != .initial {
            return ended(.expired(at: now), "expired again after \(approval.expiryStage.rawValue)")
        }
        switch approval.policy.onExpiry {
        case .reject:
            return ended(.expired(at: now), "nobody decided in time")
        case .approve:
            let decision = Decision(by: [.system], at: now, comment: "approved automatically: nobody decided in time",
                                    argumentsHash: approval.argumentsHash, automatic: true)
            return ended(.approved(decision), "approved by the expiry policy")
        case .extend(let by):
            next.expiresAt = now + by
            next.expiryStage = .extended
            return Transition(
                entity: next,
                audit: [AuditEvent(at: now, actor: .system, entity: approval.ref, from: "pending", to: "pending",
                                   detail: "deadline extended once by \(by)")],
                effects: [.schedule(.expiry, at: next.expiresAt), .updateCards])
        case .escalate(let group, let extra):
            next.expiresAt = now + extra
            next.expiryStage = .escalated
            next.deciders = [group]
            next.votes = []
            return Transition(
                entity: next,
                audit: [AuditEvent(at: now, actor: .system, entity: approval.ref, from: "pending", to: "pending",
                                   detail: "nobody decided in time; escalated to \(group)")],
                effects: [.schedule(.expiry, at: next.expiresAt), .updateCards, .postCard(destination: group)])
        }
    }
}

extension String {
    package var nilIfEmpty: String? { isEmpty ? nil : self }
}
