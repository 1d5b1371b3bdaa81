/// Everything an operator configures about the workflow: groups, approval policies, review queues,
/// routes, escalation tiers and feedback defaults. Decoded from the YAML policy file; every field has
/// a default, so an empty file is a working configuration.
package struct WorkflowPolicy: Hashable, Sendable, Codable {
    package var directory: Directory
    package var approvals: [String: ApprovalPolicy]
    package var queues: [String: QueueConfig]
    package var routes: [String: RouteConfig]
    package var escalation: EscalationConfig
    package var feedback: FeedbackConfig

    /// The groups the built-in defaults refer to, empty until the policy file lists people.
    package static let defaultGroups: [String: Set<ActorID>] = [
        "approvers": [], "reviewers": [], "agents": [], "experts": [], "labelers": [],
    ]

    package init(
        directory: Directory = Directory(groups: WorkflowPolicy.defaultGroups),
        approvals: [String: ApprovalPolicy] = ["default": ApprovalPolicy()],
        queues: [String: QueueConfig] = ["default": QueueConfig()],
        routes: [String: RouteConfig] = ["default": RouteConfig()],
        escalation: EscalationConfig = EscalationConfig(),
        feedback: FeedbackConfig = FeedbackConfig()
    ) {
        self.directory = directory
        self.approvals = approvals
        self.queues = queues
        self.routes = routes
        self.escalation = escalation
        self.feedback = feedback
    }

    enum CodingKeys: String, CodingKey {
        case groups, approvals, queues, routes, escalation, feedback
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let groups = try c.decodeIfPresent([String: [ActorID]?].self, forKey: .groups) {
            directory = Directory(groups: groups.mapValues { Set($0 ?? []) })
        } else {
            directory = Directory(groups: Self.defaultGroups)
        }
        approvals = try c.decodeIfPresent([String: ApprovalPolicy].self, forKey: .approvals) ?? ["default": ApprovalPolicy()]
        queues = try c.decodeIfPresent([String: QueueConfig].self, forKey: .queues) ?? ["default": QueueConfig()]
        routes = try c.decodeIfPresent([String: RouteConfig].self, forKey: .routes) ?? ["default": RouteConfig()]
        escalation = try c.decodeIfPresent(EscalationConfig.self, forKey: .escalation) ?? EscalationConfig()
        feedback = try c.decodeIfPresent(FeedbackConfig.self, forKey: .feedback) ?? FeedbackConfig()
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(directory.groups.mapValues { $0.sorted() }, forKey: .groups)
        try c.encode(approvals, forKey: .approvals)
        try c.encode(queues, forKey: .queues)
        try c.encode(routes, forKey: .routes)
        try c.encode(escalation, forKey: .escalation)
        try c.encode(feedback, forKey: .feedback)
    }

    /// Checks references between sections (a policy naming a group that does not exist, a route naming
    /// a missing queue, …) and returns one message per problem.
    package func problems() -> [String] {
        var out: [String] = []
        let groupNames = Set(directory.groups.keys)
        for (name, policy) in approvals.sorted(by: { $0.key < $1.key }) {
            for group in policy.deciders where group != Directory.anyone && !groupNames.contains(group) {
                out.append("approvals.\(name).deciders names group '\(group)', which is not under groups")
            }
            if case .escalate(let group, _) = policy.onExpiry, !groupNames.contains(group) {
                out.append("approvals.\(name).escalate_to names group '\(group)', which is not under groups")
            }
            if policy.quorum < 1 { out.append("approvals.\(name).quorum must be at least 1") }
        }
        for (name, queue) in queues.sorted(by: { $0.key < $1.key }) {
            if queue.reviewers.isEmpty { out.append("queues.\(name).reviewers is empty; list groups, or [\"*\"] to let anyone review") }
            for group in queue.reviewers where group != Directory.anyone && !groupNames.contains(group) {
                out.append("queues.\(name).reviewers names group '\(group)', which is not under groups")
            }
            if queue.reviewsRequired < 1 { out.append("queues.\(name).reviews_required must be at least 1") }
        }
        for (name, route) in routes.sorted(by: { $0.key < $1.key }) {
            if queues[route.queue] == nil {
                out.append("routes.\(name).queue names queue '\(route.queue)', which is not under queues")
            }
            if !(0...1).contains(route.threshold) { out.append("routes.\(name).threshold must be between 0 and 1") }
        }
        if escalation.tiers.count < 2 {
            out.append("escalation.tiers needs at least two tiers (where escalations come from, and who answers)")
        }
        for tier in escalation.tiers {
            if let group = tier.group, !groupNames.contains(group) {
                out.append("escalation tier '\(tier.name)' names group '\(group)', which is not under groups")
            }
        }
        if Set(escalation.tiers.map(\.name)).count != escalation.tiers.count {
            out.append("escalation tier names must be unique")
        }
        return out
    }
}

/// What happens when nobody decides an approval in time.
package enum ExpiryAction: Hashable, Sendable, Codable {
    /// The approval ends as `expired` (the action must not run).
    case reject
    /// The approval is approved by the system.
    case approve
    /// The deciders become another group, with a fresh deadline; a second expiry ends it as expired.
    case escalate(group: String, extra: Span)
    /// The deadline moves once; a second expiry ends it as expired.
    case extend(by: Span)

    package var name: String {
        switch self {
        case .reject: "reject"
        case .approve: "approve"
        case .escalate: "escalate"
        case .extend: "extend"
        }
    }
}

/// The rules one kind of approval follows.
package struct ApprovalPolicy: Hashable, Sendable, Codable {
    /// Groups whose members may decide.
    package var deciders: [String]
    /// How many distinct approvers must approve. A single reject or revision request decides at once.
    package var quorum: Int
    package var requesterMayDecide: Bool
    package var expiresAfter: Span
    package var onExpiry: ExpiryAction
    /// Used when someone rejects without a reason where the platform cannot ask (e.g. a ❌ reaction).
    package var defaultRejectReason: String?
    /// The channel binding where the card goes.
    package var channel: String

    package init(
        deciders: [String] = ["approvers"], quorum: Int = 1, requesterMayDecide: Bool = false,
        expiresAfter: Span = .hours(24), onExpiry: ExpiryAction = .reject, defaultRejectReason: String? = nil,
        channel: String = "approvals"
    ) {
        self.deciders = deciders
        self.quorum = quorum
        self.requesterMayDecide = requesterMayDecide
        self.expiresAfter = expiresAfter
        self.onExpiry = onExpiry
        self.defaultRejectReason = defaultRejectReason
        self.channel = channel
    }

    enum CodingKeys: String, CodingKey {
        case deciders, quorum, requesterMayDecide = "requester_may_decide", expiresAfter = "expires_after"
        case onExpiry = "on_expiry", escalateTo = "escalate_to", escalationWindow = "escalation_window"
        case extendBy = "extend_by", defaultRejectReason = "default_reject_reason", channel
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ApprovalPolicy()
        deciders = try c.decodeIfPresent([String].self, forKey: .deciders) ?? d.deciders
        quorum = try c.decodeIfPresent(Int.self, forKey: .quorum) ?? d.quorum
        requesterMayDecide = try c.decodeIfPresent(Bool.self, forKey: .requesterMayDecide) ?? d.requesterMayDecide
        expiresAfter = try c.decodeIfPresent(Span.self, forKey: .expiresAfter) ?? d.expiresAfter
        defaultRejectReason = try c.decodeIfPresent(String.self, forKey: .defaultRejectReason)
        channel = try c.decodeIfPresent(String.self, forKey: .channel) ?? d.channel
        let action = try c.decodeIfPresent(String.self, forKey: .onExpiry) ?? "reject"
        switch action {
        case "reject", "expire": onExpiry = .reject
        case "approve": onExpiry = .approve
        case "escalate":
            guard let group = try c.decodeIfPresent(String.self, forKey: .escalateTo) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .escalateTo, in: c, debugDescription: "on_expiry: escalate needs escalate_to: <group>")
            }
            let window = try c.decodeIfPresent(Span.self, forKey: .escalationWindow) ?? expiresAfter
            onExpiry = .escalate(group: group, extra: window)
        case "extend":
            let by = try c.decodeIfPresent(Span.self, forKey: .extendBy) ?? expiresAfter
            onExpiry = .extend(by: by)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .onExpiry, in: c, debugDescription: "on_expiry must be reject, approve, escalate or extend, not '\(action)'")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(deciders, forKey: .deciders)
        try c.encode(quorum, forKey: .quorum)
        try c.encode(requesterMayDecide, forKey: .requesterMayDecide)
        try c.encode(expiresAfter, forKey: .expiresAfter)
        try c.encode(onExpiry.name, forKey: .onExpiry)
        switch onExpiry {
        case .escalate(let group, let extra):
            try c.encode(group, forKey: .escalateTo)
            try c.encode(extra, forKey: .escalationWindow)
        case .extend(let by): try c.encode(by, forKey: .extendBy)
        case .reject, .approve: break
        }
        try c.encodeIfPresent(defaultRejectReason, forKey: .defaultRejectReason)
        try c.encode(channel, forKey: .channel)
    }
}

/// A named review queue.
package struct QueueConfig: Hashable, Sendable, Codable {
    /// How long a claim holds an item before it returns to the queue.
    package var lease: Span
    /// Items not completed within this time count as SLA breaches.
    package var sla: Span
    /// How many different reviewers must review each item.
    package var reviewsRequired: Int
    /// Groups whose members may claim; `["*"]` lets anyone (say so explicitly).
    package var reviewers: [String]
    package var channel: String

    package init(lease: Span = .minutes(15), sla: Span = .hours(4), reviewsRequired: Int = 1,
                 reviewers: [String] = ["reviewers"], channel: String = "reviews")
    {
        self.lease = lease
        self.sla = sla
        self.reviewsRequired = reviewsRequired
        self.reviewers = reviewers
        self.channel = channel
    }

    enum CodingKeys: String, CodingKey {
        case lease, sla, reviewsRequired = "reviews_required", reviewers, channel
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = QueueConfig()
        lease = try c.decodeIfPresent(Span.self, forKey: .lease) ?? d.lease
        sla = try c.decodeIfPresent(Span.self, forKey: .sla) ?? d.sla
        reviewsRequired = try c.decodeIfPresent(Int.self, forKey: .reviewsRequired) ?? d.reviewsRequired
        reviewers = try c.decodeIfPresent([String].self, forKey: .reviewers) ?? d.reviewers
        channel = try c.decodeIfPresent(String.self, forKey: .channel) ?? d.channel
    }
}

/// A confidence route: answers at or above the threshold go to the user, the rest to the queue.
package struct RouteConfig: Hashable, Sendable, Codable {
    package var threshold: Double
    package var queue: String
    /// Below this the conversation is escalated to a person instead of queued for review.
    package var escalationFloor: Double?
    package var priority: Priority

    package init(threshold: Double = 0.8, queue: String = "default", escalationFloor: Double? = nil,
                 priority: Priority = .medium)
    {
        self.threshold = threshold
        self.queue = queue
        self.escalationFloor = escalationFloor
        self.priority = priority
    }

    enum CodingKeys: String, CodingKey {
        case threshold, queue, escalationFloor = "escalation_floor", priority
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RouteConfig()
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? d.threshold
        queue = try c.decodeIfPresent(String.self, forKey: .queue) ?? d.queue
        escalationFloor = try c.decodeIfPresent(Double.self, forKey: .escalationFloor)
        priority = try c.decodeIfPresent(Priority.self, forKey: .priority) ?? d.priority
    }
}

/// One escalation tier: who answers, where, and how long they have.
package struct EscalationTier: Hashable, Sendable, Codable {
    package var name: String
    /// The group whose members claim and resolve at this tier; nil for the AI tier.
    package var group: String?
    /// Unclaimed for this long → next tier (or breached at the top).
    package var sla: Span
    /// Claimed but unresolved for this long → re-opened at the same tier.
    package var ackTimeout: Span
    package var channel: String

    package init(name: String, group: String?, sla: Span = .minutes(30), ackTimeout: Span = .hours(2), channel: String? = nil) {
        self.name = name
        self.group = group
        self.sla = sla
        self.ackTimeout = ackTimeout
        self.channel = channel ?? name
    }

    enum CodingKeys: String, CodingKey { case name, group, sla, ackTimeout = "ack_timeout", channel }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        sla = try c.decodeIfPresent(Span.self, forKey: .sla) ?? .minutes(30)
        ackTimeout = try c.decodeIfPresent(Span.self, forKey: .ackTimeout) ?? .hours(2)
        channel = try c.decodeIfPresent(String.self, forKey: .channel) ?? name
    }
}

package struct EscalationConfig: Hashable, Sendable, Codable {
    /// Ordered lowest first. The default is ai → agent → expert.
    package var tiers: [EscalationTier]
    /// A user message containing one of these (case- and punctuation-insensitive) asks for a person.
    package var phrases: [String]
    /// An AI answer containing one of these admits it cannot help.
    package var cannotHelpPhrases: [String]

    package static let defaultTiers = [
        EscalationTier(name: "ai", group: nil, sla: 0, ackTimeout: 0, channel: "ai"),
        EscalationTier(name: "agent", group: "agents", sla: .minutes(30), ackTimeout: .hours(2), channel: "agents"),
        EscalationTier(name: "expert", group: "experts", sla: .hours(4), ackTimeout: .hours(8), channel: "experts"),
    ]
    package static let defaultPhrases = [
        "talk to a human", "speak to a human", "talk to a person", "speak to a person", "real person",
        "a real human", "human agent", "i want a person", "i need a person", "i want a human", "i need a human",
        "escalate", "talk to someone", "speak to someone", "representative", "customer service",
    ]
    package static let defaultCannotHelpPhrases = [
        "i can't help", "i cannot help", "i am unable to", "i'm unable to", "i am not able to", "i'm not able to",
        "i don't know", "i do not know", "i'm not sure i can", "beyond my capabilities", "i can't assist",
        "i cannot assist",
    ]

    package init(tiers: [EscalationTier] = Self.defaultTiers, phrases: [String] = Self.defaultPhrases,
                 cannotHelpPhrases: [String] = Self.defaultCannotHelpPhrases)
    {
        self.tiers = tiers
        self.phrases = phrases
        self.cannotHelpPhrases = cannotHelpPhrases
    }

    enum CodingKeys: String, CodingKey { case tiers, phrases, cannotHelpPhrases = "cannot_help_phrases" }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tiers = try c.decodeIfPresent([EscalationTier].self, forKey: .tiers) ?? Self.defaultTiers
        phrases = try c.decodeIfPresent([String].self, forKey: .phrases) ?? Self.defaultPhrases
        cannotHelpPhrases = try c.decodeIfPresent([String].self, forKey: .cannotHelpPhrases) ?? Self.defaultCannotHelpPhrases
    }

    /// The first tier people answer at (the first with a group).
    package var firstHumanTier: Int { tiers.firstIndex { $0.group != nil } ?? min(1, tiers.count - 1) }
}

package struct FeedbackConfig: Hashable, Sendable, Codable {
    package var deadline: Span

    package init(deadline: Span = .hours(24)) { self.deadline = deadline }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deadline = try c.decodeIfPresent(Span.self, forKey: .deadline) ?? .hours(24)
    }
}
