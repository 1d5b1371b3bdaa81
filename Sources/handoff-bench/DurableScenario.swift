import Foundation
import GRDB
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Synchronization

/// Scenario 2: decisions through the core and the SQLite store at maximum rate (many at once, as a
/// busy chat socket or API delivers them), against the same number of raw SQLite commits with the same
/// pragmas on the same disk, one after another: the physical limit of "durable".
struct DurableScenario {
    let options: BenchOptions

    func run() async throws -> ScenarioReport {
        let n = options.durableDecisions
        var report = ScenarioReport(
            name: "durable", title: "Durable decisions without chat (\(Format.grouped(n)) each)",
            columns: ["path", "writers", "per second", "p50", "p99", "writes/commit", "vs raw"])

        let raw = try await rawCommits(n)
        report.row("raw SQLite commits (1 row, WAL, synchronous=FULL)", "1", Format.rate(raw.rate), Format.ms(raw.latencies.p50),
                   Format.ms(raw.latencies.p99), "1", "100%")
        report.metrics["raw_commits_per_s"] = raw.rate

        var best: Measured?
        for writers in options.durableConcurrency {
            var groupCommit = options
            groupCommit.groupCommit = true
            let grouped = try await decisions(n, options: groupCommit, writers: writers, label: "decisions, group commit, \(writers) at once")
            report.row("core + store decisions, group commit", "\(writers)", Format.rate(grouped.rate),
                       Format.ms(grouped.latencies.p50), Format.ms(grouped.latencies.p99), Format.number(grouped.writesPerCommit),
                       String(format: "%.0f%%", grouped.rate / raw.rate * 100))
            report.metrics["decisions_\(writers)_writers_per_s"] = grouped.rate
            report.metrics["decisions_\(writers)_writers_writes_per_commit"] = grouped.writesPerCommit
            report.metrics.merge(grouped.latencies.metrics("decision_\(writers)_writers")) { $1 }
            if grouped.rate > best?.rate ?? 0 { best = grouped }
        }
        let bestRatio = (best?.rate ?? 0) / raw.rate
        report.metrics["decisions_per_s"] = best?.rate ?? 0
        report.metrics["decisions_vs_raw"] = bestRatio

        let writers = options.durableConcurrency.last ?? 64
        var single = options
        single.groupCommit = false
        let serial = try await decisions(n, options: single, writers: writers, label: "decisions, one transaction each")
        report.row("core + store decisions, one transaction each (before)", "\(writers)", Format.rate(serial.rate),
                   Format.ms(serial.latencies.p50), Format.ms(serial.latencies.p99), "1",
                   String(format: "%.0f%%", serial.rate / raw.rate * 100))
        report.metrics["decisions_without_group_commit_per_s"] = serial.rate
        report.metrics["decisions_without_group_commit_vs_raw"] = serial.rate / raw.rate

        report.sections.append(try await breakdown(min(n, 2_000)))
        report.sections.append(try coding(options.quick ? 500 : 20_000))

        report.notes.append("a decision = load the approval, check the event key, core transition, one change set (approval CAS update, audit, outbox, timer cancel, inbox key)")
        report.notes.append("raw = one INSERT per transaction, one after another, same file system, same connection settings")
        report.target("durable decisions (best of \(options.durableConcurrency.map(String.init).joined(separator: ", ")) at once) vs raw SQLite commits",
                      bestRatio * 100, .atLeast, 50, unit: "%")
        return report
    }

    struct Measured {
        var rate: Double
        var latencies: Latencies
        var writesPerCommit: Double = 1
    }

    /// One INSERT per transaction, one after another, on GRDB's blocking API (off the cooperative pool).
    func rawCommits(_ n: Int) async throws -> Measured {
        let path = options.directory + "/raw.sqlite"
        defer { remove(path) }
        let progress = ProgressBar("raw commits", total: n)
        let result: Result<Measured, any Error> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Result { try Self.rawCommits(n, path: path, progress: progress) })
            }
        }
        progress.finish()
        return try result.get()
    }

    private static func rawCommits(_ n: Int, path: String, progress: ProgressBar) throws -> Measured {
        let pool = try DatabasePool(path: path, configuration: SQLiteDatabase.grdbConfiguration(SQLiteDatabase.Configuration()))
        defer { try? pool.close() }
        try pool.write { db in
            try db.execute(sql: "CREATE TABLE raw (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL)")
        }
        var latencies = Latencies()
        let start = ContinuousClock.now
        for i in 0..<n {
            let t0 = ContinuousClock.now
            try pool.write { db in
                try db.execute(sql: "INSERT INTO raw (at, payload) VALUES (?, ?)", arguments: [i, "decision \(i)"])
            }
            latencies.add(ContinuousClock.now - t0)
            if i % 256 == 0 { progress.update(i) }
        }
        progress.update(n)
        return Measured(rate: Double(n) / (ContinuousClock.now - start).seconds, latencies: latencies)
    }

    /// `n` pending approvals, then `n` approve decisions, `writers` at once.
    func decisions(_ n: Int, options: BenchOptions, writers: Int, label: String) async throws -> Measured {
        let path = options.directory + "/durable-\(options.groupCommit ? "group" : "single").sqlite"
        remove(path)
        defer { remove(path) }
        let (workflow, database) = try await BenchPolicy.openWorkflow(path: path, options: options)
        do {
            let fill = ProgressBar("\(label): set-up", total: n)
            var created: [ApprovalID] = []
            created.reserveCapacity(n)
            while created.count < n {
                let batch = (created.count..<min(n, created.count + 2000)).map { i in
                    ApprovalRequest(action: "deploy", arguments: .object(["service": .string("api"), "build": .int(Int64(i))]),
                                    summary: "Deploy api build \(i)", requester: ActorID("bench:agent"))
                }
                created += try await workflow.requestApprovals(batch: batch).map(\.id)
                fill.update(created.count)
            }
            fill.finish()

            let progress = ProgressBar(label, total: n)
            let next = Counter()
            let ids = created
            let latencies = LatencyBox()
            let deciders = [Actor(ActorID("bench:alice")), Actor(ActorID("bench:bob"))]
            let before = database.commitStatistics
            let start = ContinuousClock.now
            try await withThrowingDiscardingTaskGroup { group in
                for w in 0..<writers {
                    group.addTask {
                        while true {
                            let i = next.next()
                            guard i < n else { return }
                            let t0 = ContinuousClock.now
                            _ = try await workflow.decide(ids[i], verdict: .approve, comment: "ok", by: deciders[w % 2],
                                                          event: EventKey(source: "bench", key: "decision-\(i)"))
                            latencies.add(ContinuousClock.now - t0)
                            if i % 128 == 0 { progress.update(i) }
                        }
                    }
                }
            }
            let elapsed = ContinuousClock.now - start
            progress.update(n)
            progress.finish()
            let after = database.commitStatistics
            let decided = try await workflow.store.approvals(status: "approved", limit: 1, before: nil).count
            guard decided == 1 else { throw BenchError("no approval was decided") }
            try await workflow.store.close()
            let transactions = after.transactions - before.transactions
            return Measured(rate: Double(n) / elapsed.seconds, latencies: latencies.value,
                            writesPerCommit: transactions > 0 ? Double(after.writes - before.writes) / Double(transactions) : 1)
        } catch {
            try? await workflow.store.close()
            throw error
        }
    }

    /// Where one decision's time goes: each part timed alone, one at a time (no concurrency), p50.
    func breakdown(_ n: Int) async throws -> ScenarioReport.Section {
        let path = options.directory + "/durable-breakdown.sqlite"
        remove(path)
        defer { remove(path) }
        var settings = options
        settings.groupCommit = true
        let (workflow, database) = try await BenchPolicy.openWorkflow(path: path, options: settings)
        do {
            let approvals = try await workflow.requestApprovals(batch: (0..<(2 * n)).map { i in
                ApprovalRequest(action: "deploy", arguments: .object(["service": .string("api"), "build": .int(Int64(i))]),
                                summary: "Deploy api build \(i)", requester: ActorID("bench:agent"))
            })
            let store = workflow.store
            let alice = Actor(ActorID("bench:alice"))
            var dedupe = Latencies(), rawRead = Latencies(), load = Latencies(), encode = Latencies(), commit = Latencies()
            var whole = Latencies(), hop = Latencies()
            for i in 0..<n {
                let approval = approvals[i]
                var t0 = ContinuousClock.now
                _ = try await store.eventEntity(source: "bench", key: "breakdown-\(i)")
                dedupe.add(ContinuousClock.now - t0)
                t0 = ContinuousClock.now
                _ = try await database.read("SELECT version, data FROM approvals WHERE id = ?", [.integer(approval.id.rawValue)])
                rawRead.add(ContinuousClock.now - t0)
                t0 = ContinuousClock.now
                guard let loaded = try await store.approval(approval.id) else { throw BenchError("approval \(approval.id) missing") }
                load.add(ContinuousClock.now - t0)
                t0 = ContinuousClock.now
                _ = try await database.read("SELECT 1 AS one")
                hop.add(ContinuousClock.now - t0)
                // The decision's change set, built as the workflow builds it: the approval row (JSON), its
                // audit event, an outbox row, a timer cancel and the event key.
                t0 = ContinuousClock.now
                var decided = loaded.value
                decided.summary = (decided.summary ?? "") + " "
                let row = try decided.row()
                encode.add(ContinuousClock.now - t0)
                var changes = ChangeSet(eventKey: EventKey(source: "bench", key: "breakdown-\(i)"))
                changes.updates.append((row, loaded.version))
                changes.audit.append(AuditEvent(at: Date(), actor: alice.id, entity: approval.ref, from: "pending", to: "pending", detail: "bench"))
                changes.outbox.append(OutboxDraft(kind: .updateCards, entity: approval.ref))
                changes.timers.append(.cancel(approval.ref, .expiry))
                t0 = ContinuousClock.now
                try await store.commit(changes, now: Date())
                commit.add(ContinuousClock.now - t0)
                // A whole decision on another approval, the same way the concurrent runs make them.
                t0 = ContinuousClock.now
                _ = try await workflow.decide(approvals[n + i].id, verdict: .approve, comment: "ok", by: alice,
                                              event: EventKey(source: "bench", key: "breakdown-decision-\(i)"))
                whole.add(ContinuousClock.now - t0)
            }
            try await workflow.store.close()
            func us(_ l: Latencies) -> String { l.p50.map { String(format: "%.0f µs", $0 * 1e6) } ?? "-" }
            return ScenarioReport.Section(
                title: "Where one decision's time goes (each part alone, one at a time, p50 of \(Format.grouped(n)))",
                columns: ["part", "p50"],
                rows: [
                    ["a read through the pool (SELECT 1: hand-off to a reader connection and back)", us(hop)],
                    ["event-key check (inbox lookup)", us(dedupe)],
                    ["load the approval row (SQL only)", us(rawRead)],
                    ["load the approval (row + JSON decode)", us(load)],
                    ["encode the changed approval (JSON)", us(encode)],
                    ["commit the change set (5 statements, group commit, disk sync)", us(commit)],
                    ["a whole decision (Workflow.decide)", us(whole)],
                ])
        } catch {
            try? await workflow.store.close()
            throw error
        }
    }

    /// The JSON coding of one approval row, alone in a loop: the store's coder against Foundation's
    /// (what the store used before), both ways.
    func coding(_ n: Int) throws -> ScenarioReport.Section {
        let alice = Actor(ActorID("bench:alice"))
        let directory = Directory(groups: ["approvers": [alice.id]])
        let created = try ApprovalMachine.create(
            id: ApprovalID(1), request: ApprovalRequest(action: "deploy", arguments: .object(["service": .string("api"), "build": .int(42)]),
                                                        summary: "Deploy api build 42", requester: ActorID("bench:agent"),
                                                        callerState: .object(["n": .int(42)]), callbackURL: "https://ci.example.com/hooks/approvals"),
            policy: ApprovalPolicy(deciders: ["approvers"]), now: SystemClock().now()).entity
        // Times as the service keeps them (whole milliseconds, SystemClock).
        let approval = try ApprovalMachine.decide(created, verdict: .approve, comment: "ship it", by: alice, directory: directory,
                                                  now: SystemClock().now()).entity
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        let text = try JSONValueCoder.encodeUTF8(approval)
        func time(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<min(n, 200) { try body() }  // warm
            let start = ContinuousClock.now
            for _ in 0..<n { try body() }
            return (ContinuousClock.now - start).seconds / Double(n)
        }
        let ourEncode = try time { _ = try JSONValueCoder.encodeUTF8(approval) }
        let ourDecode = try time { _ = try JSONValueCoder.decode(Approval.self, fromUTF8: text) }
        let parse = time { _ = JSONValue.parseStrict(text) }
        let theirEncode = try time { _ = try encoder.encode(approval) }
        let theirDecode = try time { _ = try JSONValue.decode(Approval.self, from: Data(text), decoder: decoder) }
        func us(_ seconds: Double) -> String { String(format: "%.1f µs", seconds * 1e6) }
        return ScenarioReport.Section(
            title: "JSON coding of one decided approval (\(text.count) bytes), mean of \(Format.grouped(n)) in a loop",
            columns: ["coder", "encode", "decode"],
            rows: [
                ["JSONValueCoder (the store's)", us(ourEncode), us(ourDecode) + " (of which parsing \(us(parse)))"],
                ["Foundation JSONEncoder / JSONDecoder (the store's before)", us(theirEncode), us(theirDecode)],
            ])
    }

    private func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
