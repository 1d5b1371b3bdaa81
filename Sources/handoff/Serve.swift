import ArgumentParser
import Foundation
import HandoffApp
import HandoffCore
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Handoff: open (and migrate) the database, fire timers, and stop cleanly on Ctrl-C.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Address the HTTP API and dashboard listen on (default: $HANDOFF_HOST or 127.0.0.1).")
    var host: String?

    @Option(help: "Port of the HTTP API and dashboard (default: $HANDOFF_PORT or 8080; 0 picks a free one).")
    var port: Int?

    func run() async throws {
        LoggingBootstrap.once(level: .info)
        let logger = Logger(label: "handoff")
        try await perform {
            var configuration = global.configuration
            if let host { configuration.http.host = host }
            if let port {
                guard (0...65535).contains(port) else { throw WorkflowError.invalid("port", "must be from 0 to 65535") }
                configuration.http.port = port
            }
            let app = try await HandoffApplication.build(configuration: configuration, logger: logger)
            try await app.run()
        }
    }
}
