import Foundation

package enum LabelType: Hashable, Sendable, Codable {
    case text
    case choice(options: [String])
    case rating(min: Double, max: Double)
    /// Offsets into the content, in UTF-16 code units (what a browser selection reports), end exclusive.
    case span
    /// A box on an image: x, y, width, height in pixels.
    case boundingBox

    package var name: String {
        switch self {
        case .text: "text"
        case .choice: "choice"
        case .rating: "rating"
        case .span: "span"
        case .boundingBox: "bbox"
        }
    }
}

package enum LabelValue: Hashable, Sendable, Codable {
    case text(String)
    case choice(String)
    case rating(Double)
    case span(start: Int, end: Int)
    case boundingBox(x: Double, y: Double, width: Double, height: Double)

    package var display: String {
        switch self {
        case .text(let t): t
        case .choice(let c): c
        // Int(exactly:): a rating of 1e300 (a task's max can be any number) prints, it does not trap.
        case .rating(let r): Int(exactly: r).map(String.init) ?? String(r)
        case .span(let s, let e): "[\(s), \(e))"
        case .boundingBox(let x, let y, let w, let h): "(\(x), \(y), \(w)×\(h))"
        }
    }
}

package enum LabelTaskStatus: String, Hashable, Sendable, Codable {
    case open, complete
}

package struct LabelTask: Hashable, Sendable, Codable {
    package var id: LabelTaskID
    /// The task set it belongs to; agreement and export are per dataset.
    package var dataset: String
    package var type: LabelType
    /// The text to label, or an image URL for bounding boxes.
    package var content: String
    package var instructions: String?
    /// How many different labelers label it.
    package var overlap: Int
    package var labelCount: Int
    /// Groups whose members may label; `["*"]` lets anyone.
    package var labelers: [String]
    package var createdAt: Date
    package var status: LabelTaskStatus

    package var ref: EntityRef { EntityRef(kind: .labelTask, id: id.rawValue) }
}

package struct Label: Hashable, Sendable, Codable {
    package var task: LabelTaskID
    package var labeler: ActorID
    package var value: LabelValue
    package var at: Date
}

package struct LabelTaskInput: Hashable, Sendable, Codable {
    package var dataset: String
    package var type: LabelType
    package var content: String
    package var instructions: String?
    package var overlap: Int
    package var labelers: [String]

    package init(dataset: String, type: LabelType, content: String, instructions: String? = nil, overlap: Int = 1,
                 labelers: [String] = ["labelers"])
    {
        self.dataset = dataset
        self.type = type
        self.content = content
        self.instructions = instructions
        self.overlap = overlap
        self.labelers = labelers
    }
}

package enum LabelingMachine {
    package static let maxContentLength = 100_000
    package static let maxOverlap = 100
    /// The longest text label.
    package static let maxTextLabelLength = 10_000

    package static func create(id: LabelTaskID, input: LabelTaskInput, by actor: ActorID, now: Date) throws(WorkflowError) -> Transition<LabelTask> {
        guard input.dataset.nilIfBlank != nil else { throw .invalid("dataset", "is required") }
        guard input.content.nilIfBlank != nil else { throw .invalid("content", "is required") }
        guard input.content.count <= maxContentLength else { throw .invalid("content", "is longer than \(maxContentLength) characters") }
        guard (1...maxOverlap).contains(input.overlap) else { throw .invalid("overlap", "must be from 1 to \(maxOverlap)") }
        guard !input.labelers.isEmpty else { throw .invalid("labelers", "is empty; name groups, or [\"*\"] to let anyone label") }
        switch input.type {
        case .choice(let options):
            guard options.count >= 2 else { throw .invalid("options", "needs at least two choices") }
            guard Set(options).count == options.count, !options.contains(where: { $0.nilIfBlank == nil }) else {
                throw .invalid("options", "must be non-empty and different from each other")
            }
        case .rating(let min, let max):
            guard min.isFinite, max.isFinite, min < max else { throw .invalid("range", "needs min < max") }
        case .text, .span, .boundingBox: break
        }
        let task = LabelTask(
            id: id, dataset: input.dataset, type: input.type, content: input.content, instructions: input.instructions,
            overlap: input.overlap, labelCount: 0, labelers: input.labelers, createdAt: now, status: .open)
        return Transition(
            entity: task,
            audit: [AuditEvent(at: now, actor: actor, entity: task.ref, from: nil, to: "open",
                               detail: "\(input.type.name) task in \(input.dataset), overlap \(input.overlap)")])
    }

    /// Parses and checks a label typed as text (`positive`, `4`, `3-17`, `10,20,50,40`) for the task's type.
    package static func parse(_ raw: String, for task: LabelTask) throws(WorkflowError) -> LabelValue {
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        // Spans are "start-end" (or "start,end"); boxes are "x,y,width,height". Minus signs are not
        // separators for boxes, so a negative value is read as negative and then refused.
        let numbers = text.split(whereSeparator: { ",; ".contains($0) }).map { Double($0) }
        switch task.type {
        case .text: return try validate(.text(text), for: task)
        case .choice(let options):
            if let match = options.first(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) { return .choice(match) }
            if let n = Int(text), (1...options.count).contains(n) { return .choice(options[n - 1]) }
            throw .invalid("label", "must be one of \(options.joined(separator: ", ")) (or its number)")
        case .rating:
            guard let value = Double(text) else { throw .invalid("label", "must be a number") }
            return try validate(.rating(value), for: task)
        case .span:
            guard let match = text.wholeMatch(of: #/\s*(\d{1,9})\s*[-–,;: ]\s*(\d{1,9})\s*/#),
                  let s = Int(match.output.1), let e = Int(match.output.2)
            else {
                throw .invalid("label", "must be a span as start-end offsets, e.g. 3-17")
            }
            return try validate(.span(start: Int(s), end: Int(e)), for: task)
        case .boundingBox:
            guard numbers.count == 4, let x = numbers[0], let y = numbers[1], let w = numbers[2], let h = numbers[3] else {
                throw .invalid("label", "must be a box as x,y,width,height")
            }
            return try validate(.boundingBox(x: x, y: y, width: w, height: h), for: task)
        }
    }

    package static func validate(_ value: LabelValue, for task: LabelTask) throws(WorkflowError) -> LabelValue {
        switch (task.type, value) {
        case (.text, .text(let t)):
            let trimmed = t.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw .invalid("label", "is empty") }
            guard trimmed.count <= maxTextLabelLength else { throw .invalid("label", "is longer than \(maxTextLabelLength) characters") }
            return .text(trimmed)
        case (.choice(let options), .choice(let c)):
            guard let match = options.first(where: { $0.caseInsensitiveCompare(c) == .orderedSame }) else {
                throw .invalid("label", "must be one of \(options.joined(separator: ", "))")
            }
            return .choice(match)
        case (.rating(let min, let max), .rating(let r)):
            guard r.isFinite, (min...max).contains(r) else {
                throw .invalid("label", "must be between \(LabelValue.rating(min).display) and \(LabelValue.rating(max).display)")
            }
            return value
        case (.span, .span(let start, let end)):
            let length = task.content.utf16.count
            guard start >= 0, end > start, end <= length else {
                throw .invalid("label", "span [\(start), \(end)) must satisfy 0 ≤ start < end ≤ \(length) (UTF-16 offsets)")
            }
            return value
        case (.boundingBox, .boundingBox(let x, let y, let w, let h)):
            guard [x, y, w, h].allSatisfy(\.isFinite), x >= 0, y >= 0, w > 0, h > 0 else {
                throw .invalid("label", "box needs x, y ≥ 0 and width, height > 0")
            }
            return value
        default:
            throw .invalid("label", "is a \(value.typeName) label but task #\(task.id) takes \(task.type.name) labels")
        }
    }

    /// Adds one label. `alreadyLabeled` says whether this labeler has a label on the task (from the store).
    package static func label(
        _ task: LabelTask, value: LabelValue, by actor: Actor, alreadyLabeled: Bool, directory: Directory, now: Date
    ) throws(WorkflowError) -> (Transition<LabelTask>, Label) {
        if !directory.mayActFor(actor, anyOf: task.labelers) {
            throw .notAllowed("you are not a labeler for dataset \(task.dataset)")
        }
        guard !alreadyLabeled else { throw .wrongState("you already labeled task #\(task.id)") }
        guard task.status == .open, task.labelCount < task.overlap else {
            throw .wrongState("task #\(task.id) already has its \(task.overlap) label\(task.overlap == 1 ? "" : "s")")
        }
        let checked = try validate(value, for: task)
        var next = task
        next.labelCount += 1
        if next.labelCount >= task.overlap { next.status = .complete }
        let label = Label(task: task.id, labeler: actor.id, value: checked, at: now)
        return (Transition(
            entity: next,
            audit: [AuditEvent(at: now, actor: actor.id, entity: task.ref, from: task.status.rawValue, to: next.status.rawValue,
                               detail: "label \(next.labelCount) of \(task.overlap): \(checked.display.prefix(200))")],
            effects: []), label)
    }
}

extension LabelValue {
    var typeName: String {
        switch self {
        case .text: "text"
        case .choice: "choice"
        case .rating: "rating"
        case .span: "span"
        case .boundingBox: "bbox"
        }
    }
}

/// One task's labels summarized: the consensus value (if any) and how much labelers agreed.
package struct TaskConsensus: Hashable, Sendable, Codable {
    package var task: LabelTaskID
    package var labels: Int
    /// The agreed value; nil when there is no label or a tie.
    package var consensus: LabelValue?
    /// 0…1: pairwise agreement (choice/text), 1 − mean distance / range (rating), mean pairwise IoU (span/box).
    /// nil with fewer than two labels.
    package var agreement: Double?
}

package enum Consensus {
    package static func of(task: LabelTask, labels: [LabelValue]) -> TaskConsensus {
        var result = TaskConsensus(task: task.id, labels: labels.count, consensus: nil, agreement: nil)
        guard !labels.isEmpty else { return result }
        switch task.type {
        case .choice, .text:
            let keys = labels.map { value -> String in
                if case .text(let t) = value { return PhraseMatcher.normalize(t) }
                return value.display
            }
            var counts: [String: Int] = [:]
            for k in keys { counts[k, default: 0] += 1 }
            let top = counts.values.max() ?? 0
            let leaders = counts.filter { $0.value == top }
            if leaders.count == 1, let key = leaders.first?.key, let index = keys.firstIndex(of: key) {
                result.consensus = labels[index]
            }
            if labels.count >= 2 {
                let m = Double(labels.count)
                result.agreement = counts.values.reduce(0.0) { $0 + Double($1 * ($1 - 1)) } / (m * (m - 1))
            }
        case .rating(let min, let max):
            let values = labels.compactMap { if case .rating(let r) = $0 { r } else { nil } }.sorted()
            let mid = values.count / 2
            let median = values.count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2
            result.consensus = .rating(median)
            if values.count >= 2 {
                var total = 0.0
                var pairs = 0.0
                for i in 0..<values.count { for j in (i + 1)..<values.count { total += abs(values[i] - values[j]); pairs += 1 } }
                result.agreement = 1 - (total / pairs) / (max - min)
            }
        case .span, .boundingBox:
            var counts: [LabelValue: Int] = [:]
            for l in labels { counts[l, default: 0] += 1 }
            let top = counts.values.max() ?? 0
            let leaders = counts.filter { $0.value == top }
            if leaders.count == 1 { result.consensus = leaders.first?.key }
            if labels.count >= 2 {
                var total = 0.0
                var pairs = 0.0
                for i in 0..<labels.count { for j in (i + 1)..<labels.count { total += iou(labels[i], labels[j]); pairs += 1 } }
                result.agreement = total / pairs
            }
        }
        return result
    }

    /// Intersection over union of two spans or two boxes.
    package static func iou(_ a: LabelValue, _ b: LabelValue) -> Double {
        switch (a, b) {
        case (.span(let s1, let e1), .span(let s2, let e2)):
            let inter = max(0, min(e1, e2) - max(s1, s2))
            let union = max(e1, e2) - min(s1, s2)
            return union == 0 ? 0 : Double(inter) / Double(union)
        case (.boundingBox(let x1, let y1, let w1, let h1), .boundingBox(let x2, let y2, let w2, let h2)):
            let iw = max(0, min(x1 + w1, x2 + w2) - max(x1, x2))
            let ih = max(0, min(y1 + h1, y2 + h2) - max(y1, y2))
            let inter = iw * ih
            let union = w1 * h1 + w2 * h2 - inter
            return union <= 0 ? 0 : inter / union
        default: return 0
        }
    }
}

/// Dataset agreement, fed one unit (task) at a time so a dataset of any size streams through.
///
/// Krippendorff's α by the coincidence-matrix method (Krippendorff 2011, "Computing Krippendorff's
/// Alpha-Reliability"): units with fewer than two values are not pairable and are skipped.
/// nominal: α = 1 − (n−1)·Σ_u (m_u² − Σ_c n_uc²)/(m_u−1) / (n² − Σ_c n_c²)
/// interval: the same with squared differences, accumulated from sums of values and squares.
/// Fleiss' κ (Fleiss 1971), generalized to a varying number of raters per unit:
/// P_u = (Σ_c n_uc² − m_u) / (m_u(m_u − 1)), P̄ = mean P_u, p_c = n_c / n, κ = (P̄ − Σ p_c²) / (1 − Σ p_c²).
package struct AgreementAccumulator: Sendable {
    // Nominal α and Fleiss' κ.
    private var categoryTotals: [String: Double] = [:]
    private var observedDisagreement = 0.0
    private var fleissSum = 0.0
    // Interval α.
    private var intervalObserved = 0.0
    private var sum = 0.0
    private var sumSquares = 0.0
    private var numericValues = 0.0
    package private(set) var pairableValues = 0
    package private(set) var units = 0

    package init() {}

    /// Adds one unit's nominal values (e.g. the choices its labelers picked).
    package mutating func addNominal(_ values: [String]) {
        guard values.count >= 2 else { return }
        let m = Double(values.count)
        var counts: [String: Double] = [:]
        for v in values { counts[v, default: 0] += 1 }
        let sameSquares = counts.values.reduce(0) { $0 + $1 * $1 }
        observedDisagreement += (m * m - sameSquares) / (m - 1)
        fleissSum += (sameSquares - m) / (m * (m - 1))
        for (c, n) in counts { categoryTotals[c, default: 0] += n }
        pairableValues += values.count
        units += 1
    }

    /// Adds one unit's numeric values (e.g. ratings).
    package mutating func addInterval(_ values: [Double]) {
        guard values.count >= 2 else { return }
        let m = Double(values.count)
        let s = values.reduce(0, +)
        let sq = values.reduce(0) { $0 + $1 * $1 }
        // Σ_{i≠j} (v_i − v_j)² = 2m·Σv² − 2(Σv)²
        intervalObserved += (2 * m * sq - 2 * s * s) / (m - 1)
        sum += s
        sumSquares += sq
        numericValues += m
        // Ratings are also categories for Fleiss' κ and nominal α.
        addNominal(values.map { LabelValue.rating($0).display })
    }

    /// Krippendorff's α treating values as unordered categories; nil without disagreement to measure.
    package var alphaNominal: Double? {
        let n = categoryTotals.values.reduce(0, +)
        guard n > 1 else { return nil }
        let expected = n * n - categoryTotals.values.reduce(0) { $0 + $1 * $1 }
        guard expected > 0 else { return nil }
        return 1 - (n - 1) * observedDisagreement / expected
    }

    /// Krippendorff's α with the interval metric (squared differences).
    package var alphaInterval: Double? {
        let n = numericValues
        guard n > 1 else { return nil }
        let expected = 2 * n * sumSquares - 2 * sum * sum
        guard expected > 0 else { return nil }
        return 1 - (n - 1) * intervalObserved / expected
    }

    /// Fleiss' κ over the nominal values.
    package var fleissKappa: Double? {
        guard units > 0 else { return nil }
        let n = categoryTotals.values.reduce(0, +)
        let pe = categoryTotals.values.reduce(0) { $0 + ($1 / n) * ($1 / n) }
        guard pe < 1 else { return nil }
        let pBar = fleissSum / Double(units)
        return (pBar - pe) / (1 - pe)
    }
}

package struct DatasetAgreement: Hashable, Sendable, Codable {
    package var dataset: String
    package var tasks: Int
    package var labels: Int
    /// Units with at least two labels (the ones agreement can be measured on).
    package var pairableTasks: Int
    package var krippendorffAlphaNominal: Double?
    package var krippendorffAlphaInterval: Double?
    package var fleissKappa: Double?

    package init(dataset: String, tasks: Int, labels: Int, pairableTasks: Int, krippendorffAlphaNominal: Double?,
                 krippendorffAlphaInterval: Double?, fleissKappa: Double?)
    {
        self.dataset = dataset
        self.tasks = tasks
        self.labels = labels
        self.pairableTasks = pairableTasks
        self.krippendorffAlphaNominal = krippendorffAlphaNominal
        self.krippendorffAlphaInterval = krippendorffAlphaInterval
        self.fleissKappa = fleissKappa
    }
}
