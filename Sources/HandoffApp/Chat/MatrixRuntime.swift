import Foundation
import HandoffChatKit
import HandoffMatrix
import HandoffStore
import HandoffWorkflow

/// Matrix settings from the environment: `MATRIX_HOMESERVER`, and either `MATRIX_USER` +
/// `MATRIX_PASSWORD` (the bot logs in itself, and again if its token is ever revoked) or
/// `MATRIX_ACCESS_TOKEN`. `MATRIX_DEVICE_ID` (default `HANDOFF1`) keeps `txnId`s scoped across
/// restarts; `MATRIX_ALLOWED_INVITERS` / `MATRIX_ALLOWED_ROOMS` (comma-separated) say whose invites
/// the bot accepts. Secrets never print.
package struct MatrixSettings: Sendable, CustomStringConvertible {
    package var homeserver: String?
    package var user: String?
    package var password: HandoffChatKit.Secret?
    package var accessToken: HandoffChatKit.Secret?
    package var deviceID: String?
    /// `@alice:example.org` or `:example.org`; empty: everyone on the bot's own homeserver.
    package var allowedInviters: [String] = []
    package var allowedRooms: [String] = []

    package init(homeserver: String? = nil, user: String? = nil, password: String? = nil, accessToken: String? = nil,
                 deviceID: String? = nil)
    {
        self.homeserver = homeserver.flatMap { $0.isEmpty ? nil : $0 }
        self.user = user.flatMap { $0.isEmpty ? nil : $0 }
        self.password = password.flatMap { $0.isEmpty ? nil : HandoffChatKit.Secret($0) }
        self.accessToken = accessToken.flatMap { $0.isEmpty ? nil : HandoffChatKit.Secret($0) }
        self.deviceID = deviceID.flatMap { $0.isEmpty ? nil : $0 }
    }

    package static func fromEnvironment(_ env: [String: String]) -> MatrixSettings {
        var s = MatrixSettings(homeserver: env["MATRIX_HOMESERVER"], user: env["MATRIX_USER"], password: env["MATRIX_PASSWORD"],
                               accessToken: env["MATRIX_ACCESS_TOKEN"], deviceID: env["MATRIX_DEVICE_ID"])
        s.allowedInviters = list(env["MATRIX_ALLOWED_INVITERS"])
        s.allowedRooms = list(env["MATRIX_ALLOWED_ROOMS"])
        return s
    }

    private static func list(_ value: String?) -> [String] {
        (value ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { !$0.isEmpty }
    }

    package struct NotConfigured: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// The client configuration, or why Matrix is not connected.
    package var client: Result<MatrixClient.Configuration, NotConfigured> {
        guard let homeserver else {
            return .failure(NotConfigured(description: "Matrix is not connected: MATRIX_HOMESERVER is not set. Set MATRIX_HOMESERVER and MATRIX_USER with MATRIX_PASSWORD (or MATRIX_ACCESS_TOKEN); see README, \"Connect to Matrix\"."))
        }
        guard accessToken != nil || (user != nil && password != nil) else {
            return .failure(NotConfigured(description: "Matrix is not connected: MATRIX_HOMESERVER is set but neither MATRIX_ACCESS_TOKEN nor MATRIX_USER with MATRIX_PASSWORD is."))
        }
        var c = MatrixClient.Configuration(homeserver: homeserver, user: user, password: password, accessToken: accessToken)
        if let deviceID { c.deviceID = deviceID }
        return .success(c)
    }

    package var description: String {
        "MatrixSettings(homeserver: \(homeserver ?? "-"), user: \(user ?? "-"), password: \(password == nil ? "-" : "(redacted)"), access token: \(accessToken == nil ? "-" : "(redacted)"), device: \(deviceID ?? "default"))"
    }
}

/// The Matrix bot's durable state in the workflow store: the `kv` table (sync token, `txnId`
/// namespace, direct rooms) and `matrix_reactions`.
package struct StoreMatrixState: MatrixStateStore {
    let workflow: Workflow

    package init(workflow: Workflow) { self.workflow = workflow }

    package func value(forKey key: String) async throws -> String? {
        try await workflow.store.value(forKey: key)
    }

    package func setValue(_ value: String, forKey key: String) async throws {
        try await workflow.store.setValue(value, forKey: key, at: workflow.clock.now())
    }

    package func recordReactions(_ reactions: [MatrixReaction]) async throws {
        try await workflow.store.recordMatrixReactions(reactions.map {
            MatrixReactionRecord(eventID: $0.eventID, roomID: $0.roomID, targetEventID: $0.targetEventID, sender: $0.sender, key: $0.key)
        }, at: workflow.clock.now())
    }

    package func reaction(eventID: String) async throws -> MatrixReaction? {
        try await workflow.store.matrixReaction(eventID: eventID).map {
            MatrixReaction(eventID: $0.eventID, roomID: $0.roomID, targetEventID: $0.targetEventID, sender: $0.sender, key: $0.key)
        }
    }

    package func pruneReactions(olderThan age: Duration) async throws -> Int {
        let (seconds, attoseconds) = age.components
        let cutoff = workflow.clock.now().addingTimeInterval(-(Double(seconds) + Double(attoseconds) / 1e18))
        return try await workflow.store.pruneMatrixReactions(before: cutoff)
    }
}
