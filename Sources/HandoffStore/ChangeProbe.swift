import Foundation

/// Tells whether any *other* connection committed to the database since it last looked — another
/// process (a CLI command, a second `serve`) or another connection pool in this one. Cheap enough to
/// ask a few times a second: one `PRAGMA data_version` on a dedicated connection for SQLite.
package protocol ChangeProbe: Sendable {
    /// A number that changes whenever another connection commits; compare two answers, never interpret one.
    func version() async throws -> Int64
    func close() async throws
}

extension SQLWorkflowStore {
    /// A probe on this store's database, or nil when the backend cannot notice other connections' commits.
    package func makeChangeProbe() throws -> (any ChangeProbe)? {
        if let sqlite = database as? SQLiteDatabase { return try sqlite.makeChangeProbe() }
        return nil
    }
}
