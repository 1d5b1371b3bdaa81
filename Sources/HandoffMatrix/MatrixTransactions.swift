import Foundation
import Synchronization

/// Transaction ids for sends (`PUT …/send/{type}/{txnId}`): the homeserver treats the same `txnId`
/// from the same device as a retransmission and returns the first event (chat-protocols.md §4.4).
///
/// - A send that has a durable identity (a card's nonce, an outbox row) uses ``keyed(_:)``: the
///   database's random namespace plus that key, so every retry of it — also after a restart — is
///   the same transaction, while a new database (whose outbox ids start at 1 again) never repeats
///   an old `txnId` the homeserver still remembers.
/// - Any other send uses ``fresh()``: the namespace, a random id of this process, and a counter;
///   never a counter alone restarting at 0, which the homeserver would answer with an old event.
package final class MatrixTransactionIDs: Sendable {
    /// Random per process.
    package let bootID: String
    private let namespace = Mutex<String?>(nil)
    private let counter = Atomic<Int>(0)

    package init(bootID: String = MatrixTransactionIDs.random(10)) {
        self.bootID = bootID
    }

    /// Sets the database's namespace (``MatrixStateKeys/transactionNamespace``).
    package func setNamespace(_ value: String) { namespace.withLock { $0 = value } }

    package var currentNamespace: String? { namespace.withLock { $0 } }

    /// The same id for every attempt of one logical send.
    package func keyed(_ key: String) -> String {
        "\(currentNamespace ?? bootID).\(Self.sanitize(key))"
    }

    /// A new id for a send that has no durable identity.
    package func fresh() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(currentNamespace ?? "x").\(bootID).\(n)"
    }

    /// Letters and digits only (`txnId` is a path segment; this keeps it readable in logs too).
    package static func random(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var rng = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))] })
    }

    static func sanitize(_ key: String) -> String {
        String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") ? $0 : "_" })
    }
}
