import Foundation
import HandoffStore
import Synchronization

/// Passes statements to a real SQLite database and remembers every one sent (reads and write steps),
/// so a test can ask SQLite how it runs exactly the SQL the store sends.
package final class PlanRecordingDatabase: SQLDatabase {
    package let inner: SQLiteDatabase
    private let sent = Mutex<[SQLStatement]>([])

    package init(_ inner: SQLiteDatabase) { self.inner = inner }

    package var dialect: SQLDialect { inner.dialect }

    package func read(_ statement: SQLStatement) async throws -> [SQLRow] {
        sent.withLock { $0.append(statement) }
        return try await inner.read(statement)
    }

    package func write(_ steps: [WriteStep]) async throws -> [WriteResult] {
        sent.withLock { $0 += steps.map(\.statement) }
        return try await inner.write(steps)
    }

    package func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) throws -> T) async throws -> T {
        try await inner.transaction { [self] transaction in try body(Recording(inner: transaction, owner: self)) }
    }

    package func transaction<R: Sendable, D: Sendable, T: Sendable>(
        read: @escaping @Sendable (any SQLTransaction) throws -> R, decide: @escaping @Sendable (R) throws -> D,
        write: @escaping @Sendable (any SQLTransaction, D) throws -> T
    ) async throws -> T {
        try await inner.transaction(read: { [self] t in try read(Recording(inner: t, owner: self)) }, decide: decide,
                                    write: { [self] t, d in try write(Recording(inner: t, owner: self), d) })
    }

    private func record(_ statements: [SQLStatement]) { sent.withLock { $0 += statements } }

    private struct Recording: SQLTransaction {
        let inner: any SQLTransaction
        let owner: PlanRecordingDatabase

        func read(_ statement: SQLStatement) throws -> [SQLRow] {
            owner.record([statement])
            return try inner.read(statement)
        }

        func run(_ steps: [WriteStep]) throws -> [WriteResult] {
            owner.record(steps.map(\.statement))
            return try inner.run(steps)
        }
    }

    package func close() async throws { try await inner.close() }

    /// The statements sent while `body` ran, in order.
    package func recording(_ body: () async throws -> Void) async throws -> [SQLStatement] {
        sent.withLock { $0.removeAll() }
        try await body()
        return sent.withLock { $0 }
    }

    /// SQLite's plan for a statement, one line per step (`SEARCH t USING INDEX …`, `SCAN t`, …).
    package func plan(_ statement: SQLStatement) async throws -> [String] {
        try await inner.queryPlan(statement)
    }

    /// The steps of a plan that read a whole table rather than an index: `SCAN t` without `USING
    /// (COVERING) INDEX`. Scans of the statement's own common table expressions (`cte`) walk rows it
    /// made itself, one per step, and are not table scans.
    package static func fullScans(_ plan: [String], cte: Set<String> = []) -> [String] {
        plan.filter { step in
            guard step.hasPrefix("SCAN "), !step.contains("USING INDEX"), !step.contains("USING COVERING INDEX") else { return false }
            let table = step.dropFirst("SCAN ".count).split(separator: " ").first.map(String.init) ?? ""
            return !cte.contains(table)
        }
    }
}
