import Foundation
import HandoffCore

/// The one command grammar every platform speaks: `/handoff approve 42 ship it` as a slash command,
/// `approve ship it` as a thread reply to a card (the card implies the id), and the same words in a DM.
/// The help text and the Slack manifest's slash-command entry are derived from this enum.
package enum Command: String, CaseIterable, Sendable {
    case approve, reject, revise, claim, escalate, resolve, label, rate, queue, help

    /// The slash command's name on every platform.
    package static let slashName = "handoff"

    /// The arguments, as shown in usage lines.
    package var arguments: String {
        switch self {
        case .approve: "<id> [comment]"
        case .reject: "<id> <reason>"
        case .revise: "<id> <comment>"
        case .claim: "[queue | id]"
        case .escalate: "[reason]"
        case .resolve: "<id> <resolution>"
        case .label: "<task> <value>"
        case .rate: "<id> <1-5>"
        case .queue, .help: ""
        }
    }

    /// One line saying what it does.
    package var summary: String {
        switch self {
        case .approve: "approve an approval request (a comment is optional)"
        case .reject: "reject an approval request; a reason is required"
        case .revise: "ask for changes to an approval request; say what to change"
        case .claim: "claim the next escalation or review item (or that queue's next, or escalation <id>)"
        case .escalate: "ask for a person (in a DM), or move an escalation up a tier (in its thread)"
        case .resolve: "answer an escalation; the user gets the answer"
        case .label: "label a labeling task"
        case .rate: "answer a feedback request (1-5, or the choice/text it asks for)"
        case .queue: "show what is waiting for people"
        case .help: "show this help"
        }
    }

    /// Other words that mean the same command.
    package var aliases: [String] {
        switch self {
        case .approve: ["approved", "lgtm"]
        case .reject: ["rejected", "deny"]
        case .revise: ["revision", "needs-revision", "changes"]
        case .claim: ["take", "ack"]
        case .escalate: []
        case .resolve: ["answer"]
        case .label: []
        case .rate: ["feedback"]
        case .queue: ["status"]
        case .help: ["?"]
        }
    }

    /// `approve <id> [comment]`.
    package var usage: String { arguments.isEmpty ? rawValue : "\(rawValue) \(arguments)" }

    package init?(word: String) {
        let w = word.lowercased()
        guard let found = Self.allCases.first(where: { $0.rawValue == w || $0.aliases.contains(w) }) else { return nil }
        self = found
    }

    /// The help text: every command with its usage and summary, and how thread replies and reactions work.
    package static func helpText(prefix: String = "/\(slashName) ") -> String {
        var lines = ["Commands (as `\(prefix.trimmingCharacters(in: .whitespaces))`, in a DM with me, or as a reply in a card's thread, where the card gives the id):"]
        for c in allCases {
            lines.append("• `\(prefix)\(c.usage)` — \(c.summary)")
        }
        lines.append("Reactions on a card: ✅ approve · ❌ reject · 🔁 needs revision · ✋ claim · ⬆️ escalate · 👍/👎 feedback.")
        lines.append("Say \"I want to talk to a person\" in a DM and someone will answer you here.")
        return lines.joined(separator: "\n")
    }

    /// The help text as rich text: every command as a ``Inline/command(_:)`` run, so each platform
    /// shows it in the syntax people type there.
    package static func helpRichText() -> RichText {
        var text = RichText([.text("Commands (as "), .command(""),
                             .text(", in a DM with me, or as a reply in a card's thread, where the card gives the id):")])
        for c in allCases {
            text += RichText([.text("\n• "), .command(c.usage), .text(" — \(c.summary)")])
        }
        text += RichText([.text("\nReactions on a card: ✅ approve · ❌ reject · 🔁 needs revision · ✋ claim · ⬆️ escalate · 👍/👎 feedback.")])
        text += RichText([.text("\nSay \"I want to talk to a person\" in a DM and someone will answer you here.")])
        return text
    }

    /// `resolve 42 <answer>` as the slash command people type on Slack: `/handoff resolve 42 <answer>`.
    package static func slashCommand(_ arguments: String) -> String {
        arguments.isEmpty ? "/\(slashName)" : "/\(slashName) \(arguments)"
    }

    /// The slash command's usage hint (Slack shows it while typing; kept under its 1,000 characters).
    package static var usageHint: String {
        allCases.map(\.rawValue).joined(separator: " | ") + " …"
    }

    /// The slash command's description.
    package static let slashDescription = "Approve, reject, claim, escalate, resolve, label and rate from chat"
}

/// What to claim.
package enum ClaimTarget: Hashable, Sendable {
    /// The card the command refers to, or else the next thing the person answers for.
    case next
    case queue(String)
    case escalation(Int64)
}

/// A command with its arguments read.
package enum ParsedCommand: Hashable, Sendable {
    /// approve / reject / revise; `id` is nil when the card implies it.
    case decide(Verdict, id: Int64?, text: String?)
    case claim(ClaimTarget)
    case escalate(reason: String?)
    case resolve(id: Int64?, resolution: String)
    case label(task: Int64?, value: String)
    case rate(id: Int64?, value: String)
    case queue
    case help(Command?)

    package var command: Command {
        switch self {
        case .decide(.approve, _, _): .approve
        case .decide(.reject, _, _): .reject
        case .decide(.revise, _, _): .revise
        case .claim: .claim
        case .escalate: .escalate
        case .resolve: .resolve
        case .label: .label
        case .rate: .rate
        case .queue: .queue
        case .help: .help
        }
    }
}

/// Why a command could not be read; the message includes the usage line, so a person can fix it.
package struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    package var command: Command?
    package var problem: String

    package init(command: Command?, problem: String) {
        self.command = command
        self.problem = problem
    }

    package var description: String { message(prefix: "/\(Command.slashName) ") }

    package func message(prefix: String) -> String {
        if let command {
            return "\(problem). Usage: `\(prefix)\(command.usage)` — \(command.summary)."
        }
        return "\(problem). Try `\(prefix)help` for the list of commands."
    }
}

/// Reads command text. Pure: the same input gives the same command on every platform.
package enum CommandParser {
    /// True when the text starts with a command word, or with the command's name (`/handoff`, `!handoff`,
    /// `handoff`): used to tell commands from chatter in threads.
    package static func startsWithCommand(_ text: String) -> Bool {
        guard let first = words(text).first else { return false }
        return typedNames.contains(first.lowercased()) || Command(word: strip(first)) != nil
    }

    /// True when the text starts with the command's name as typed (`/handoff`, `!handoff`): a command
    /// beyond doubt, where a bare word might be prose (a reason that begins "changes the schema…", or
    /// "handoff is great").
    package static func startsWithCommandName(_ text: String) -> Bool {
        guard let first = words(text).first else { return false }
        return typedNames.contains(first.lowercased())
    }

    private static let typedNames: Set<String> = ["/\(Command.slashName)", "!\(Command.slashName)"]
    /// What `parse` strips before the command word: the typed names and the bare name.
    private static let commandNames: Set<String> = typedNames.union([Command.slashName])

    /// Parses `approve 42 ship it`. `impliedID` is the id of the card a thread reply refers to: then the
    /// id may be left out, and a leading number is only read as the id when it is that id or has a `#`.
    package static func parse(_ raw: String, impliedID: Int64? = nil) throws(CommandError) -> ParsedCommand {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        // Tolerate the slash command typed as text ("/handoff approve 42", "handoff approve 42") and the
        // bang form of platforms without slash commands ("!handoff approve 42", Matrix), followed by any
        // whitespace (a newline, a tab, the no-break space of pasted text).
        let (head, tail) = splitFirst(text)
        if commandNames.contains(head.lowercased()) { text = tail }
        guard !text.isEmpty else { return .help(nil) }
        let (first, rest) = splitFirst(text)
        guard let command = Command(word: strip(first)) else {
            throw CommandError(command: nil, problem: "`\(first.prefix(40))` is not a command I know")
        }
        switch command {
        case .approve, .reject, .revise:
            let verdict: Verdict = command == .approve ? .approve : command == .reject ? .reject : .revise
            let (id, remainder) = try readID(rest, command: command, impliedID: impliedID, what: "an approval id")
            let text = remainder.nilIfBlank
            if verdict == .reject && text == nil {
                throw CommandError(command: command, problem: "reject needs a reason")
            }
            if verdict == .revise && text == nil {
                throw CommandError(command: command, problem: "revise needs a comment saying what to change")
            }
            return .decide(verdict, id: id, text: text)
        case .claim:
            let arg = rest.trimmingCharacters(in: .whitespaces)
            if arg.isEmpty { return .claim(.next) }
            if arg.contains(where: \.isWhitespace) {
                throw CommandError(command: command, problem: "claim takes one queue name or escalation id, not `\(arg.prefix(40))`")
            }
            if let id = number(arg) { return .claim(.escalation(id)) }
            if arg.hasPrefix("#") { throw CommandError(command: command, problem: "`\(arg.prefix(40))` is not an escalation id") }
            return .claim(.queue(arg))
        case .escalate:
            return .escalate(reason: rest.nilIfBlank)
        case .resolve:
            let (id, remainder) = try readID(rest, command: command, impliedID: impliedID, what: "an escalation id")
            guard let resolution = remainder.nilIfBlank else {
                throw CommandError(command: command, problem: "resolve needs the answer to send to the user")
            }
            return .resolve(id: id, resolution: resolution)
        case .label:
            let (id, remainder) = try readID(rest, command: command, impliedID: impliedID, what: "a task id")
            guard let value = remainder.nilIfBlank else { throw CommandError(command: command, problem: "label needs a value") }
            return .label(task: id, value: value)
        case .rate:
            let (id, remainder) = try readID(rest, command: command, impliedID: impliedID, what: "a feedback request id")
            guard let value = remainder.nilIfBlank else {
                throw CommandError(command: command, problem: "rate needs an answer (1-5 for a rating)")
            }
            return .rate(id: id, value: value)
        case .queue:
            return .queue
        case .help:
            let topic = rest.trimmingCharacters(in: .whitespaces)
            return .help(topic.isEmpty ? nil : Command(word: topic))
        }
    }

    /// Reads the leading id, or uses the implied one.
    private static func readID(
        _ text: String, command: Command, impliedID: Int64?, what: String
    ) throws(CommandError) -> (Int64?, String) {
        let (first, rest) = splitFirst(text)
        if let implied = impliedID {
            if first.hasPrefix("#"), let id = number(first) { return (id, rest) }
            if let id = number(first), id == implied { return (id, rest) }
            return (nil, text)
        }
        guard !first.isEmpty else { throw CommandError(command: command, problem: "\(command.rawValue) needs \(what)") }
        guard let id = number(first) else {
            throw CommandError(command: command, problem: "`\(first.prefix(40))` is not \(what)")
        }
        return (id, rest)
    }

    /// "42" or "#42" → 42.
    private static func number(_ word: String) -> Int64? {
        let digits = word.hasPrefix("#") ? String(word.dropFirst()) : word
        guard let n = Int64(digits), n > 0 else { return nil }
        return n
    }

    /// Words are separated by any whitespace: spaces, tabs, newlines (a CRLF is one `Character`, so
    /// comparing with "\n" misses it), no-break and ideographic spaces.
    private static func splitFirst(_ text: String) -> (String, String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let space = trimmed.firstIndex(where: \.isWhitespace) else { return (trimmed, "") }
        return (String(trimmed[..<space]), String(trimmed[space...]).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func words(_ text: String) -> [String] {
        text.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// "approve:" / "Approve," → "approve".
    private static func strip(_ word: String) -> String {
        word.trimmingCharacters(in: CharacterSet(charactersIn: ":,.!"))
    }
}
