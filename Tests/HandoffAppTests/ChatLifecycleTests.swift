import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffStore
import HandoffTesting
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// A running `handoff serve`, its log in a file.
struct ServeProcess {
    let process: Process
    let log: String

    static func start(environment: [String: String], directory: String) throws -> ServeProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.executable("handoff"))
        process.arguments = ["serve"]
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("SLACK_") || key.hasPrefix("HANDOFF_") { env[key] = nil }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let log = directory + "/serve.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return ServeProcess(process: process, log: log)
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits (bounded) for the exit; returns the status, or nil if it had to be killed.
    func terminate(within timeout: Duration = .seconds(30)) async -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        let exited = await eventually(timeout: timeout, poll: .milliseconds(50)) { !process.isRunning }
        guard exited else {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }
}

extension ChatAppTests {
    @Suite struct Lifecycle {
        @Test("E82 clean shutdown: SIGTERM → handoff serve closes the Slack socket itself, finishes, flushes SQLite, exits 0")
        func e82_cleanShutdown() async throws {
            let fake = try await FakeSlack.start()
            let dir = try TemporaryDirectory(prefix: "handoff-serve-chat")
            try ChatHarness.defaultPolicy.write(toFile: dir.file("handoff.yaml"), atomically: true, encoding: .utf8)
            let serve = try ServeProcess.start(environment: [
                "HANDOFF_DATABASE": dir.file("handoff.sqlite"), "HANDOFF_POLICY": dir.file("handoff.yaml"),
                "HANDOFF_CARD_TEMPLATES": PackagePaths.cardTemplates, "HANDOFF_PORT": "0", "HANDOFF_LOG_LEVEL": "info",
                "SLACK_APP_TOKEN": fake.configuration.appToken, "SLACK_BOT_TOKEN": fake.configuration.botToken, "SLACK_API_URL": fake.apiURL,
            ], directory: dir.path)
            let connected = await eventually(timeout: .seconds(60)) { await fake.connections().contains { $0.helloAt != nil } }
            #expect(connected, "serve did not connect: \(serve.output)")
            let help = await fake.slash(user: People.alice, channel: Channels.approvals, text: "help")
            #expect(await eventually(timeout: .seconds(10)) { await fake.ack(for: help)?.payload != nil }, "\(serve.output)")
            let status = await serve.terminate()
            #expect(status == 0, "\(serve.output)")
            let log = serve.output
            #expect(log.contains("Slack Socket Mode connected"))
            #expect(log.contains("stopped cleanly"), "\(log)")
            #expect(!log.contains(fake.configuration.botToken) && !log.contains(fake.configuration.appToken), "tokens never print")
            #expect(await fake.connections().allSatisfy { $0.endedAt != nil && !$0.endedByServer }, "the client closed its socket")
            // Everything acked was processed and is on disk.
            let store = try await SQLWorkflowStore(database: SQLiteDatabase(path: dir.file("handoff.sqlite")))
            #expect(try await store.pendingInbound(platform: nil, limit: 10).isEmpty)
            try await store.close()
            await fake.stop()
            dir.remove()
        }

        @Test func serveSaysClearlyWhenSlackIsNotConfigured() async throws {
            let dir = try TemporaryDirectory(prefix: "handoff-serve-noslack")
            let serve = try ServeProcess.start(environment: [
                "HANDOFF_DATABASE": dir.file("handoff.sqlite"), "HANDOFF_PORT": "0", "HANDOFF_LOG_LEVEL": "info",
            ], directory: dir.path)
            #expect(await eventually(timeout: .seconds(60)) { serve.output.contains("Slack is not connected") }, "\(serve.output)")
            #expect(serve.output.contains("SLACK_APP_TOKEN and SLACK_BOT_TOKEN"))
            // SIGTERM only once the service group (which handles it) runs.
            #expect(await eventually(timeout: .seconds(30)) { serve.output.contains("scheduler started") }, "\(serve.output)")
            #expect(await serve.terminate() == 0)
            dir.remove()
        }

        @Test func settingsReadTheThreeVariablesAndNeverPrintThem() throws {
            let s = SlackSettings.fromEnvironment(["SLACK_APP_TOKEN": "xapp-1-A1-secretvalue", "SLACK_BOT_TOKEN": "xoxb-1-secretvalue",
                                                   "SLACK_SIGNING_SECRET": "signsecretvalue"])
            #expect(try s.mode.get() == .socket)
            #expect(!"\(s)".contains("secretvalue"))
            var http = SlackSettings.fromEnvironment(["SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"])
            #expect(try http.mode.get() == .http)
            http.botToken = nil
            #expect(throws: SlackSettings.NotConfigured.self) { try http.mode.get() }
        }
    }

    @Suite struct HTTPMode {
        @Test("Events API over HTTP: the handlers mount on a Hummingbird router; signed clicks, commands and url_verification work")
        func eventsAPIOverHTTP() async throws {
            let h = try await ChatHarness.start(mode: .http)
            #expect(h.runtime.socketMode == nil)
            let router = Router()
            h.runtime.mountSlackRoutes(on: router)
            let (ports, portContinuation) = AsyncStream<Int>.makeStream()
            var logger = Logger(label: "test.http")
            logger.logLevel = .warning
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
            let server = Task { try await group.run() }
            var port = 0
            for await p in ports { port = p; break }
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)

            func post(_ path: String, _ body: String, contentType: String, timestamp: Int64 = Int64(Date().timeIntervalSince1970)) async throws -> (Int, String) {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.method = .POST
                for field in h.fake.signedHeaders(body: Array(body.utf8), timestamp: timestamp, contentType: contentType) {
                    request.headers.add(name: field.name.rawName, value: field.value)
                }
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await http.execute(request, timeout: .seconds(10))
                return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
            }

            let (status, body) = try await post("/slack/events", #"{"type":"url_verification","challenge":"abc123","token":"t"}"#, contentType: "application/json")
            #expect(status == 200)
            #expect(body.contains("abc123"))
            #expect(try await post("/slack/events", #"{"type":"url_verification","challenge":"x"}"#, contentType: "application/json",
                                   timestamp: Int64(Date().timeIntervalSince1970) - 301).0 == 401)

            let approval = try await h.requestApproval()
            let card = try await h.card(of: approval.ref)
            let click = FakeSlackPayloads.blockAction(user: People.alice, channel: card.channel, messageTS: card.messageID ?? "", actionID: "approve",
                                                      value: "approval:\(approval.id)", actionTS: "1767225601.000100", triggerID: "t-http")
            let form = "payload=" + click.canonicalText.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await post("/slack/interactivity", form, contentType: "application/x-www-form-urlencoded").0 == 200)
            #expect(try await post("/slack/interactivity", form, contentType: "application/x-www-form-urlencoded").0 == 200)  // a retry
            #expect(await eventually { (try? await h.approval(approval.id))?.status.name == "approved" })
            #expect(await eventually { await h.message(card)?.edits == 1 })

            let slash = "command=%2Fhandoff&text=approve+\(approval.id)&user_id=\(People.bob)&channel_id=\(Channels.approvals)&trigger_id=t-slash&team_id=T111"
            let (slashStatus, slashBody) = try await post("/slack/events", slash, contentType: "application/x-www-form-urlencoded")
            #expect(slashStatus == 200)
            #expect(slashBody.contains("already decided"), "\(slashBody)")
            let event = FakeSlackPayloads.eventCallback(FakeSlackPayloads.message(user: People.user, channel: FakeSlack.dmChannel(for: People.user),
                                                                                  text: "I want to talk to a human", ts: "1767226000.000100"),
                                                        eventID: "EvHTTP1")
            #expect(try await post("/slack/events", event.canonicalText, contentType: "application/json").0 == 200)
            #expect(await eventually { ((try? await h.workflow.escalations()) ?? []).count == 1 })

            try await http.shutdown()
            await group.triggerGracefulShutdown()
            _ = try? await server.value
            await h.stop()
        }
    }
}
