import ArgumentParser
import Foundation
import HandoffCore
import HandoffWorkflow

struct FeedbackCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feedback", abstract: "Ask for ratings, comments or choices on AI answers, without blocking anyone.",
        subcommands: [Request.self, Respond.self, Show.self, Rates.self])

    struct Request: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Option(help: "rating (1–5), text or choice.") var kind: String = "rating"
        @Option var prompt: String
        @Option(help: "Choices for kind choice, comma-separated.") var options: String?
        @Option(help: "The answer being judged.") var subject: String?
        @Option var channel: String = "default"
        @Option(help: "Only this identity may answer.") var respondent: String?
        @Option(help: "Deadline, e.g. 30m, 24h (default from the policy).") var deadline: String?

        func run() async throws {
            try await perform {
                let k: FeedbackKind
                switch kind {
                case "rating": k = .rating
                case "text": k = .text
                case "choice": k = .choice(options: (options ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                default: throw WorkflowError.invalid("kind", "must be rating, text or choice")
                }
                var span: Span?
                if let deadline {
                    guard let s = Span(parsing: deadline) else { throw WorkflowError.invalid("deadline", "must look like 30m, 24h or 2d") }
                    span = s
                }
                let f = try await global.openWorkflow().requestFeedback(
                    FeedbackRequestInput(kind: k, prompt: prompt, subject: subject, channel: channel,
                                         respondent: respondent.map { ActorID($0) }, deadline: span),
                    by: ActorOptions.operatorID)
                if global.json { return try printJSON(FeedbackView(f)) }
                print("Feedback request #\(f.id) (\(f.kind.name)) open until \(Format.date(f.deadline)).")
            }
        }
    }

    struct Respond: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var id: Int64
        @Argument(parsing: .remaining) var value: [String] = []

        func run() async throws {
            try await perform {
                let f = try await global.openWorkflow().respond(FeedbackID(id), value: value.joined(separator: " "), by: actor.resolved)
                if global.json { return try printJSON(FeedbackView(f)) }
                print("Thanks — feedback #\(f.id) recorded.")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument var id: Int64

        func run() async throws {
            try await perform {
                let f = try await global.openWorkflow().feedback(FeedbackID(id))
                if global.json { return try printJSON(FeedbackView(f)) }
                let v = FeedbackView(f)
                var d = Details()
                d.add("feedback", "#\(f.id) (\(f.kind.name))")
                d.add("prompt", f.prompt)
                d.add("options", v.options?.joined(separator: ", "))
                d.add("subject", f.subject)
                d.add("channel", f.channel)
                d.add("status", f.status.name)
                d.add("response", v.response)
                d.add("by", v.respondedBy)
                d.add("deadline", Format.date(f.deadline))
                d.print()
            }
        }
    }

    struct Rates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Response rates overall and per channel (answered / closed).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform {
                let (overall, channels) = try await global.openWorkflow().feedbackRates()
                if global.json {
                    struct Out: Encodable { var overall: ResponseRate; var channels: [ResponseRate]; var overallRate: Double? }
                    return try printJSON(Out(overall: overall, channels: channels, overallRate: overall.rate))
                }
                var table = Table("channel", "answered", "expired", "open", "response rate")
                for r in channels + [overall] {
                    table.add(r.channel ?? "ALL", "\(r.answered)", "\(r.expired)", "\(r.open)",
                              r.rate.map { String(format: "%.0f%%", $0 * 100) } ?? "-")
                }
                table.print()
            }
        }
    }
}

struct Corrections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corrections", abstract: "Learn from corrections: record them, see patterns, find similar ones.",
        subcommands: [Record.self, Patterns.self, Similar.self])

    struct Record: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Option var query: String
        @Option var original: String
        @Option var corrected: String
        @Option var route: String?

        func run() async throws {
            try await perform {
                let c = try await global.openWorkflow().recordCorrection(
                    CorrectionInput(query: query, original: original, corrected: corrected, route: route), by: actor.resolved.id)
                if global.json { return try printJSON(CorrectionView(c)) }
                print("Recorded correction #\(c.id).")
            }
        }
    }

    struct Patterns: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Groups of corrections that changed the same thing.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only patterns with at least this many corrections.") var floor: Int = 2
        @Option(help: "How alike two changes must be (Jaccard, 0–1).") var similarity: Double = 0.5

        func run() async throws {
            try await perform {
                let reports = try await global.openWorkflow().correctionPatterns(floor: floor, similarity: similarity)
                if global.json {
                    struct Out: Encodable { var summary: String; var count: Int; var signature: [String]; var examples: [CorrectionView] }
                    return try printJSON(reports.map {
                        Out(summary: $0.pattern.summary, count: $0.pattern.count, signature: $0.pattern.signature,
                            examples: $0.examples.map { CorrectionView($0) })
                    })
                }
                if reports.isEmpty { print("No pattern has \(floor) or more corrections yet.") }
                for r in reports {
                    print("\(r.pattern.count)× \(r.pattern.summary)")
                    for c in r.examples {
                        print("    #\(c.id) \(Table.cell(c.query, 50)): \(Table.cell(c.original, 40)) → \(Table.cell(c.corrected, 40))")
                    }
                }
            }
        }
    }

    struct Similar: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The past corrections most similar to a new question.")
        @OptionGroup var global: GlobalOptions
        @Argument(parsing: .remaining) var query: [String] = []
        @Option(name: .short) var k: Int = 3

        func run() async throws {
            try await perform {
                let found = try await global.openWorkflow().similarCorrections(to: query.joined(separator: " "), k: k)
                if global.json { return try printJSON(found.map { CorrectionView($0.correction, similarity: $0.similarity) }) }
                var table = Table("id", "similarity", "query", "corrected answer")
                for (c, s) in found { table.add("#\(c.id)", String(format: "%.2f", s), c.query, c.corrected) }
                table.print()
            }
        }
    }
}
