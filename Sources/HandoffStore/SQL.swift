import Foundation
import HandoffCore

/// A value bound into, or read out of, SQL. Both backends speak these five.
package enum SQLValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    package var int: Int64? {
        switch self {
        case .integer(let i): i
        case .real(let d): Int64(d)
        case .text(let s): Int64(s)
        default: nil
        }
    }

    package var double: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .real(let d): d
        case .text(let s): Double(s)
        default: nil
        }
    }

    package var string: String? {
        switch self {
        case .text(let s): s
        case .integer(let i): String(i)
        case .real(let d): String(d)
        case .blob(let b): String(decoding: b, as: UTF8.self)
        case .null: nil
        }
    }

    package var isNull: Bool { self == .null }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    package init(stringLiteral value: String) { self = .text(value) }
    package init(integerLiteral value: Int64) { self = .integer(value) }
    package init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
    package init(_ value: Int64?) { self = value.map(SQLValue.integer) ?? .null }
    package init(_ value: Int) { self = .integer(Int64(value)) }
    package init(_ value: Bool) { self = .integer(value ? 1 : 0) }
    package init(_ value: Date?) { self = value.map { .integer($0.millisecondsSince1970) } ?? .null }
}

/// One statement with `?` placeholders; backends rewrite placeholders for their dialect.
package struct SQLStatement: Hashable, Sendable, CustomStringConvertible {
    package var sql: String
    package var binds: [SQLValue]

    package init(_ sql: String, _ binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }

    package var description: String { sql }
}

/// One result row, read by column name.
package struct SQLRow: Sendable {
    package var columns: [String: Int]
    package var values: [SQLValue]

    package init(columns: [String: Int], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    package subscript(_ name: String) -> SQLValue {
        guard let index = columns[name] else { return .null }
        return values[index]
    }

    package func int(_ name: String) throws -> Int64 {
        guard let v = self[name].int else { throw StoreError.corrupt("column \(name) is not an integer") }
        return v
    }

    package func string(_ name: String) throws -> String {
        guard let v = self[name].string else { throw StoreError.corrupt("column \(name) is not text") }
        return v
    }

    package func date(_ name: String) throws -> Date { Date(millisecondsSince1970: try int(name)) }
    package func optionalDate(_ name: String) -> Date? { self[name].int.map(Date.init(millisecondsSince1970:)) }
}

/// What a write step must achieve for the transaction to commit.
package enum WriteExpectation: Hashable, Sendable {
    /// Anything goes.
    case any
    /// Exactly one row must change, or the whole transaction rolls back with this failure.
    case exactlyOne(StoreError)
    /// The insert must add a row; an existing row (ON CONFLICT DO NOTHING → 0 changes) means the
    /// whole change set is a duplicate of one already applied.
    case insertedOrDuplicate
}

package struct WriteStep: Hashable, Sendable {
    package var statement: SQLStatement
    package var expectation: WriteExpectation

    package init(_ statement: SQLStatement, expect expectation: WriteExpectation = .any) {
        self.statement = statement
        self.expectation = expectation
    }
}

/// Failures of the store itself, as opposed to workflow refusals.
package enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A compare-and-set lost: someone else changed the row first.
    case conflict(String)
    /// The change set carries an event key that was already applied.
    case duplicate
    /// A row could not be read back into an entity.
    case corrupt(String)
    /// A uniqueness rule was broken (e.g. a labeler labeling a task twice).
    case uniqueViolation(String)
    /// The database could not be opened or used.
    case unavailable(String)

    package var description: String {
        switch self {
        case .conflict(let what): "conflict: \(what) was changed concurrently"
        case .duplicate: "duplicate: this event was already applied"
        case .corrupt(let what): "stored data is unreadable: \(what)"
        case .uniqueViolation(let what): "already exists: \(what)"
        case .unavailable(let why): "database unavailable: \(why)"
        }
    }
}

package struct WriteResult: Sendable {
    package var changes: Int
    package var rows: [SQLRow]

    package init(changes: Int, rows: [SQLRow]) {
        self.changes = changes
        self.rows = rows
    }
}

extension WriteExpectation {
    /// Checks a step's change count; throws the failure that rolls the transaction back.
    package func check(changes: Int) throws {
        switch self {
        case .any: break
        case .exactlyOne(let failure): if changes != 1 { throw failure }
        case .insertedOrDuplicate: if changes == 0 { throw StoreError.duplicate }
        }
    }
}

/// The SQL dialect a backend speaks; migrations are written once with type placeholders.
package enum SQLDialect: Sendable {
    case sqlite
    case postgres

    /// Replaces `{autoid}`, `{int}`, `{real}`, `{text}` in neutral DDL.
    package func ddl(_ neutral: String) -> String {
        switch self {
        case .sqlite:
            neutral.replacingOccurrences(of: "{autoid}", with: "INTEGER PRIMARY KEY AUTOINCREMENT")
                .replacingOccurrences(of: "{int}", with: "INTEGER")
                .replacingOccurrences(of: "{real}", with: "REAL")
                .replacingOccurrences(of: "{text}", with: "TEXT")
        case .postgres:
            neutral.replacingOccurrences(of: "{autoid}", with: "BIGSERIAL PRIMARY KEY")
                .replacingOccurrences(of: "{int}", with: "BIGINT")
                .replacingOccurrences(of: "{real}", with: "DOUBLE PRECISION")
                .replacingOccurrences(of: "{text}", with: "TEXT")
        }
    }
}

/// A database that runs statements: the only thing a backend must provide.
package protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs a query outside any write transaction.
    func read(_ statement: SQLStatement) async throws -> [SQLRow]
    /// Runs the steps in one transaction, checking each expectation; returns, per step, how many rows
    /// it changed and what its RETURNING clause produced. Throws ``StoreError`` and rolls back when an
    /// expectation fails.
    func write(_ steps: [WriteStep]) async throws -> [WriteResult]
    /// ``write(_:)`` ahead of the queue: for the few small writes someone waits on with a deadline (an
    /// inbound chat event recorded before its ack), so they go in the very next transaction rather than
    /// behind everything queued.
    func write(_ steps: [WriteStep], urgent: Bool) async throws -> [WriteResult]
    /// Runs `body` in one write transaction: what it reads is the database as this transaction sees it
    /// (no other writer comes between its reads and its writes), and everything it writes commits
    /// together, or not at all when it throws. `body` runs on the database's own thread and must not
    /// block: it is for a read, a pure decision and the writes that follow from it.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) throws -> T) async throws -> T
    /// ``transaction(_:)`` in three phases: `read` and `write` run in the write transaction on the
    /// database's thread; `decide`, between them, is pure computation (decoding what was read, the
    /// core's rules, encoding what to write) and may run on another thread, side by side with the
    /// decisions of transactions committed together, so the database thread is kept for SQL. An
    /// earlier transaction of the same group commit may change a row between this one's read and write:
    /// writes guard with compare-and-set, as with any concurrent writer.
    func transaction<R: Sendable, D: Sendable, T: Sendable>(
        read: @escaping @Sendable (any SQLTransaction) throws -> R, decide: @escaping @Sendable (R) throws -> D,
        write: @escaping @Sendable (any SQLTransaction, D) throws -> T
    ) async throws -> T
    func close() async throws
}

/// A write transaction in progress, as ``SQLDatabase/transaction(_:)`` hands it to its body.
package protocol SQLTransaction {
    func read(_ statement: SQLStatement) throws -> [SQLRow]
    /// Runs steps as ``SQLDatabase/write(_:)`` does, inside this transaction.
    func run(_ steps: [WriteStep]) throws -> [WriteResult]
}

extension SQLDatabase {
    package func write(_ steps: [WriteStep], urgent: Bool) async throws -> [WriteResult] { try await write(steps) }

    package func read(_ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        try await read(SQLStatement(sql, binds))
    }

    package func scalar(_ sql: String, _ binds: [SQLValue] = []) async throws -> Int64 {
        try await read(SQLStatement(sql, binds)).first?.values.first?.int ?? 0
    }
}
