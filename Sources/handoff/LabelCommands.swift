import ArgumentParser
import Foundation
import HandoffCore
import HandoffWorkflow

struct Labels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label", abstract: "Multi-annotator labeling: tasks, labels, consensus, agreement, export.",
        subcommands: [Create.self, Next.self, Add.self, Consensus.self, Agreement.self, Export.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a labeling task.")
        @OptionGroup var global: GlobalOptions
        @Option var dataset: String
        @Option(help: "text, choice, rating, span or bbox.") var type: String
        @Option(help: "Choices for type choice, comma-separated.") var options: String?
        @Option(help: "Rating range as min-max, e.g. 1-5.") var range: String = "1-5"
        @Option(help: "The text to label (or an image URL for bbox).") var content: String
        @Option var instructions: String?
        @Option(help: "How many different labelers label it.") var overlap: Int = 1

        func run() async throws {
            try await perform {
                let t: LabelType
                switch type {
                case "text": t = .text
                case "choice":
                    t = .choice(options: (options ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                case "rating":
                    let parts = range.split(separator: "-").compactMap { Double($0) }
                    guard parts.count == 2 else { throw WorkflowError.invalid("range", "must look like 1-5") }
                    t = .rating(min: parts[0], max: parts[1])
                case "span": t = .span
                case "bbox", "bounding_box": t = .boundingBox
                default: throw WorkflowError.invalid("type", "must be text, choice, rating, span or bbox")
                }
                let task = try await global.openWorkflow().createLabelTask(
                    LabelTaskInput(dataset: dataset, type: t, content: content, instructions: instructions, overlap: overlap),
                    by: ActorOptions.operatorID)
                if global.json { return try printJSON(LabelTaskView(task)) }
                print("Created labeling task #\(task.id) in \(task.dataset) (\(task.type.name), overlap \(task.overlap)).")
            }
        }
    }

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The next task for a labeler (never one they already labeled).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Option var dataset: String?

        func run() async throws {
            try await perform {
                guard let task = try await global.openWorkflow().nextLabelTask(dataset: dataset, for: actor.resolved) else {
                    if global.json { return print("null") }
                    return print("No task left for \(actor.resolved.id).")
                }
                if global.json { return try printJSON(LabelTaskView(task)) }
                let v = LabelTaskView(task)
                var d = Details()
                d.add("task", "#\(task.id) in \(task.dataset) (\(task.type.name))")
                d.add("instructions", task.instructions)
                d.add("options", v.options?.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "  "))
                d.add("range", v.min.map { "\($0)–\(v.max ?? 0)" })
                d.add("content", task.content)
                d.add("labels", "\(task.labelCount) of \(task.overlap)")
                d.print()
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Label a task: a choice (name or number), a rating, text, a span start-end, or a box x,y,w,h.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var actor: ActorOptions
        @Argument var task: Int64
        @Argument(parsing: .remaining) var value: [String] = []

        func run() async throws {
            try await perform {
                let (t, label) = try await global.openWorkflow().addLabel(LabelTaskID(task), text: value.joined(separator: " "), by: actor.resolved)
                if global.json { return try printJSON(LabelTaskView(t)) }
                print("Labeled task #\(t.id) as \(label.value.display) (\(t.labelCount) of \(t.overlap)).")
            }
        }
    }

    struct Consensus: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument var task: Int64

        func run() async throws {
            try await perform {
                let (_, labels, c) = try await global.openWorkflow().consensus(LabelTaskID(task))
                if global.json { return try printJSON(ConsensusView(c)) }
                var table = Table("labeler", "label")
                for l in labels { table.add(l.labeler.rawValue, l.value.display) }
                table.print()
                print("\nconsensus: \(c.consensus?.display ?? "none")   agreement: \(Format.ratio(c.agreement))")
            }
        }
    }

    struct Agreement: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Krippendorff's α (nominal, interval) and Fleiss' κ over a dataset.")
        @OptionGroup var global: GlobalOptions
        @Argument var dataset: String

        func run() async throws {
            try await perform {
                let a = try await global.openWorkflow().agreement(dataset: dataset)
                if global.json { return try printJSON(a) }
                var d = Details()
                d.add("dataset", a.dataset)
                d.add("tasks", "\(a.tasks) (\(a.pairableTasks) with two or more labels)")
                d.add("labels", "\(a.labels)")
                d.add("Krippendorff α (nominal)", Format.ratio(a.krippendorffAlphaNominal))
                d.add("Krippendorff α (interval)", Format.ratio(a.krippendorffAlphaInterval))
                d.add("Fleiss κ", Format.ratio(a.fleissKappa))
                d.print()
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a dataset as JSON Lines (stdout or --output).")
        @OptionGroup var global: GlobalOptions
        @Argument var dataset: String
        @Option var output: String?

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                var handle = FileHandle.standardOutput
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: nil), let h = FileHandle(forWritingAtPath: output) else {
                        throw WorkflowError.invalid("output", "cannot write \(output)")
                    }
                    handle = h
                }
                let h = handle
                let n = try await workflow.exportJSONL(dataset: dataset) { line in h.write(Data(line.utf8)) }
                if let output {
                    try handle.close()
                    FileHandle.standardError.write(Data("Wrote \(n) tasks to \(output).\n".utf8))
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Option var dataset: String?
        @Option var limit: Int = 50

        func run() async throws {
            try await perform {
                let tasks = try await global.openWorkflow().labelTasks(dataset: dataset, limit: limit)
                if global.json { return try printJSON(tasks.map(LabelTaskView.init)) }
                var table = Table("id", "dataset", "type", "labels", "status", "content")
                for t in tasks { table.add("#\(t.id)", t.dataset, t.type.name, "\(t.labelCount)/\(t.overlap)", t.status.rawValue, t.content) }
                table.print()
            }
        }
    }
}
