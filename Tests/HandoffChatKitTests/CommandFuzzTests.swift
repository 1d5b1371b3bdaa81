import Foundation
import HandoffChatKit
import HandoffCore
import HandoffTesting
import Testing

/// The command grammar under hostile input (issue 8, "Hostile input"): random text, mutations of
/// real commands, and generated commands written every way people write them. Seeded (printed;
/// `HANDOFF_FUZZ_SEED` replays a run) and bounded.
/// Bounded in time: a decoder that hangs on some input fails here, not at the CI timeout.
@Suite(.timeLimit(.minutes(3))) struct CommandFuzzTests {
    static let commands: [String] = [
        "approve 42 ship it", "approve #42", "reject 42 too risky on a Friday", "revise 42 use the canary first", "claim", "claim support",
        "claim 7", "escalate", "escalate the customer is furious", "resolve 3 Refunds take 14 days.", "label 9 positive", "rate 5 4",
        "queue", "help", "help reject", "/handoff approve 42", "!handoff lgtm 42", "handoff APPROVE 42", "Approve: 42 fine",
        "approve ship it", "resolve It is fixed now", "reject #5 no",
    ]

    /// What every parse result must satisfy, whatever the input: ids are positive, required texts are
    /// present, a queue name is one word; an error says what to do in a bounded message.
    static func check(_ text: String, impliedID: Int64?) -> String? {
        let first: Result<ParsedCommand, CommandError>
        do { first = .success(try CommandParser.parse(text, impliedID: impliedID)) } catch { first = .failure(error) }
        let again: Result<ParsedCommand, CommandError>
        do { again = .success(try CommandParser.parse(text, impliedID: impliedID)) } catch { again = .failure(error) }
        guard first == again else { return "not deterministic" }
        switch first {
        case .failure(let error):
            let message = error.message(prefix: "/handoff ")
            guard !error.problem.isEmpty else { return "an error without a problem" }
            guard message.contains("Usage: `/handoff ") || message.contains("/handoff help") else {
                return "an error without usage or help: \(Fuzz.show(message, limit: 200))"
            }
            // The input is echoed at most 40 characters at a time: a long input cannot bloat the reply.
            guard message.count < 400 else { return "an error message of \(message.count) characters" }
            return nil
        case .success(let parsed):
            func validID(_ id: Int64?) -> Bool {
                guard let id else { return true }
                guard id > 0 else { return false }
                // A thread reply only names another entity with `#id` (or when it is the card's own id).
                if let impliedID, id != impliedID { return text.contains("#") }
                return true
            }
            func present(_ s: String?) -> Bool { s?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == false }
            switch parsed {
            case .decide(let verdict, let id, let comment):
                guard validID(id) else { return "bad id \(String(describing: id))" }
                if impliedID == nil && id == nil { return "a decision without an id or a card" }
                if verdict != .approve && !present(comment) { return "\(verdict) without its required text" }
                if let comment, !present(comment) { return "a blank comment instead of none" }
            case .claim(.escalation(let id)):
                guard id > 0 else { return "claim of escalation \(id)" }
            case .claim(.queue(let name)):
                guard !name.isEmpty, !name.contains(where: \.isWhitespace), !name.hasPrefix("#") else { return "claim of queue '\(Fuzz.show(name, limit: 60))'" }
                if Int64(name).map({ $0 > 0 }) == true { return "a number read as a queue name: \(name)" }
            case .claim(.next), .queue, .help:
                break
            case .escalate(let reason):
                if let reason, !present(reason) { return "a blank escalation reason instead of none" }
            case .resolve(let id, let resolution):
                guard validID(id), present(resolution) else { return "resolve \(String(describing: id)) '\(Fuzz.show(resolution, limit: 60))'" }
                if impliedID == nil && id == nil { return "resolve without an id" }
            case .label(let task, let value):
                guard validID(task), present(value) else { return "label \(String(describing: task)) '\(Fuzz.show(value, limit: 60))'" }
                if impliedID == nil && task == nil { return "label without a task" }
            case .rate(let id, let value):
                guard validID(id), present(value) else { return "rate \(String(describing: id)) '\(Fuzz.show(value, limit: 60))'" }
                if impliedID == nil && id == nil { return "rate without an id" }
            }
            return nil
        }
    }

    @Test("random and mutated command text: never a crash, every answer well-formed, every error a CommandError with usage")
    func hostileText() {
        Fuzz.announce("parser.hostile")
        var m = FuzzMutator(stream: "parser.hostile")
        var inputs = 0
        var failures = 0
        for i in 0..<6000 {
            let text: String
            switch m.int(0...9) {
            case 0: text = String(decoding: m.randomBytes(maxLength: 80), as: UTF8.self)
            case 1: text = m.nastyString()
            case 2: text = m.randomUnicode(maxLength: 60)
            case 3:
                // Command words followed by hostile arguments.
                let word = m.pick(Command.allCases.flatMap { [$0.rawValue] + $0.aliases })
                text = [word, m.nastyString(), m.nastyString(), m.nastyString()].joined(separator: m.pick([" ", "\t", "\n", "", "\r\n", "\u{00A0}"]))
            default:
                text = String(decoding: m.mutate(bytes: Array(m.pick(Self.commands).utf8)), as: UTF8.self)
            }
            let implied: Int64? = m.chance(0.3) ? m.pick([1, 7, 42, Int64.max]) : nil
            inputs += 1
            if let problem = Self.check(text, impliedID: implied) {
                failures += 1
                Issue.record("parser input #\(i) (seed \(Fuzz.seedText), implied \(String(describing: implied))): \(problem)\n  input: \(Fuzz.show(text, limit: 300))")
            }
            _ = CommandParser.startsWithCommand(text)
        }
        // A very long input is handled in linear time and answered briefly.
        let long = "approve " + String(repeating: "9", count: 100_000) + " " + String(repeating: "x ", count: 50_000)
        inputs += 1
        if let problem = Self.check(long, impliedID: nil) { failures += 1; Issue.record("a 200 kB command: \(problem)") }
        Fuzz.record(.parser, inputs: inputs, crashes: failures, stream: "parser.hostile")
    }

    /// One generated command: the text as a person might type it, and what it must parse to.
    struct Case {
        var text: String
        var impliedID: Int64?
        var expected: ParsedCommand
    }

    /// Whitespace people's clients really send between words: spaces, tabs, newlines (also as
    /// CRLF), the no-break space of copy-pasted text, the ideographic space of CJK input methods.
    static let separators = [" ", "  ", "\t", "\n", "\r\n", " \n ", "\u{00A0}", "\u{3000}"]

    /// A non-blank free text without leading or trailing whitespace (interior single spaces).
    static func freeText(_ m: inout FuzzMutator) -> String {
        let alphabet: [String] = ["a", "Z", "é", "ß", "漢", "字", "👍🏽", "🚀", "!", "?", ".", "-", "'", "\"", "<", ">", "&", "*", "_", "~", "`",
                                  "0", "7", "@", "#x", "ق", "\u{202E}x", "x\u{200B}y", "%", "\\", "/", ":", ","]
        let words = (0..<m.int(1...6)).map { _ in (0..<m.int(1...8)).map { _ in m.pick(alphabet) }.joined() }
        return words.joined(separator: " ")
    }

    static func generate(_ m: inout FuzzMutator) -> Case {
        let command = m.pick(Command.allCases)
        var word = m.pick([command.rawValue] + command.aliases)
        if m.chance(0.3) { word = word.uppercased() }
        if m.chance(0.2) { word += m.pick([":", ","]) }
        let prefix = m.pick(["", "", "/handoff", "!handoff", "handoff", "HANDOFF"])
        var parts: [String] = []
        func join(_ pieces: [String]) -> String {
            var out = ""
            for (i, piece) in pieces.enumerated() {
                if i > 0 { out += m.pick(separators) }
                out += piece
            }
            return out
        }
        let id = m.chance(0.5) ? Int64(m.int(1...9999)) : Int64.random(in: 1...Int64.max, using: &m.rng)
        let idText = (m.chance(0.3) ? "#" : "") + String(id)
        let implied: Int64? = m.chance(0.25) ? id : nil
        // With a card implied, the id may be left out.
        let omitID = implied != nil && m.chance(0.5)
        let expectedID: Int64? = omitID ? nil : id
        // Without an id, a text starting with a number could be read as one: keep those cases unambiguous.
        func unambiguous(_ s: String) -> String { omitID && (s.first?.isNumber == true || s.hasPrefix("#")) ? "x" + s : s }
        if !prefix.isEmpty { parts.append(prefix) }
        parts.append(word)
        let expected: ParsedCommand
        switch command {
        case .approve, .reject, .revise:
            let verdict: Verdict = command == .approve ? .approve : command == .reject ? .reject : .revise
            let comment: String? = command == .approve && m.chance(0.4) ? nil : unambiguous(freeText(&m))
            if !omitID { parts.append(idText) }
            if let comment { parts.append(comment) }
            expected = .decide(verdict, id: expectedID, text: comment)
        case .claim:
            switch m.int(0...2) {
            case 0: expected = .claim(.next)
            case 1:
                parts.append(idText)
                expected = .claim(.escalation(id))
            default:
                let queue = m.pick(["support", "billing-EU", "tier_2", "ops.oncall", "サポート"])
                parts.append(queue)
                expected = .claim(.queue(queue))
            }
        case .escalate:
            let reason: String? = m.chance(0.5) ? freeText(&m) : nil
            if let reason { parts.append(reason) }
            expected = .escalate(reason: reason)
        case .resolve, .label, .rate:
            let value = unambiguous(command == .rate && m.chance(0.5) ? String(m.int(1...5)) : freeText(&m))
            if !omitID { parts.append(idText) }
            parts.append(value)
            expected = command == .resolve ? .resolve(id: expectedID, resolution: value)
                : command == .label ? .label(task: expectedID, value: value) : .rate(id: expectedID, value: value)
        case .queue:
            expected = .queue
        case .help:
            let topic: Command? = m.chance(0.5) ? m.pick(Command.allCases) : nil
            if let topic { parts.append(topic.rawValue) }
            expected = .help(topic)
        }
        var text = join(parts)
        if m.chance(0.2) { text = m.pick([" ", "\n", "\t", "\u{00A0}"]) + text + m.pick([" ", "\n", "\r\n"]) }
        return Case(text: text, impliedID: omitID ? implied : (m.chance(0.5) ? implied : nil), expected: expected)
    }

    @Test("generated commands, written with every kind of whitespace, case, alias, prefix and #id, parse to what they say")
    func generatedCommandsParse() {
        Fuzz.announce("parser.generated")
        var m = FuzzMutator(stream: "parser.generated")
        var inputs = 0
        var failures = 0
        for i in 0..<4000 {
            let c = Self.generate(&m)
            inputs += 1
            let got: Result<ParsedCommand, CommandError>
            do { got = .success(try CommandParser.parse(c.text, impliedID: c.impliedID)) } catch { got = .failure(error) }
            if got != .success(c.expected) {
                failures += 1
                if failures <= 20 {
                    Issue.record("generated command #\(i) (seed \(Fuzz.seedText), implied \(String(describing: c.impliedID))): \(Fuzz.show(c.text))\n  expected \(c.expected)\n  got      \(Fuzz.show("\(got)", limit: 300))")
                }
            }
            if CommandParser.startsWithCommand(c.text) == false, !c.text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased().contains("handoff") {
                failures += 1
                if failures <= 20 { Issue.record("startsWithCommand is false for a command: \(Fuzz.show(c.text))") }
            }
        }
        #expect(failures == 0, "\(failures) generated commands did not parse as written (seed \(Fuzz.seedText))")
        Fuzz.record(.parser, inputs: inputs, crashes: 0, stream: "parser.generated")
    }
}
