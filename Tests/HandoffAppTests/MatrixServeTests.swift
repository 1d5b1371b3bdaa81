import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffTesting
import Testing

extension MatrixAppTests {
    @Suite struct Serve {
        @Test("handoff serve connects to Matrix from MATRIX_* variables, answers in chat, stops cleanly on SIGTERM, never prints the password")
        func serveWithMatrixEnvironment() async throws {
            let world = try SynapseWorld.require()
            let bot = try await world.server.register("servebot-\(UUID().uuidString.prefix(6).lowercased())")
            let room = try await world.alice.createRoom(name: "approvals")
            let dir = try TemporaryDirectory(prefix: "handoff-serve-matrix")
            let policy = MatrixHarness.policy(rooms: .init(approvals: room, agents: room))
            try policy.write(toFile: dir.file("handoff.yaml"), atomically: true, encoding: .utf8)
            let serve = try ServeProcess.start(environment: [
                "HANDOFF_DATABASE": dir.file("handoff.sqlite"), "HANDOFF_POLICY": dir.file("handoff.yaml"),
                "HANDOFF_CARD_TEMPLATES": PackagePaths.cardTemplates, "HANDOFF_PORT": "0", "HANDOFF_LOG_LEVEL": "info",
                "MATRIX_HOMESERVER": world.server.baseURL, "MATRIX_USER": bot.userID, "MATRIX_PASSWORD": bot.password,
            ], directory: dir.path)
            #expect(await eventually(timeout: .seconds(60)) { serve.output.contains("Matrix sync running") }, "\(serve.output)")
            #expect(serve.output.contains("Slack is not connected"), "each platform says whether it is connected")
            try await world.alice.invite(bot.userID, to: room)
            #expect(await eventually(timeout: .seconds(20)) { (try? await world.alice.membership(of: bot.userID, in: room)) == "join" })
            try await world.alice.send("!help", in: room)
            let answered = await eventually(timeout: .seconds(30)) {
                guard let rooms = try? await world.alice.acceptInvites() else { return false }
                _ = rooms
                for invited in (try? await world.alice.call("GET", "/_matrix/client/v3/joined_rooms").member("joined_rooms")?.asArray) ?? [] {
                    guard let id = invited.asString, id != room else { continue }
                    let texts = ((try? await world.alice.messages(in: id, from: bot.userID)) ?? []).compactMap { $0.member(path: "content", "body")?.asString }
                    if texts.contains(where: { $0.contains("Commands") }) { return true }
                }
                return false
            }
            #expect(answered, "the help arrives in a direct room: \(serve.output)")
            let status = await serve.terminate()
            #expect(status == 0, "\(serve.output)")
            #expect(serve.output.contains("stopped cleanly"))
            #expect(!serve.output.contains(bot.password), "the password never prints")
            dir.remove()
        }
    }
}
