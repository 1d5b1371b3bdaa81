import ArgumentParser
import Foundation
import HandoffApp
import HandoffCore
import HandoffWorkflow
import Logging

@main
struct Handoff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handoff",
        abstract: "Human-in-the-loop workflows for AI products: approvals, review queues, escalations, feedback, labeling.",
        discussion: """
            `handoff serve` runs the service. Every other command acts on the same database file, so an \
            operator can work before any chat is connected. Acts are performed as the operator (admin) \
            unless --as names an identity, e.g. --as slack:U123.
            """,
        subcommands: [
            Serve.self, Approvals.self, Queue.self, RouteCommand.self, Escalations.self, FeedbackCommands.self,
            Corrections.self, Labels.self, Timers.self, AuditCommand.self,
            Keys.self, Webhooks.self,
            Calibrate.self, PatternsCommand.self, Prompts.self, Ask.self,
        ])
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "SQLite database file (default: $HANDOFF_DATABASE or ./handoff.sqlite).")
    var database: String?

    @Option(name: .customLong("policy-file"), help: "Policy file (default: $HANDOFF_POLICY, else ./handoff.yaml when present).")
    var policyFile: String?

    @Flag(name: .long, help: "Print JSON instead of tables.")
    var json = false

    var configuration: HandoffConfiguration {
        var c = HandoffConfiguration.fromEnvironment()
        if let database { c.databasePath = database }
        if let policyFile { c.policyPath = policyFile }
        return c
    }

    /// Opens the workflow on the configured file, quietly (commands print their own output).
    func openWorkflow() async throws -> Workflow {
        LoggingBootstrap.once(level: .warning)
        let c = configuration
        let (policy, _) = try c.loadPolicy()
        return try await HandoffApplication.openWorkflow(databasePath: c.databasePath, policy: policy)
    }
}

/// Who an act is performed as.
struct ActorOptions: ParsableArguments {
    @Option(name: .customLong("as"), help: "Act as this identity (e.g. slack:U123, key:alice). Default: the operator, with admin rights.")
    var actor: String?

    var resolved: Actor {
        if let actor { return Actor(ActorID(actor), isAdmin: false) }
        return Actor(Self.operatorID, isAdmin: true)
    }

    static var operatorID: ActorID {
        ActorID("cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "operator"))
    }
}

enum LoggingBootstrap {
    nonisolated(unsafe) static var done = false

    /// swift-log allows one bootstrap per process; commands call this first.
    static func once(level: Logger.Level) {
        guard !done else { return }
        done = true
        let configured = ProcessInfo.processInfo.environment["HANDOFF_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configured ?? level
            return handler
        }
    }
}

/// Runs a command body; workflow refusals print their message and exit 1, invalid input exits 2.
func perform(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as WorkflowError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(error.code == .invalid ? 2 : 1)
    } catch let error as PolicyFile.LoadError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode(2)
    } catch let error as AIRuntime.ConfigurationError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode(2)
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Prints a value as pretty JSON.
func printJSON(_ value: some Encodable) throws {
    print(try WireJSON.string(value, pretty: true))
}

/// Parses JSON given on the command line, naming the option on failure.
func parseJSON(_ text: String, option: String) throws -> JSONValue {
    do {
        return try JSONValue.parse(text)
    } catch {
        throw WorkflowError.invalid(option, "is not valid JSON: \(error.message)")
    }
}
