import ArgumentParser
import Foundation
import HandoffApp
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Handoff: open (and migrate) the database, fire timers, and stop cleanly on Ctrl-C.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        LoggingBootstrap.once(level: .info)
        let logger = Logger(label: "handoff")
        try await perform {
            let app = try await HandoffApplication.build(configuration: global.configuration, logger: logger)
            try await app.run()
        }
    }
}
