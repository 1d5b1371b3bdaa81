import ArgumentParser
import Foundation
import HandoffApp
import HandoffCore
import HandoffStore
import HandoffWorkflow

/// `handoff keys create|list|revoke`: API keys for agents, reviewers and admins.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list and revoke API keys for the HTTP API and the dashboard.",
        discussion: """
            agent keys create approvals, enqueue, route, escalate and ask for feedback; reviewer keys decide, \
            claim, submit, resolve, label and sign in to the dashboard; admin keys do everything and act with \
            administrator rights. A key acts as the identity key:<name>, so policy groups can list it.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is shown once and stored only as a hash.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The key's name; it acts as key:<name>.") var name: String
        @Option(help: "agent, reviewer or admin.") var scope: String

        func run() async throws {
            try await perform {
                guard let scope = APIKeyScope(rawValue: scope) else {
                    throw WorkflowError.invalid("scope", "must be agent, reviewer or admin, not '\(scope)'")
                }
                let workflow = try await global.openWorkflow()
                let issued: APIKeys.Issued
                do {
                    issued = try await APIKeys.create(name: name, scope: scope, store: workflow.store, now: workflow.clock.now())
                } catch let error as APIKeys.CreateError {
                    throw WorkflowError.invalid("name", error.description)
                }
                if global.json {
                    struct Out: Encodable { var name: String; var scope: String; var id: String; var key: String; var identity: String }
                    return try printJSON(Out(name: issued.record.name, scope: scope.rawValue, id: issued.record.id, key: issued.key,
                                             identity: "key:\(issued.record.name)"))
                }
                print("Created \(scope.rawValue) key '\(issued.record.name)' (acts as key:\(issued.record.name)). It is shown only now; keep it secret:")
                print("")
                print("    \(issued.key)")
                print("")
                print("Use it as `Authorization: Bearer <key>`" + (scope == .agent ? "." : ", or sign in to the dashboard with it."))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform {
                let keys = try await global.openWorkflow().store.apiKeys()
                if global.json {
                    struct Out: Encodable {
                        var name: String; var scope: String; var id: String; var createdAt: Date; var lastUsedAt: Date?; var revokedAt: Date?
                    }
                    return try printJSON(keys.map {
                        Out(name: $0.name, scope: $0.scope.rawValue, id: $0.id, createdAt: $0.createdAt, lastUsedAt: $0.lastUsedAt, revokedAt: $0.revokedAt)
                    })
                }
                if keys.isEmpty { return print("No keys yet. Create one with: handoff keys create --name NAME --scope agent|reviewer|admin") }
                var table = Table("name", "scope", "id", "created", "last used", "revoked")
                for k in keys {
                    table.add(k.name, k.scope.rawValue, "hk_\(k.id)_…", Format.date(k.createdAt), Format.date(k.lastUsedAt),
                              Format.date(k.revokedAt))
                }
                table.print()
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the live key with this name (its sessions end too).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key's name.") var name: String

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                guard try await workflow.store.revokeAPIKey(name: name, at: workflow.clock.now()) else {
                    throw WorkflowError.notFound("there is no live key named '\(name)' (see handoff keys list)")
                }
                print("Revoked key '\(name)'.")
            }
        }
    }
}

/// `handoff webhooks secret`: the secret receivers verify `Handoff-Signature` with.
struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks", abstract: "Webhook delivery: the signing secret receivers verify with.",
        subcommands: [SecretCommand.self])

    struct SecretCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "secret",
            abstract: "Print the webhook signing secret ($HANDOFF_WEBHOOK_SECRET, else the one generated and kept in the database).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await perform {
                let workflow = try await global.openWorkflow()
                let secret = try await WebhookSignature.loadSecret(
                    environment: ProcessInfo.processInfo.environment, store: workflow.store, now: workflow.clock.now())
                print(secret.revealed)
            }
        }
    }
}
