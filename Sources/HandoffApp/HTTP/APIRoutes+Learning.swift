import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Hummingbird
import NIOCore

/// Feedback, corrections and labeling.
extension APIRoutes {
    struct RequestFeedback: Decodable {
        var kind: String?
        var options: [String]?
        var prompt: String
        var subject: String?
        var channel: String?
        var respondent: String?
        var origin: String?
        var callbackUrl: String?
        var deadline: Span?
    }

    struct Respond: Decodable { var value: JSONValue }

    struct Rates: Encodable {
        var overall: ResponseRate
        var overallRate: Double?
        var channels: [ResponseRate]
    }

    struct RecordCorrection: Decodable {
        var query: String
        var original: String
        var corrected: String
        var route: String?
    }

    struct Pattern: Encodable {
        var summary: String
        var count: Int
        var signature: [String]
        var examples: [CorrectionView]
    }

    struct Patterns: Encodable { var patterns: [Pattern] }
    struct Similar: Encodable { var corrections: [CorrectionView] }

    func registerFeedbackAndCorrections(_ router: HTTPRouter) {
        kit.route(router, .post, "/v1/feedback", .agent) { request, _, principal in
            let body = try await kit.body(RequestFeedback.self, request)
            let kind: FeedbackKind
            switch body.kind ?? "rating" {
            case "rating": kind = .rating
            case "text": kind = .text
            case "choice": kind = .choice(options: body.options ?? [])
            default: throw APIError.invalid("kind", "kind must be rating, text or choice")
            }
            let key = try kit.idempotencyKey(request, principal)
            let replayed = try await kit.wasApplied(key)
            let feedback = try await workflow.requestFeedback(
                FeedbackRequestInput(kind: kind, prompt: body.prompt, subject: body.subject, channel: body.channel ?? "default",
                                     respondent: body.respondent.map { ActorID($0) }, origin: body.origin, callbackURL: body.callbackUrl,
                                     deadline: body.deadline),
                by: principal.actor.id, idempotencyKey: key)
            return try kit.created(FeedbackView(feedback), new: !replayed)
        }
        kit.route(router, .get, "/v1/feedback/rates", .anyKey) { _, _, _ in
            let (overall, channels) = try await workflow.feedbackRates()
            return try kit.json(Rates(overall: overall, overallRate: overall.rate, channels: channels))
        }
        kit.route(router, .get, "/v1/feedback/{id}", .anyKey) { _, context, _ in
            try kit.json(FeedbackView(try await workflow.feedback(try context.id(.feedback))))
        }
        kit.route(router, .post, "/v1/feedback/{id}/response", .reviewer) { request, context, principal in
            let id: FeedbackID = try context.id(.feedback)
            let body = try await kit.body(Respond.self, request)
            let value: String
            switch body.value {
            case .string(let s): value = s
            case .int(let i): value = String(i)
            // Int64(exactly:) rather than Int64(_:): a huge number (1e300) is an invalid answer, not a crash.
            case .double(let d): value = Int64(exactly: d).map(String.init) ?? String(d)
            case .decimal(let d): value = d.description
            default: throw APIError.invalid("value", "value must be a string or a number")
            }
            return try kit.json(FeedbackView(try await workflow.respond(id, value: value, by: principal.actor)))
        }

        kit.route(router, .post, "/v1/corrections", .agent) { request, _, principal in
            let body = try await kit.body(RecordCorrection.self, request)
            let correction = try await workflow.recordCorrection(
                CorrectionInput(query: body.query, original: body.original, corrected: body.corrected, route: body.route),
                by: principal.actor.id, idempotencyKey: try kit.idempotencyKey(request, principal))
            return try kit.json(CorrectionView(correction), status: .created)
        }
        kit.route(router, .get, "/v1/corrections/patterns", .anyKey) { request, _, _ in
            let reports = try await workflow.correctionPatterns(
                floor: try request.intQuery("floor", default: 2, range: 1...1_000_000),
                similarity: try request.doubleQuery("similarity", default: 0.5, range: 0...1),
                examples: try request.intQuery("examples", default: 3, range: 0...20))
            return try kit.json(Patterns(patterns: reports.map {
                Pattern(summary: $0.pattern.summary, count: $0.pattern.count, signature: $0.pattern.signature,
                        examples: $0.examples.map { CorrectionView($0) })
            }))
        }
        kit.route(router, .get, "/v1/corrections/similar", .anyKey) { request, _, _ in
            guard let query = request.query("query") else { throw APIError.invalid("query", "query is required") }
            let found = try await workflow.similarCorrections(to: query, k: try request.intQuery("k", default: 3, range: 1...50))
            return try kit.json(Similar(corrections: found.map { CorrectionView($0.correction, similarity: $0.similarity) }))
        }
        kit.route(router, .get, "/v1/corrections/{id}", .anyKey) { _, context, _ in
            try kit.json(CorrectionView(try await workflow.correction(try context.id(.correction))))
        }
    }

    // MARK: Labeling

    struct CreateTask: Decodable {
        var dataset: String
        var type: String
        var options: [String]?
        var min: Double?
        var max: Double?
        var content: String
        var instructions: String?
        var overlap: Int?
        var labelers: [String]?
    }

    struct AddLabel: Decodable { var value: JSONValue }

    struct LabelLine: Encodable {
        var labeler: String
        var value: JSONValue
        var at: Date
    }

    struct Labeled: Encodable {
        var task: LabelTaskView
        var label: LabelLine
    }

    struct NextTask: Encodable { var task: LabelTaskView? }

    struct ConsensusAnswer: Encodable {
        var task: Int64
        var labels: [LabelLine]
        var consensus: JSONValue?
        var agreement: Double?
    }

    func registerLabeling(_ router: HTTPRouter) {
        kit.route(router, .post, "/v1/label-tasks", .agent) { request, _, principal in
            let body = try await kit.body(CreateTask.self, request)
            let type: LabelType
            switch body.type {
            case "text": type = .text
            case "choice": type = .choice(options: body.options ?? [])
            case "rating": type = .rating(min: body.min ?? 1, max: body.max ?? 5)
            case "span": type = .span
            case "bbox", "bounding_box": type = .boundingBox
            default: throw APIError.invalid("type", "type must be text, choice, rating, span or bbox")
            }
            let task = try await workflow.createLabelTask(
                LabelTaskInput(dataset: body.dataset, type: type, content: body.content, instructions: body.instructions,
                               overlap: body.overlap ?? 1, labelers: body.labelers ?? ["labelers"]),
                by: principal.actor.id, idempotencyKey: try kit.idempotencyKey(request, principal))
            return try kit.json(LabelTaskView(task), status: .created)
        }
        kit.route(router, .get, "/v1/label-tasks", .anyKey) { request, _, _ in
            let limit = try request.intQuery("limit", default: 50, range: 1...200)
            let tasks = try await workflow.labelTasks(dataset: request.query("dataset"), limit: limit, after: try request.idQuery("after"))
            return try kit.json(Page(items: tasks.map(LabelTaskView.init), next: tasks.count == limit ? tasks.last?.id.rawValue : nil))
        }
        kit.route(router, .get, "/v1/label-tasks/next", .reviewer) { request, _, principal in
            let task = try await workflow.nextLabelTask(dataset: request.query("dataset"), for: principal.actor)
            return try kit.json(NextTask(task: task.map(LabelTaskView.init)))
        }
        kit.route(router, .get, "/v1/label-tasks/{id}", .anyKey) { _, context, _ in
            try kit.json(LabelTaskView(try await workflow.labelTask(try context.id(.labelTask))))
        }
        kit.route(router, .post, "/v1/label-tasks/{id}/labels", .reviewer) { request, context, principal in
            let id: LabelTaskID = try context.id(.labelTask)
            let body = try await kit.body(AddLabel.self, request)
            let (task, label) = try await workflow.addLabel(id, json: body.value, by: principal.actor)
            return try kit.json(Labeled(task: LabelTaskView(task),
                                        label: LabelLine(labeler: label.labeler.rawValue, value: LabelValueJSON.encode(label.value), at: label.at)),
                                status: .created)
        }
        kit.route(router, .get, "/v1/label-tasks/{id}/consensus", .anyKey) { _, context, _ in
            let (_, labels, consensus) = try await workflow.consensus(try context.id(.labelTask))
            return try kit.json(ConsensusAnswer(
                task: consensus.task.rawValue,
                labels: labels.map { LabelLine(labeler: $0.labeler.rawValue, value: LabelValueJSON.encode($0.value), at: $0.at) },
                consensus: consensus.consensus.map(LabelValueJSON.encode), agreement: consensus.agreement))
        }
        kit.route(router, .get, "/v1/datasets/{dataset}/agreement", .anyKey) { _, context, _ in
            try kit.json(try await workflow.agreement(dataset: try context.text("dataset")))
        }
        kit.route(router, .get, "/v1/datasets/{dataset}/export", .anyKey) { _, context, _ in
            let dataset = try context.text("dataset")
            let workflow = self.workflow
            let filename = dataset.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
            let headers: HTTPFields = [
                .contentType: "application/x-ndjson; charset=utf-8",
                .contentDisposition: "attachment; filename=\"\(filename.isEmpty ? "dataset" : filename).jsonl\"",
            ]
            let body = ResponseBody { writer in
                try await ChunkPipe.run(produce: { send in
                    var chunk = ""
                    _ = try await workflow.exportJSONL(dataset: dataset) { line in
                        chunk += line
                        if chunk.utf8.count >= 32 * 1024 {
                            try await send(chunk)
                            chunk = ""
                        }
                    }
                    if !chunk.isEmpty { try await send(chunk) }
                }, consume: { chunk in
                    try await writer.write(ByteBuffer(string: chunk))
                })
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: headers, body: body)
        }
    }
}
