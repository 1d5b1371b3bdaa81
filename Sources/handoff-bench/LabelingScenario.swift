import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Synchronization

/// Scenario 5: dataset agreement (Krippendorff's α, Fleiss' κ) over 100,000 labels, and the latency of
/// "next task" for 1,000 labelers working at once on the same dataset.
struct LabelingScenario {
    let options: BenchOptions

    static let dataset = "sentiment"
    static let choices = ["positive", "negative", "neutral"]
    static let overlap = 2

    func run() async throws -> ScenarioReport {
        let labelers = (0..<options.labelers).map { Actor(ActorID(String(format: "bench:labeler%04d", $0))) }
        var report = ScenarioReport(
            name: "labeling", title: "Labeling: agreement over \(Format.grouped(options.labels)) labels, next task with \(Format.grouped(labelers.count)) labelers",
            columns: ["measure", "count", "p50", "p99", "max", "note"])
        let path = options.directory + "/labeling.sqlite"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let (workflow, _) = try await BenchPolicy.openWorkflow(path: path, options: options)
        do {
            // Completed tasks holding the labels agreement is computed over.
            let tasks = options.labels / Self.overlap
            let fill = ProgressBar("labeling set-up", total: options.labels)
            var made = 0
            let batch = 2_000
            while made < tasks {
                let count = min(batch, tasks - made)
                let created = try await workflow.createLabelTasks(batch: (made..<(made + count)).map { i in
                    LabelTaskInput(dataset: Self.dataset, type: .choice(options: Self.choices), content: "Review \(i): the delivery was late but the product is fine.",
                                   overlap: Self.overlap, labelers: ["*"])
                }, by: ActorID("bench:loader"))
                var labels: [(task: LabelTaskID, value: LabelValue, by: Actor)] = []
                for (k, task) in created.enumerated() {
                    let i = made + k
                    let truth = Self.choices[i % 3]
                    for j in 0..<Self.overlap {
                        // Labelers agree on about four tasks in five.
                        let value = (i * 7 + j) % 10 < 2 && j > 0 ? Self.choices[(i + 1) % 3] : truth
                        labels.append((task.id, .choice(value), labelers[(i * Self.overlap + j) % labelers.count]))
                    }
                }
                _ = try await workflow.addLabels(batch: labels)
                made += count
                fill.update(made * Self.overlap)
            }
            fill.finish()

            var agreement = Latencies()
            var result: DatasetAgreement?
            let rssBefore = residentBytes()
            for _ in 0..<3 {
                let t0 = ContinuousClock.now
                result = try await workflow.agreement(dataset: Self.dataset)
                agreement.add(ContinuousClock.now - t0)
            }
            let rssAfter = residentBytes()
            guard let result, result.labels == tasks * Self.overlap else {
                throw BenchError("agreement counted \(result?.labels ?? 0) labels, expected \(tasks * Self.overlap)")
            }
            report.row("agreement (α nominal, κ) over the dataset", Format.grouped(result.labels), Format.ms(agreement.p50), "-",
                       Format.ms(agreement.max), String(format: "α %.3f, κ %.3f, RSS %+.1f MiB", result.krippendorffAlphaNominal ?? .nan,
                                                        result.fleissKappa ?? .nan, Double(rssAfter - rssBefore) / 1_048_576))
            report.metrics.merge(agreement.metrics("agreement")) { $1 }
            report.metrics["agreement_labels"] = Double(result.labels)

            // Open tasks for the labelers to work through, after the completed ones.
            let perLabeler = options.labelsPerLabeler
            let openTasks = labelers.count * perLabeler / 3 + 100
            var opened = 0
            while opened < openTasks {
                let count = min(batch, openTasks - opened)
                _ = try await workflow.createLabelTasks(batch: (0..<count).map { i in
                    LabelTaskInput(dataset: Self.dataset, type: .choice(options: Self.choices), content: "New review \(opened + i)", overlap: 3,
                                   labelers: ["*"])
                }, by: ActorID("bench:loader"))
                opened += count
            }
            let next = LatencyBox()
            let label = LatencyBox()
            let lost = Counter()
            let concurrency = 32
            let turn = Counter()
            let total = labelers.count * perLabeler
            let progress = ProgressBar("labelers at work", total: total)
            let start = ContinuousClock.now
            try await withThrowingDiscardingTaskGroup { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        while true {
                            let n = turn.next()
                            guard n < total else { return }
                            let labeler = labelers[n % labelers.count]
                            while true {
                                let t0 = ContinuousClock.now
                                guard let task = try await workflow.nextLabelTask(dataset: Self.dataset, for: labeler) else {
                                    throw BenchError("no open task left for \(labeler.id)")
                                }
                                let t1 = ContinuousClock.now
                                next.add(t1 - t0)
                                do {
                                    _ = try await workflow.addLabel(task.id, text: Self.choices[n % 3], by: labeler)
                                    label.add(ContinuousClock.now - t1)
                                    break
                                } catch let error as WorkflowError where error.code == .wrongState || error.code == .conflict {
                                    _ = lost.next()  // another labeler filled the task first: ask again
                                }
                            }
                            if n % 64 == 0 { progress.update(n) }
                        }
                    }
                }
            }
            let elapsed = ContinuousClock.now - start
            progress.update(total)
            progress.finish()
            let nexts = next.value
            let labels = label.value
            report.row("next task", Format.grouped(nexts.count), Format.ms(nexts.p50), Format.ms(nexts.p99), Format.ms(nexts.max),
                       "\(labelers.count) labelers, \(concurrency) at once, \(lost.current) lost races")
            report.row("add label (commit)", Format.grouped(labels.count), Format.ms(labels.p50), Format.ms(labels.p99), Format.ms(labels.max),
                       Format.rate(Double(total) / elapsed.seconds) + " labels")
            report.metrics.merge(nexts.metrics("next_task")) { $1 }
            report.metrics.merge(labels.metrics("add_label")) { $1 }
            report.metrics["labels_per_s"] = Double(total) / elapsed.seconds
            report.notes.append("set-up: \(Format.grouped(tasks)) completed choice tasks × \(Self.overlap) labels through `Workflow.addLabels(batch:)`; then \(Format.grouped(openTasks)) open tasks (overlap 3)")
            try await workflow.store.close()
            return report
        } catch {
            try? await workflow.store.close()
            throw error
        }
    }
}
