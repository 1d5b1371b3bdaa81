import Foundation
import GRDB

/// An embedded SQLite file (GRDB `DatabasePool`: WAL, one writer, concurrent readers).
///
/// `synchronous = FULL`: a transaction is on disk when `write` returns, so an event acked after its
/// commit survives a power cut, not only a crash. A busy timeout rides out another process (a CLI
/// command, a backup) holding the write lock briefly.
package final class SQLiteDatabase: SQLDatabase {
    package struct Configuration: Sendable {
        /// How long a writer waits for another connection's write lock before failing.
        package var busyTimeout: TimeInterval = 5
        /// FULL by default; NORMAL trades the last transactions on power loss for speed.
        package var synchronous: String = "FULL"
        package var maximumReaderCount: Int = 4

        package init() {}
    }

    package let dialect = SQLDialect.sqlite
    package let path: String
    let pool: DatabasePool

    package init(path: String, configuration: Configuration = Configuration()) throws {
        self.path = path
        var config = GRDB.Configuration()
        config.busyMode = .timeout(configuration.busyTimeout)
        config.maximumReaderCount = configuration.maximumReaderCount
        let synchronous = configuration.synchronous
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError.unavailable("cannot open SQLite database at \(path): \(error)")
        }
    }

    static func arguments(_ binds: [SQLValue]) -> StatementArguments {
        StatementArguments(binds.map { value -> DatabaseValue in
            switch value {
            case .null: .null
            case .integer(let i): i.databaseValue
            case .real(let d): d.databaseValue
            case .text(let s): s.databaseValue
            case .blob(let b): Data(b).databaseValue
            }
        })
    }

    static func convert(_ rows: [Row]) -> [SQLRow] {
        guard let first = rows.first else { return [] }
        var columns: [String: Int] = [:]
        for (i, name) in first.columnNames.enumerated() where columns[name] == nil { columns[name] = i }
        return rows.map { row in
            SQLRow(columns: columns, values: row.databaseValues.map { dbValue in
                switch dbValue.storage {
                case .null: .null
                case .int64(let i): .integer(i)
                case .double(let d): .real(d)
                case .string(let s): .text(s)
                case .blob(let data): .blob([UInt8](data))
                }
            })
        }
    }

    package func read(_ statement: SQLStatement) async throws -> [SQLRow] {
        try await pool.read { db in
            let stmt = try db.cachedStatement(sql: statement.sql)
            return Self.convert(try Row.fetchAll(stmt, arguments: Self.arguments(statement.binds)))
        }
    }

    package func write(_ steps: [WriteStep]) async throws -> [WriteResult] {
        try await pool.write { db in try Self.run(steps, in: db) }
    }

    /// Runs steps inside the current transaction; throwing rolls the transaction back.
    static func run(_ steps: [WriteStep], in db: GRDB.Database) throws -> [WriteResult] {
        var results: [WriteResult] = []
        results.reserveCapacity(steps.count)
        for step in steps {
            let stmt = try db.cachedStatement(sql: step.statement.sql)
            let arguments = arguments(step.statement.binds)
            let rows: [SQLRow]
            if step.statement.sql.range(of: "RETURNING", options: .caseInsensitive) != nil {
                rows = convert(try Row.fetchAll(stmt, arguments: arguments))
            } else {
                try stmt.execute(arguments: arguments)
                rows = []
            }
            let changes = db.changesCount
            try step.expectation.check(changes: changes)
            results.append(WriteResult(changes: changes, rows: rows))
        }
        return results
    }

    package func close() async throws {
        try pool.close()
    }

    /// SQLite's plan for a statement, one line per step (`SEARCH t USING INDEX …`, `SCAN t`, …), for
    /// tests and diagnostics. It runs on the writer connection so writes can be explained too; an
    /// `EXPLAIN QUERY PLAN` changes nothing.
    package func queryPlan(_ statement: SQLStatement) async throws -> [String] {
        try await pool.write { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + statement.sql, arguments: Self.arguments(statement.binds))
                .compactMap { $0["detail"] as String? }
        }
    }

    /// A probe with its own read-only connection to the file: SQLite's `data_version` is per
    /// connection and changes when any *other* connection commits, so the pool's connections (which
    /// this process writes through) cannot serve.
    package func makeChangeProbe() throws -> (any ChangeProbe)? {
        var config = GRDB.Configuration()
        config.readonly = true
        config.busyMode = .timeout(1)
        config.label = "handoff.change-probe"
        do {
            return SQLiteChangeProbe(queue: try DatabaseQueue(path: path, configuration: config))
        } catch {
            throw StoreError.unavailable("cannot open a change probe on \(path): \(error)")
        }
    }
}

/// `PRAGMA data_version` on one dedicated connection.
final class SQLiteChangeProbe: ChangeProbe {
    let queue: DatabaseQueue

    init(queue: DatabaseQueue) { self.queue = queue }

    func version() async throws -> Int64 {
        try await queue.read { db in try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    func close() async throws { try queue.close() }
}
