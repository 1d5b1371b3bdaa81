import Foundation
import HandoffCore

/// A run of text with just enough structure for every platform's markup: plain text (always
/// escaped), bold, code, a person (a mention where the platform has one), a date (localized where the
/// platform can). Untrusted text only ever goes into `.text`, `.bold` or `.code`.
package enum Inline: Hashable, Sendable {
    case text(String)
    case bold(String)
    case code(String)
    /// A multi-line preformatted block (arguments, AI answers).
    case codeBlock(String)
    /// A command a person can type (`resolve 42 <answer>`), shown with the platform's own command
    /// syntax: `/handoff resolve …` on Slack, `!handoff resolve …` on Matrix (which has no slash commands).
    case command(String)
    case user(ActorID)
    case date(Date)
}

/// Text made of ``Inline`` runs.
package struct RichText: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    package var runs: [Inline]

    package init(_ runs: [Inline]) { self.runs = runs }
    package init(stringLiteral value: String) { runs = [.text(value)] }
    package static func plain(_ s: String) -> RichText { RichText([.text(s)]) }

    package var isEmpty: Bool {
        runs.allSatisfy {
            switch $0 {
            case .text(let s), .bold(let s), .code(let s), .codeBlock(let s): s.isEmpty
            case .command, .user, .date: false
            }
        }
    }

    package static func + (lhs: RichText, rhs: RichText) -> RichText { RichText(lhs.runs + rhs.runs) }
    package static func += (lhs: inout RichText, rhs: RichText) { lhs.runs += rhs.runs }

    /// Plain text for logs and platforms without markup: people as their ids, dates in ISO 8601 UTC.
    package var description: String {
        runs.map { run in
            switch run {
            case .text(let s), .bold(let s), .code(let s): s
            case .codeBlock(let s): "\n" + s + "\n"
            case .command(let s): Command.slashCommand(s)
            case .user(let id): "@\(id.localPart)"
            case .date(let d): RichText.isoFormatter(d)
            }
        }.joined()
    }

    package static func isoFormatter(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
            .timeSeparator(.colon)) + " UTC"
    }
}

/// Which template renders a card.
package enum CardKind: String, Hashable, Sendable, CaseIterable {
    case approvalRequest = "approval_request"
    case approvalDecided = "approval_decided"
    case escalation
    case reviewItem = "review_item"
    case feedbackRequest = "feedback_request"
    case labelingTask = "labeling_task"
    case help
}

/// What a card button does. The button's action id is `rawValue` (plus `:n` for choices); its value
/// names the entity (`approval:42`), so a click is tied to an entity even before the card ref is read.
package enum CardAction: Hashable, Sendable {
    case approve, reject, revise, claim, escalate
    /// A feedback answer or a label choice, by its text.
    case answer(String, index: Int)

    package var actionID: String {
        switch self {
        case .approve: "approve"
        case .reject: "reject"
        case .revise: "revise"
        case .claim: "claim"
        case .escalate: "escalate"
        case .answer(_, let index): "answer:\(index)"
        }
    }
}

/// A card button.
package struct CardButton: Hashable, Sendable {
    package enum Style: String, Hashable, Sendable {
        case primary, danger, plain
    }

    package var action: CardAction
    package var label: String
    package var value: String
    package var style: Style

    package init(_ action: CardAction, label: String, value: String, style: Style = .plain) {
        self.action = action
        self.label = label
        self.value = value
        self.style = style
    }
}

package struct CardField: Hashable, Sendable {
    package var label: String
    package var value: RichText

    package init(_ label: String, _ value: RichText) {
        self.label = label
        self.value = value
    }
}

/// One card, the same on every platform: rendered per platform from the templates in `templates/cards/`.
package struct Card: Hashable, Sendable {
    package var kind: CardKind
    package var entity: EntityRef?
    /// A short plain title (shown as a header).
    package var title: String
    package var body: RichText?
    package var fields: [CardField]
    package var buttons: [CardButton]
    /// Where things stand: who decided, when, with what comment; or what it is waiting for.
    package var stateLine: RichText?
    /// The id and how to act on it.
    package var footer: RichText?
    /// Shown where cards cannot be (notifications, old clients, screen readers). Always present.
    package var fallback: RichText

    package init(kind: CardKind, entity: EntityRef?, title: String, body: RichText? = nil, fields: [CardField] = [],
                 buttons: [CardButton] = [], stateLine: RichText? = nil, footer: RichText? = nil, fallback: RichText)
    {
        self.kind = kind
        self.entity = entity
        self.title = title
        self.body = body
        self.fields = fields
        self.buttons = buttons
        self.stateLine = stateLine
        self.footer = footer
        self.fallback = fallback
    }
}

/// The value every card button carries: `approval:42`, `feedback:3`.
package enum CardButtonValue {
    package static func encode(_ entity: EntityRef) -> String { "\(entity.kind.rawValue):\(entity.id)" }

    package static func decode(_ value: String) -> EntityRef? {
        let parts = value.split(separator: ":")
        guard parts.count >= 2, let kind = EntityKind(rawValue: String(parts[0])), let id = Int64(parts[1]) else { return nil }
        return EntityRef(kind: kind, id: id)
    }
}

extension RichText {
    /// Text from the workflow whose `@platform:id` identities (`@slack:U0ALICE`) become mentions;
    /// everything else stays plain (escaped) text.
    package static func mentioning(_ text: String) -> RichText {
        var runs: [Inline] = []
        var plain = ""
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == "@", let (id, end) = identity(in: text, at: text.index(after: i)) {
                if !plain.isEmpty { runs.append(.text(plain)); plain = "" }
                runs.append(.user(id))
                i = end
                continue
            }
            plain.append(text[i])
            i = text.index(after: i)
        }
        if !plain.isEmpty { runs.append(.text(plain)) }
        return RichText(runs)
    }

    /// `slack:U0ALICE` starting at `start`: a lower-case namespace, a colon, then id characters.
    private static func identity(in text: String, at start: String.Index) -> (ActorID, String.Index)? {
        var i = start
        var namespace = ""
        while i < text.endIndex, text[i].isASCII, text[i].isLetter, text[i].isLowercase {
            namespace.append(text[i])
            i = text.index(after: i)
        }
        guard !namespace.isEmpty, i < text.endIndex, text[i] == ":" else { return nil }
        i = text.index(after: i)
        var local = ""
        while i < text.endIndex, text[i].isASCII, text[i].isLetter || text[i].isNumber || "-_.@".contains(text[i]) || isInnerColon(text, i) {
            local.append(text[i])
            i = text.index(after: i)
        }
        while local.hasSuffix(".") { local.removeLast(); i = text.index(before: i) }
        guard !local.isEmpty else { return nil }
        return (ActorID("\(namespace):\(local)"), i)
    }

    /// A colon inside an id (`matrix:@alice:example.org`), not one ending it (`@slack:U1: hello`).
    private static func isInnerColon(_ text: String, _ i: String.Index) -> Bool {
        guard text[i] == ":" else { return false }
        let next = text.index(after: i)
        guard next < text.endIndex else { return false }
        let c = text[next]
        return c.isASCII && (c.isLetter || c.isNumber)
    }
}
