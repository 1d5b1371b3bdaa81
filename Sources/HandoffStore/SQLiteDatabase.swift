import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// An embedded SQLite file (GRDB `DatabasePool`: WAL, one writer, concurrent readers).
///
/// `synchronous = FULL`: a transaction is on disk when `write` returns, so an event acked after its
/// commit survives a power cut, not only a crash. A busy timeout rides out another process (a CLI
/// command, a backup) holding the write lock briefly.
///
/// Group commit: writes that arrive while a transaction is on its way to disk wait and then share the
/// next transaction (one COMMIT, one disk sync), each inside its own savepoint, so a write that fails
/// rolls back only itself. No caller hears "done" before the COMMIT holding its write returned.
///
/// Checkpoints off the commit path: SQLite copies the WAL back into the database file every 1000
/// pages, by default inside the commit that crossed the mark, so one write in a hundred waited for
/// megabytes to be copied and synced. Here a connection of its own does that in the background (see
/// ``Checkpointer``); commits only append to the WAL and sync it, as durable as before.
package final class SQLiteDatabase: SQLDatabase {
    package struct Configuration: Sendable {
        /// How long a writer waits for another connection's write lock before failing.
        package var busyTimeout: TimeInterval = 5
        /// FULL by default; NORMAL trades the last transactions on power loss for speed.
        package var synchronous: String = "FULL"
        package var maximumReaderCount: Int = 4
        /// Concurrent writes share a transaction (see the type's documentation); off, every write is
        /// its own transaction and waits for the previous one's disk sync.
        package var groupCommit = true
        /// The most writes one shared transaction holds: bounds its size, and how long an urgent write
        /// (an inbound event before its ack) can wait behind the transaction in progress.
        package var maxWritesPerCommit = 32
        /// WAL size (pages) at which a background checkpoint starts; 0 leaves checkpoints to SQLite,
        /// inside commits (its default, every 1000 pages).
        package var backgroundCheckpointPages: Int32 = 1000
        /// WAL size (pages) at which a commit checkpoints itself anyway, should the background fall behind.
        package var inlineCheckpointPages: Int32 = 20_000

        package init() {}
    }

    package let dialect = SQLDialect.sqlite
    package let path: String
    let pool: DatabasePool
    private let committer: GroupCommitter?
    private let checkpointer: Checkpointer?

    package init(path: String, configuration: Configuration = Configuration()) throws {
        self.path = path
        do {
            pool = try DatabasePool(path: path, configuration: Self.grdbConfiguration(configuration))
            if configuration.backgroundCheckpointPages > 0 {
                let checkpointer = Checkpointer(path: path, configuration: configuration)
                pool.writeWithoutTransaction { db in checkpointer.install(on: db) }
                self.checkpointer = checkpointer
            } else {
                checkpointer = nil
            }
        } catch {
            throw StoreError.unavailable("cannot open SQLite database at \(path): \(error)")
        }
        committer = configuration.groupCommit
            ? GroupCommitter(pool: pool, maxBatch: configuration.maxWritesPerCommit, keepAlive: checkpointer) : nil
    }

    /// The connection settings every Handoff connection uses (busy timeout, `synchronous`), for tools
    /// that must measure the same file the same way (the benchmark's raw-commit baseline).
    package static func grdbConfiguration(_ configuration: Configuration) -> GRDB.Configuration {
        var config = GRDB.Configuration()
        config.busyMode = .timeout(configuration.busyTimeout)
        config.maximumReaderCount = configuration.maximumReaderCount
        let synchronous = configuration.synchronous
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            // Group commit runs each write in a savepoint, and SQLite keeps what a savepoint may have to
            // undo in a statement journal: in a temporary file by default, so every page a write touched
            // first cost a write system call. In memory it costs a copy (bounded by one transaction's writes).
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return config
    }

    /// Transactions committed and writes they carried, since the database was opened (group commit only).
    package var commitStatistics: (transactions: Int, writes: Int) {
        committer?.statistics ?? (0, 0)
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

    package func read(_ statement: SQLStatement) async throws -> [SQLRow] {
        // One statement is its own read transaction (a consistent snapshot) and is stepped to its end,
        // so GRDB's BEGIN/COMMIT around it would only add two statement compilations per read.
        try await pool.unsafeRead { db in try Self.query(statement, in: db) }
    }

    // MARK: Statements, bound and stepped directly

    /// SQLite copies bound text and blobs (`SQLITE_TRANSIENT`).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds the values with SQLite's own calls. GRDB's `StatementArguments` went through generic
    /// conversions for every value: a measurable share of a decision's time on the writer (issue 9).
    /// The statement is reset, its old bindings cleared, and marked bound for GRDB's `execute()`.
    static func bind(_ binds: [SQLValue], to stmt: Statement) {
        stmt.setUncheckedArguments(StatementArguments())
        let s = stmt.sqliteStatement
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .null: sqlite3_bind_null(s, index)
            case .integer(let v): sqlite3_bind_int64(s, index, v)
            case .real(let v): sqlite3_bind_double(s, index, v)
            case .text(let v): sqlite3_bind_text(s, index, v, -1, transient)
            case .blob(let v): v.withUnsafeBytes { _ = sqlite3_bind_blob(s, index, $0.baseAddress, Int32($0.count), transient) }
            }
        }
    }

    /// A statement that produces rows (a query, or a write with RETURNING): bound, stepped to its end,
    /// each row read straight into an ``SQLRow``.
    static func query(_ statement: SQLStatement, in db: Database) throws -> [SQLRow] {
        let stmt = try db.cachedStatement(sql: statement.sql)
        bind(statement.binds, to: stmt)
        return try rows(of: stmt, in: db)
    }

    /// Steps a bound statement to its end and reads its rows.
    static func rows(of stmt: Statement, in db: Database) throws -> [SQLRow] {
        let s = stmt.sqliteStatement
        let count = Int(sqlite3_column_count(s))
        var columns: [String: Int] = [:]
        for i in 0..<count where columns[String(cString: sqlite3_column_name(s, Int32(i)))] == nil {
            columns[String(cString: sqlite3_column_name(s, Int32(i)))] = i
        }
        var rows: [SQLRow] = []
        while true {
            let code = sqlite3_step(s)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                let error = DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: stmt.sql)
                sqlite3_reset(s)
                throw error
            }
            var values: [SQLValue] = []
            values.reserveCapacity(count)
            for i in 0..<Int32(count) {
                switch sqlite3_column_type(s, i) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(s, i)))
                case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(s, i)))
                case SQLITE_TEXT:
                    let length = Int(sqlite3_column_bytes(s, i))
                    if let text = sqlite3_column_text(s, i) {
                        values.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)))
                    } else {
                        values.append(.text(""))
                    }
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(s, i))
                    if let bytes = sqlite3_column_blob(s, i) {
                        values.append(.blob(Array(UnsafeRawBufferPointer(start: bytes, count: length))))
                    } else {
                        values.append(.blob([]))
                    }
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        sqlite3_reset(s)
        return rows
    }

    package func write(_ steps: [WriteStep]) async throws -> [WriteResult] {
        try await write(steps, urgent: false)
    }

    package func write(_ steps: [WriteStep], urgent: Bool) async throws -> [WriteResult] {
        if let committer { return try await committer.transaction(urgent: urgent) { db in try Self.run(steps, in: db) } }
        return try await pool.write { db in try Self.run(steps, in: db) }
    }

    package func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) throws -> T) async throws -> T {
        if let committer { return try await committer.transaction { db in try body(Transaction(db: db)) } }
        return try await pool.write { db in try body(Transaction(db: db)) }
    }

    package func transaction<R: Sendable, D: Sendable, T: Sendable>(
        read: @escaping @Sendable (any SQLTransaction) throws -> R, decide: @escaping @Sendable (R) throws -> D,
        write: @escaping @Sendable (any SQLTransaction, D) throws -> T
    ) async throws -> T {
        if let committer {
            return try await committer.transaction(read: { db in try read(Transaction(db: db)) }, decide: decide,
                                                   write: { db, d in try write(Transaction(db: db), d) })
        }
        return try await pool.write { db in try write(Transaction(db: db), try decide(try read(Transaction(db: db)))) }
    }

    /// The writer connection inside a transaction.
    struct Transaction: SQLTransaction {
        let db: GRDB.Database

        func read(_ statement: SQLStatement) throws -> [SQLRow] { try SQLiteDatabase.query(statement, in: db) }

        func run(_ steps: [WriteStep]) throws -> [WriteResult] { try SQLiteDatabase.run(steps, in: db) }
    }

    /// Runs steps inside the current transaction; throwing rolls the transaction back.
    static func run(_ steps: [WriteStep], in db: GRDB.Database) throws -> [WriteResult] {
        var results: [WriteResult] = []
        results.reserveCapacity(steps.count)
        for step in steps {
            let stmt = try db.cachedStatement(sql: step.statement.sql)
            bind(step.statement.binds, to: stmt)
            let rows: [SQLRow]
            // A statement that produces columns (RETURNING, or a query) is read; others are executed.
            if stmt.columnCount > 0 {
                rows = try Self.rows(of: stmt, in: db)
            } else {
                try stmt.execute()
                rows = []
            }
            let changes = db.changesCount
            try step.expectation.check(changes: changes)
            results.append(WriteResult(changes: changes, rows: rows))
        }
        return results
    }

    package func close() async throws {
        if let checkpointer {
            try? await pool.writeWithoutTransaction { db in checkpointer.uninstall(from: db) }
            checkpointer.close()
        }
        try pool.close()
    }

    /// Background checkpoints run so far (diagnostics, tests).
    package var backgroundCheckpoints: Int { checkpointer?.runs ?? 0 }

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

/// Group commit on the pool's writer: callers queue their work; one job on GRDB's writer queue takes
/// everything queued (up to `maxBatch`), runs it in one IMMEDIATE transaction, commits once, and only
/// then resumes the callers. Writes arriving meanwhile queue up for the next transaction, so under load
/// one disk sync serves many writes, and alone a write pays no extra wait (its job starts at once).
///
/// A request comes in up to three phases. All the batch's `read`s run first, then the `decide`s —
/// pure computation (decoding an entity, the core's rules, encoding the result), run side by side on
/// the other cores when there are several, so the writer is not the only thread working — then each
/// `write` in a savepoint of its own, so one that fails rolls back only itself. A write that finds
/// its row changed by an earlier write of the same batch fails its compare-and-set and is tried again
/// by its caller, as with any other writer.
final class GroupCommitter: Sendable {
    private struct Request: Sendable {
        var urgent = false
        var read: (@Sendable (Database) throws -> Void)?
        var decide: (@Sendable () throws -> Void)?
        var write: @Sendable (Database) throws -> Void
        var finish: @Sendable (Result<Void, any Error>) -> Void
    }

    /// What a request's phases hand on, and its result for `finish` (the phases run one after the other).
    private final class Outcome<R, D, T>: @unchecked Sendable {
        var read: R?
        var decided: D?
        var value: T?
    }

    private struct State {
        /// Urgent requests first (in arrival order), then the rest.
        var pending: [Request] = []
        var urgentCount = 0
        /// A drain job is queued or running on the writer (it reschedules itself while work is pending).
        var scheduled = false
        var transactions = 0
        var writes = 0
    }

    private let pool: DatabasePool
    private let maxBatch: Int
    private let state = Mutex(State())
    /// The writer's WAL hook points at the checkpointer: it must outlive every commit this runs.
    private let keepAlive: (any Sendable)?

    init(pool: DatabasePool, maxBatch: Int, keepAlive: (any Sendable)? = nil) {
        self.pool = pool
        self.maxBatch = max(1, maxBatch)
        self.keepAlive = keepAlive
    }

    var statistics: (transactions: Int, writes: Int) { state.withLock { ($0.transactions, $0.writes) } }

    /// Runs `body` in the next shared transaction; returns what it returned once that transaction committed.
    func transaction<T: Sendable>(urgent: Bool = false, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await transaction(read: { _ in () }, decide: { _ in () }, write: { db, _ in try body(db) }, phased: false, urgent: urgent)
    }

    /// `read` and `write` run on the writer in the shared transaction; `decide` between them, possibly
    /// on another thread. Returns what `write` returned once the transaction committed.
    func transaction<R: Sendable, D: Sendable, T: Sendable>(
        read: @escaping @Sendable (Database) throws -> R, decide: @escaping @Sendable (R) throws -> D,
        write: @escaping @Sendable (Database, D) throws -> T, phased: Bool = true, urgent: Bool = false
    ) async throws -> T {
        // No cancellation handler on purpose: once queued, a write either commits or fails; it is never
        // half-abandoned with its caller unsure whether it landed.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = Outcome<R, D, T>()
            let missing = StoreError.corrupt("a write ran without its earlier phase")
            let readPhase: @Sendable (Database) throws -> Void = { db in outcome.read = try read(db) }
            let decidePhase: @Sendable () throws -> Void = {
                guard let r = outcome.read else { throw missing }
                outcome.decided = try decide(r)
            }
            let writePhase: @Sendable (Database) throws -> Void = { db in
                if phased {
                    guard let d = outcome.decided else { throw missing }
                    outcome.value = try write(db, d)
                } else {
                    outcome.value = try write(db, try decide(try read(db)))
                }
            }
            let request = Request(
                urgent: urgent,
                read: phased ? readPhase : nil,
                decide: phased ? decidePhase : nil,
                write: writePhase,
                finish: { result in
                    switch result {
                    case .success:
                        guard let value = outcome.value else {
                            return continuation.resume(throwing: StoreError.corrupt("a committed write left no result"))
                        }
                        continuation.resume(returning: value)
                    case .failure(let error): continuation.resume(throwing: error)
                    }
                })
            let schedule = state.withLock { s -> Bool in
                if request.urgent {
                    s.pending.insert(request, at: s.urgentCount)
                    s.urgentCount += 1
                } else {
                    s.pending.append(request)
                }
                guard !s.scheduled else { return false }
                s.scheduled = true
                return true
            }
            if schedule { scheduleDrain() }
        }
    }

    private func scheduleDrain() {
        pool.asyncWriteWithoutTransaction { db in self.drain(db) }
    }

    /// Runs on GRDB's writer queue: one transaction for what is queued, then again later if more came.
    private func drain(_ db: Database) {
        let batch = state.withLock { s -> [Request] in
            let n = min(maxBatch, s.pending.count)
            defer {
                s.pending.removeFirst(n)
                s.urgentCount = max(0, s.urgentCount - n)
            }
            return Array(s.pending.prefix(n))
        }
        if !batch.isEmpty {
            let outcomes = Self.commit(batch, in: db)
            state.withLock { s in
                s.transactions += 1
                s.writes += batch.count
            }
            for (request, outcome) in zip(batch, outcomes) { request.finish(outcome) }
        }
        let more = state.withLock { s -> Bool in
            if s.pending.isEmpty { s.scheduled = false }
            return s.scheduled
        }
        // A new job rather than a loop, so other work on the writer queue (a bulk load, a query plan) takes turns.
        if more { scheduleDrain() }
    }

    /// Runs every request in one transaction (reads, then decisions, then each write in a savepoint);
    /// returns each request's outcome, which is a success only if the COMMIT returned.
    ///
    /// The transaction and savepoint statements are prepared once per connection (GRDB's `inTransaction`
    /// and `inSavepoint` parse their SQL on every call, a measurable share of a small write).
    private static func commit(_ requests: [Request], in db: Database) -> [Result<Void, any Error>] {
        let failures = Mutex<[Int: any Error]>([:])
        var outcomes: [Result<Void, any Error>] = []
        outcomes.reserveCapacity(requests.count)
        do {
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            // Reads: the transaction's view, before any of the batch's writes.
            for (i, request) in requests.enumerated() {
                guard let read = request.read else { continue }
                do {
                    try read(db)
                } catch {
                    guard db.isInsideTransaction else { throw error }
                    failures.withLock { $0[i] = error }
                }
            }
            // Decisions: pure; side by side when there are several.
            let deciding = requests.indices.filter { i in requests[i].decide != nil && failures.withLock { $0[i] == nil } }
            let decide: @Sendable (Int) -> Void = { i in
                do {
                    try requests[i].decide?()
                } catch {
                    failures.withLock { $0[i] = error }
                }
            }
            if deciding.count > 1 {
                DispatchQueue.concurrentPerform(iterations: deciding.count) { k in decide(deciding[k]) }
            } else {
                deciding.forEach(decide)
            }
            let failed = failures.withLock { $0 }
            if requests.count == 1 {
                // Alone: no savepoint needed to keep it apart from others; a failure rolls the transaction back.
                outcomes.append(failed[0].map { .failure($0) } ?? Result { try requests[0].write(db) })
                if case .failure = outcomes[0] {
                    try rollback(db)
                    return outcomes
                }
            } else {
                for (i, request) in requests.enumerated() {
                    if let error = failed[i] {
                        outcomes.append(.failure(error))
                        continue
                    }
                    try db.cachedStatement(sql: "SAVEPOINT handoff_write").execute()
                    let outcome = Result { try request.write(db) }
                    switch outcome {
                    case .success:
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT handoff_write").execute()
                    case .failure(let error):
                        // Some errors (disk full, I/O) make SQLite roll back the whole transaction:
                        // nothing before this write survives either.
                        guard db.isInsideTransaction else {
                            outcomes.append(outcome)
                            throw error
                        }
                        try db.cachedStatement(sql: "ROLLBACK TRANSACTION TO SAVEPOINT handoff_write").execute()
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT handoff_write").execute()
                    }
                    outcomes.append(outcome)
                }
            }
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            return outcomes
        } catch {
            // BEGIN or COMMIT failed, or the transaction was lost: no write of this batch is durable.
            // A request that failed on its own keeps its own error.
            try? rollback(db)
            let failed = failures.withLock { $0 }
            return requests.indices.map { i in
                if i < outcomes.count, case .failure(let own) = outcomes[i] { return .failure(own) }
                if let own = failed[i] { return .failure(own) }
                return .failure(error)
            }
        }
    }

    private static func rollback(_ db: Database) throws {
        if db.isInsideTransaction { try db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute() }
    }
}

/// Checkpoints the WAL from a connection of its own, so commits do not pay for it.
///
/// SQLite calls the writer's WAL hook after every commit with the WAL's size. From
/// `backgroundCheckpointPages` on, a PASSIVE checkpoint is queued on this object's own connection and
/// thread (one at a time; it copies what no reader still needs and never blocks the writer). Should the
/// WAL still reach `inlineCheckpointPages`, the committing connection checkpoints itself, as SQLite's
/// own auto-checkpoint would. Installing the hook replaces SQLite's auto-checkpoint on that connection.
final class Checkpointer: Sendable {
    private struct State {
        var connection: DatabaseQueue?
        var scheduled = false
        var closed = false
        var runs = 0
    }

    private let path: String
    private let configuration: SQLiteDatabase.Configuration
    private let queue = DispatchQueue(label: "handoff.sqlite.checkpoint")
    private let state = Mutex(State())

    init(path: String, configuration: SQLiteDatabase.Configuration) {
        self.path = path
        self.configuration = configuration
    }

    var runs: Int { state.withLock { $0.runs } }

    /// Sets the WAL hook of the (writer) connection. Unretained: the database keeps this object alive
    /// for as long as the connection commits, and ``uninstall(from:)`` runs before it closes.
    func install(on db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Gives the connection SQLite's own auto-checkpoint back.
    func uninstall(from db: Database) {
        sqlite3_wal_autocheckpoint(db.sqliteConnection, 1000)
    }

    /// Called on the writer right after a commit (inside SQLite): must be quick.
    fileprivate func committed(connection: OpaquePointer?, name: UnsafePointer<CChar>?, pages: Int32) -> Int32 {
        if pages >= configuration.inlineCheckpointPages {
            // Busy when the background checkpoint is running: it will get there. The commit itself has
            // happened either way, so never report an error here (SQLite would pass it on as the COMMIT's).
            _ = sqlite3_wal_checkpoint_v2(connection, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            return SQLITE_OK
        }
        if pages >= configuration.backgroundCheckpointPages { schedule() }
        return SQLITE_OK
    }

    private func schedule() {
        let go = state.withLock { s -> Bool in
            guard !s.scheduled, !s.closed else { return false }
            s.scheduled = true
            return true
        }
        guard go else { return }
        queue.async { self.checkpoint() }
    }

    private func checkpoint() {
        let connection = state.withLock { s -> DatabaseQueue? in
            s.scheduled = false
            guard !s.closed else { return nil }
            if s.connection == nil {
                s.connection = try? DatabaseQueue(path: path, configuration: SQLiteDatabase.grdbConfiguration(configuration))
            }
            return s.connection
        }
        guard let connection else { return }
        // Best effort: a failed checkpoint is retried after a later commit (and the inline backstop remains).
        try? connection.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
        state.withLock { $0.runs += 1 }
    }

    /// Waits for a checkpoint in progress and closes the connection.
    func close() {
        queue.sync {
            let connection = state.withLock { s -> DatabaseQueue? in
                s.closed = true
                defer { s.connection = nil }
                return s.connection
            }
            try? connection?.close()
        }
    }
}

/// SQLite's WAL hook (a C function): forwards to the ``Checkpointer`` it was registered with.
private func walHook(_ context: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                     _ pages: Int32) -> Int32 {
    guard let context else { return SQLITE_OK }
    return Unmanaged<Checkpointer>.fromOpaque(context).takeUnretainedValue().committed(connection: connection, name: name, pages: pages)
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
