import GRDB

extension StoreError {
    /// True for a failure that passes by itself, so the work should wait and be tried again rather than
    /// be set aside: another connection (a backup, a `sqlite3` shell, a second `serve`) holding the write
    /// lock past the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`), or the database unavailable.
    package static func isTransient(_ error: any Error) -> Bool {
        if case StoreError.unavailable = error { return true }
        if let error = error as? DatabaseError {
            return error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
        }
        return false
    }
}
