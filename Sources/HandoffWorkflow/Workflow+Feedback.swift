import Foundation
import HandoffCore
import HandoffStore

extension Workflow {
    func loadFeedback(_ id: FeedbackID) async throws -> Versioned<FeedbackRequest> {
        guard let found = try await store.feedback(id) else { throw WorkflowError.notFound(EntityRef(kind: .feedback, id: id.rawValue)) }
        return found
    }

    package func feedback(_ id: FeedbackID) async throws -> FeedbackRequest { try await loadFeedback(id).value }

    package func requestFeedback(_ input: FeedbackRequestInput, by actor: ActorID, idempotencyKey: EventKey? = nil) async throws -> FeedbackRequest {
        let idempotencyKey = try bind(idempotencyKey, to: input)
        if let found = try await replay(idempotencyKey, kind: .feedback, load: { try await store.feedback(FeedbackID($0)) }) {
            return found.value
        }
        let now = clock.now()
        let id = FeedbackID(try await nextID(.feedback))
        let t = try FeedbackMachine.request(id: id, input: input, config: policy.feedback, by: actor, now: now)
        if let winner = try await createOnce(t.entity.ref, key: idempotencyKey, load: { try await store.feedback(FeedbackID($0)) }, {
            try await commit(try changeSet(t, expectedVersion: nil, event: idempotencyKey, now: now), now: now)
        }) {
            return winner.value
        }
        return t.entity
    }

    package func respond(_ id: FeedbackID, value: String, by actor: Actor, event: EventKey? = nil) async throws -> FeedbackRequest {
        try await checkNotApplied(event)
        return try await retrying(EntityRef(kind: .feedback, id: id.rawValue)) {
            let current = try await loadFeedback(id)
            let now = clock.now()
            let t = try FeedbackMachine.respond(current.value, value: value, by: actor, now: now)
            try await commit(try changeSet(t, expectedVersion: current.version, event: event, now: now), now: now)
            return t.entity
        }
    }

    package func feedbackRates() async throws -> (overall: ResponseRate, channels: [ResponseRate]) {
        try await store.feedbackRates()
    }
}

extension Workflow {
    /// Adds a correction (row, query terms for retrieval, audit) to a change set.
    func add(correction t: Transition<Correction>, to cs: inout ChangeSet) throws {
        cs.inserts.append(try t.entity.row())
        cs.correctionTerms.append((t.entity.id, Set(TextAnalysis.tokens(t.entity.query))))
        cs.audit += t.audit
    }

    package func recordCorrection(_ input: CorrectionInput, by actor: ActorID, idempotencyKey: EventKey? = nil) async throws -> Correction {
        let idempotencyKey = try bind(idempotencyKey, to: input)
        if let found = try await replay(idempotencyKey, kind: .correction, load: { try await store.correction(CorrectionID($0)) }) {
            return found
        }
        let now = clock.now()
        let id = CorrectionID(try await nextID(.correction))
        let t = try CorrectionMachine.record(id: id, input: input, by: actor, now: now)
        var key = idempotencyKey
        key?.entity = t.entity.ref
        var cs = ChangeSet(eventKey: key)
        try add(correction: t, to: &cs)
        if let winner = try await createOnce(t.entity.ref, key: idempotencyKey, load: { try await store.correction(CorrectionID($0)) }, {
            try await commit(cs, now: now)
        }) {
            return winner
        }
        return t.entity
    }

    package func correction(_ id: CorrectionID) async throws -> Correction {
        guard let c = try await store.correction(id) else { throw WorkflowError.notFound(EntityRef(kind: .correction, id: id.rawValue)) }
        return c
    }

    /// A pattern with its example corrections.
    package struct PatternReport: Sendable {
        package var pattern: CorrectionPattern
        package var examples: [Correction]
    }

    /// Groups corrections by what they changed, streaming through them page by page; patterns with at
    /// least `floor` corrections are returned, largest first.
    package func correctionPatterns(floor: Int = 2, similarity: Double = 0.5, examples: Int = 3) async throws -> [PatternReport] {
        guard floor >= 1 else { throw WorkflowError.invalid("floor", "must be at least 1") }
        guard (0...1).contains(similarity) else { throw WorkflowError.invalid("similarity", "must be between 0 and 1") }
        var clusterer = PatternClusterer(similarity: similarity, maxExamples: examples)
        var after: CorrectionID?
        while true {
            let page = try await store.corrections(after: after, limit: 500)
            for c in page { clusterer.add(id: c.id, signature: c.signature) }
            guard page.count == 500, let last = page.last else { break }
            after = last.id
        }
        var out: [PatternReport] = []
        for pattern in clusterer.patterns(floor: floor) {
            var list: [Correction] = []
            for id in pattern.examples { if let c = try await store.correction(id) { list.append(c) } }
            out.append(PatternReport(pattern: pattern, examples: list))
        }
        return out
    }

    /// The k past corrections whose questions are most similar to `query` (TF-IDF cosine over query
    /// terms), best first. Only corrections sharing a term are read, through the term index.
    package func similarCorrections(to query: String, k: Int = 3) async throws -> [(correction: Correction, similarity: Double)] {
        guard k >= 1 else { throw WorkflowError.invalid("k", "must be at least 1") }
        let queryTerms = TextAnalysis.tokens(query)
        let terms = Set(queryTerms)
        guard !terms.isEmpty else { return [] }
        let candidates = try await store.correctionCandidates(terms: terms, limit: max(50, k * 10))
        guard !candidates.isEmpty else { return [] }
        let stats = try await store.termFrequencies(terms)
        var scored: [(correction: Correction, similarity: Double)] = []
        for c in candidates {
            let score = TextAnalysis.tfidfCosine(
                query: queryTerms, document: TextAnalysis.tokens(c.query),
                documentFrequency: stats.frequencies, documentCount: stats.documents)
            if score > 0 { scored.append((c, score)) }
        }
        scored.sort { a, b in a.similarity != b.similarity ? a.similarity > b.similarity : a.correction.id > b.correction.id }
        return Array(scored.prefix(k))
    }
}
