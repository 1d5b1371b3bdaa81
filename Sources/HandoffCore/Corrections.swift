import Foundation

/// A person's fix of an AI answer: the raw material of learning.
package struct Correction: Hashable, Sendable, Codable {
    package var id: CorrectionID
    package var query: String
    package var original: String
    package var corrected: String
    package var by: ActorID
    package var at: Date
    /// Where it came from (a review item), when known.
    package var source: EntityRef?
    package var route: String?

    package var ref: EntityRef { EntityRef(kind: .correction, id: id.rawValue) }

    /// What changed, as a set of `-removed` and `+added` tokens; patterns group corrections by it.
    package var signature: Set<String> { TextAnalysis.changeSignature(original: original, corrected: corrected) }
}

package struct CorrectionInput: Hashable, Sendable, Codable {
    package var query: String
    package var original: String
    package var corrected: String
    package var source: EntityRef?
    package var route: String?

    package init(query: String, original: String, corrected: String, source: EntityRef? = nil, route: String? = nil) {
        self.query = query
        self.original = original
        self.corrected = corrected
        self.source = source
        self.route = route
    }
}

package enum CorrectionMachine {
    package static let maxTextLength = 20_000

    package static func record(
        id: CorrectionID, input: CorrectionInput, by actor: ActorID, now: Date
    ) throws(WorkflowError) -> Transition<Correction> {
        for (field, value) in [("query", input.query), ("original", input.original), ("corrected", input.corrected)] {
            guard value.nilIfBlank != nil else { throw .invalid(field, "is required") }
            guard value.count <= maxTextLength else { throw .invalid(field, "is longer than \(maxTextLength) characters") }
        }
        guard input.original.trimmingCharacters(in: .whitespacesAndNewlines)
            != input.corrected.trimmingCharacters(in: .whitespacesAndNewlines)
        else { throw .invalid("corrected", "is the same as the original answer; nothing was corrected") }
        let correction = Correction(
            id: id, query: input.query, original: input.original, corrected: input.corrected, by: actor, at: now,
            source: input.source, route: input.route)
        return Transition(
            entity: correction,
            audit: [AuditEvent(at: now, actor: actor, entity: correction.ref, from: nil, to: "recorded",
                               detail: input.source.map { "from \($0)" })])
    }
}

/// Tokenizing, change signatures and similarity: the text math behind patterns and retrieval.
package enum TextAnalysis {
    /// Words that carry no meaning on their own; left out of signatures and retrieval.
    static let stopwords: Set<String> = [
        "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by", "from", "is", "are",
        "was", "were", "be", "been", "it", "its", "this", "that", "as", "i", "you", "we", "they", "he", "she", "do",
        "does", "did", "can", "will", "would", "should", "could", "my", "your", "our", "their", "me", "us", "them",
        "so", "if", "then", "than", "not", "no", "yes", "there", "here", "what", "which", "who", "how", "when", "where",
    ]

    /// Lowercased, lightly stemmed word tokens (letters and digits), stopwords removed:
    /// "Refunds took 30 days" → ["refund", "took", "30", "day"].
    package static func tokens(_ text: String) -> [String] {
        PhraseMatcher.normalize(text).split(separator: " ").map(String.init).filter { !stopwords.contains($0) }.map(stem)
    }

    /// Strips common English inflections so "refund", "refunds" and "refunded" meet. Deliberately
    /// light (a few suffix rules): it must never merge unrelated words.
    package static func stem(_ word: String) -> String {
        guard word.count > 3, word.allSatisfy(\.isLetter) else { return word }
        func drop(_ n: Int) -> String { String(word.dropLast(n)) }
        if word.hasSuffix("ies"), word.count > 4 { return drop(3) + "y" }
        if word.hasSuffix("sses") { return drop(2) }
        if word.hasSuffix("ing"), word.count > 5 { return drop(3) }
        if word.hasSuffix("ed"), word.count > 4, !word.hasSuffix("eed") { return drop(2) }
        if word.hasSuffix("s"), !word.hasSuffix("ss"), !word.hasSuffix("us"), !word.hasSuffix("is") { return drop(1) }
        return word
    }

    /// `-token` for every token the correction removed, `+token` for every token it added.
    package static func changeSignature(original: String, corrected: String) -> Set<String> {
        let before = Set(tokens(original))
        let after = Set(tokens(corrected))
        return Set(before.subtracting(after).map { "-" + $0 }).union(after.subtracting(before).map { "+" + $0 })
    }

    /// |A ∩ B| / |A ∪ B|; 1 when both are empty.
    package static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        if a.isEmpty && b.isEmpty { return 1 }
        let union = a.union(b).count
        return Double(a.intersection(b).count) / Double(union)
    }

    /// TF-IDF cosine similarity between a query and one document, given document frequencies.
    package static func tfidfCosine(query: [String], document: [String], documentFrequency: [String: Int], documentCount: Int) -> Double {
        func vector(_ terms: [String]) -> [String: Double] {
            var tf: [String: Double] = [:]
            for t in terms { tf[t, default: 0] += 1 }
            var v: [String: Double] = [:]
            for (term, count) in tf {
                let df = Double(documentFrequency[term] ?? 0)
                let idf = log((Double(documentCount) + 1) / (df + 1)) + 1
                v[term] = (1 + log(count)) * idf
            }
            return v
        }
        let q = vector(query)
        let d = vector(document)
        let dot = q.reduce(0.0) { $0 + $1.value * (d[$1.key] ?? 0) }
        let nq = sqrt(q.values.reduce(0) { $0 + $1 * $1 })
        let nd = sqrt(d.values.reduce(0) { $0 + $1 * $1 })
        return nq == 0 || nd == 0 ? 0 : dot / (nq * nd)
    }
}

/// A group of corrections that changed the same thing.
package struct CorrectionPattern: Hashable, Sendable, Codable {
    /// Tokens most of the group's corrections share (`-removed`, `+added`).
    package var signature: [String]
    package var count: Int
    package var examples: [CorrectionID]
    /// A short description: "replaced 30 days with 14 days".
    package var summary: String
}

/// Groups corrections by the similarity of what changed, one correction at a time, so a whole table
/// never has to be held in memory: each group keeps a token-count profile and a few example ids.
///
/// Memory is bounded whatever the number of corrections: at most `maxClusters` groups, each with at
/// most `maxTokens` token counts. The approximation, when a bound is reached:
/// - A correction that matches no group when `maxClusters` groups exist replaces the oldest group
///   that still has a single member (a one-off change, most likely noise); when every group has two
///   or more members, the correction is counted in ``dropped`` instead. A pattern whose first member
///   was evicted can therefore start again and be counted one or a few short — never a frequent
///   pattern, which stops being a singleton at its second member.
/// - A group holding `maxTokens` distinct tokens forgets its rarest ones; those are the ones furthest
///   from the profile (tokens held by at least half the members), so the profile is kept.
package struct PatternClusterer: Sendable {
    package var similarity: Double
    package var maxExamples: Int
    /// At most this many groups are kept.
    package var maxClusters: Int
    /// At most this many distinct tokens are counted per group.
    package var maxTokens: Int
    /// Corrections not counted in any group because every slot held a group of two or more.
    package private(set) var dropped = 0
    /// Singletons replaced by a newer correction when the group limit was reached.
    package private(set) var evicted = 0
    private var clusters: [Cluster] = []

    struct Cluster: Sendable {
        var tokenCounts: [String: Int]
        var count: Int
        var examples: [CorrectionID]
        /// When the group was made (or its slot reused): older singletons are evicted first.
        var serial: Int
        /// Tokens held by at least half the members: the profile new members are compared with.
        var profile: Set<String> {
            Set(tokenCounts.filter { Double($0.value) * 2 >= Double(count) }.keys)
        }
    }

    private var serial = 0

    package init(similarity: Double = 0.5, maxExamples: Int = 3, maxClusters: Int = 2_000, maxTokens: Int = 256) {
        self.similarity = similarity
        self.maxExamples = maxExamples
        self.maxClusters = max(1, maxClusters)
        self.maxTokens = max(1, maxTokens)
    }

    /// How many groups are held now (at most ``maxClusters``).
    package var clusterCount: Int { clusters.count }

    package mutating func add(id: CorrectionID, signature: Set<String>) {
        guard !signature.isEmpty else { return }
        var best: (index: Int, score: Double)?
        for (i, cluster) in clusters.enumerated() {
            let score = TextAnalysis.jaccard(signature, cluster.profile)
            if score >= similarity, score > (best?.score ?? -1) { best = (i, score) }
        }
        if let best {
            clusters[best.index].count += 1
            for token in signature { clusters[best.index].tokenCounts[token, default: 0] += 1 }
            if clusters[best.index].examples.count < maxExamples { clusters[best.index].examples.append(id) }
            trimTokens(of: best.index)
            return
        }
        serial += 1
        let cluster = Cluster(tokenCounts: Dictionary(uniqueKeysWithValues: signature.map { ($0, 1) }), count: 1,
                              examples: [id], serial: serial)
        if clusters.count < maxClusters {
            clusters.append(cluster)
            trimTokens(of: clusters.count - 1)
        } else if let oldest = clusters.indices.filter({ clusters[$0].count == 1 }).min(by: { clusters[$0].serial < clusters[$1].serial }) {
            clusters[oldest] = cluster
            trimTokens(of: oldest)
            evicted += 1
        } else {
            dropped += 1
        }
    }

    /// Keeps a group's `maxTokens` most frequent tokens (ties: alphabetical, so the result is deterministic).
    private mutating func trimTokens(of index: Int) {
        guard clusters[index].tokenCounts.count > maxTokens else { return }
        let kept = clusters[index].tokenCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(maxTokens)
        clusters[index].tokenCounts = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
    }

    /// Groups with at least `floor` members, largest first.
    package func patterns(floor: Int) -> [CorrectionPattern] {
        clusters.filter { $0.count >= floor }
            .sorted { $0.count > $1.count }
            .map { cluster in
                let signature = cluster.profile.sorted()
                let removed = signature.filter { $0.hasPrefix("-") }.map { String($0.dropFirst()) }
                let added = signature.filter { $0.hasPrefix("+") }.map { String($0.dropFirst()) }
                let summary: String
                switch (removed.isEmpty, added.isEmpty) {
                case (false, false): summary = "replaced \(removed.joined(separator: " ")) with \(added.joined(separator: " "))"
                case (false, true): summary = "removed \(removed.joined(separator: " "))"
                case (true, false): summary = "added \(added.joined(separator: " "))"
                case (true, true): summary = "(no common change)"
                }
                return CorrectionPattern(signature: signature, count: cluster.count, examples: cluster.examples, summary: summary)
            }
    }
}
