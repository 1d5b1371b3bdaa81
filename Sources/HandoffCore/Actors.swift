/// Who did something: a platform identity (`slack:U123`, `matrix:@alice:localhost`), an API key
/// (`key:ops-bot`), a command-line operator (`cli:root`) or the workflow itself (`system`).
package struct ActorID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    package let rawValue: String

    package init(rawValue: String) { self.rawValue = rawValue }
    package init(_ rawValue: String) { self.rawValue = rawValue }
    package init(stringLiteral value: String) { self.rawValue = value }

    package static let system: ActorID = "system"

    /// `slack` in `slack:U123`; empty when there is no prefix.
    package var namespace: Substring {
        guard let colon = rawValue.firstIndex(of: ":") else { return "" }
        return rawValue[..<colon]
    }

    /// `U123` in `slack:U123`.
    package var localPart: Substring {
        guard let colon = rawValue.firstIndex(of: ":") else { return rawValue[...] }
        return rawValue[rawValue.index(after: colon)...]
    }

    package var description: String { rawValue }
    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    package init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// The actor of one act: who, and whether they act with administrator rights (an admin API key or
/// the operator at the command line), which stand in for group membership but never for the
/// requester rule.
package struct Actor: Hashable, Sendable, Codable {
    package var id: ActorID
    package var isAdmin: Bool

    package init(_ id: ActorID, isAdmin: Bool = false) {
        self.id = id
        self.isAdmin = isAdmin
    }

    package static let system = Actor(.system, isAdmin: true)
}

/// Named groups of identities, from the policy file: `approvers: [slack:U123, key:alice]`.
package struct Directory: Hashable, Sendable, Codable {
    package var groups: [String: Set<ActorID>]

    package init(groups: [String: Set<ActorID>] = [:]) { self.groups = groups }

    package func isMember(_ actor: ActorID, of group: String) -> Bool {
        groups[group]?.contains(actor) ?? false
    }

    /// Stands for "anyone" in a list of groups; it must be written out, never a default.
    package static let anyone = "*"

    /// True when the actor may act for one of the groups (admins may act for any; `"*"` lets anyone).
    package func mayActFor(_ actor: Actor, anyOf groups: [String]) -> Bool {
        actor.isAdmin || groups.contains { $0 == Directory.anyone || isMember(actor.id, of: $0) }
    }

    package func groups(of actor: ActorID) -> [String] {
        groups.filter { $0.value.contains(actor) }.map(\.key).sorted()
    }
}
