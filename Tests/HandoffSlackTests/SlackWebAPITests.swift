import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import Testing

@Suite(.serialized) struct SlackWebAPITests {
    static func withClient(_ configure: (inout SlackWebAPIClient.Configuration) -> Void = { _ in },
                           _ body: (FakeSlack, SlackWebAPIClient) async throws -> Void) async throws
    {
        let fake = try await FakeSlack.start()
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var configuration = SlackWebAPIClient.Configuration()
        configuration.baseURL = fake.apiURL
        configure(&configuration)
        let client = SlackWebAPIClient(http: http, configuration: configuration)
        do {
            try await body(fake, client)
        } catch {
            try? await http.shutdown()
            await fake.stop()
            throw error
        }
        try await http.shutdown()
        await fake.stop()
    }

    @Test("A16 ts precision: the ts comes back and goes out as the exact string")
    func a16_tsPrecision() async throws {
        try await Self.withClient { fake, client in
            let bot = Secret(fake.configuration.botToken)
            let posted = try await client.postMessage(token: bot, channel: "C0TEST", text: "hello")
            #expect(posted.messageID.hasSuffix("00"), "the fake's ts ends in zeros: \(posted.messageID)")
            try await client.updateMessage(token: bot, channel: "C0TEST", ts: posted.messageID, text: "edited", blocks: .array([]))
            let update = try #require(await fake.calls("chat.update").last)
            #expect(update.argument("ts") == posted.messageID)
            #expect(await fake.message(channel: "C0TEST", ts: posted.messageID)?.text == "edited")
        }
    }

    @Test("A21 ok:false on HTTP 200 is a failure, classified permanent")
    func a21_okFalseIsFailure() async throws {
        try await Self.withClient { fake, client in
            let bot = Secret(fake.configuration.botToken)
            await #expect(throws: SlackAPIError.self) {
                try await client.updateMessage(token: bot, channel: "C0TEST", ts: "1.000100", text: "x", blocks: .array([]))
            }
            do {
                try await client.updateMessage(token: bot, channel: "C0TEST", ts: "1.000100", text: "x", blocks: .array([]))
            } catch let error as SlackAPIError {
                #expect(error.apiError == "message_not_found")
                #expect(error.deliveryError.code == .permanent)
            }
            #expect(await fake.calls("chat.update").count == 2, "no retry loop: one call per attempt")
        }
    }

    @Test func tokensAreChecked() async throws {
        try await Self.withClient { fake, client in
            do {
                _ = try await client.openConnection(appToken: Secret(fake.configuration.botToken))
                Issue.record("the bot token must not open sockets")
            } catch let error as SlackAPIError {
                #expect(error.apiError == "not_allowed_token_type")
                #expect(error.isFatal)
            }
            do {
                _ = try await client.authTest(token: Secret("xoxb-wrong"))
                Issue.record("a wrong token must fail")
            } catch let error as SlackAPIError {
                #expect(error.apiError == "invalid_auth")
                #expect(error.isFatal)
            }
            let me = try await client.authTest(token: Secret(fake.configuration.botToken))
            #expect(me.userID == fake.configuration.botUserID)
            #expect(me.botID == fake.configuration.botID)
            let user = try await client.userInfo(token: Secret(fake.configuration.botToken), user: "U0ALICE")
            #expect(user.member("name")?.asString == "alice")
            let dm = try await client.openDM(token: Secret(fake.configuration.botToken), user: "U0ALICE")
            #expect(dm == FakeSlack.dmChannel(for: "U0ALICE"))
        }
    }

    @Test("A20 Web API 429: Retry-After is waited out before the retry, with no call in between")
    func a20_retryAfterIsHonoured() async throws {
        try await Self.withClient { fake, client in
            let bot = Secret(fake.configuration.botToken)
            await fake.rateLimitNext("chat.postMessage", retryAfter: 2)
            let started = ContinuousClock.now
            // The first caller meets the 429; a second caller who comes after it must wait out the window too.
            async let a = client.postMessage(token: bot, channel: "C0TEST", text: "one")
            #expect(await eventually { await fake.calls("chat.postMessage").contains { $0.status == 429 } })
            // "After it" means after the client has read the 429, not merely after the fake sent it.
            #expect(await eventually { await client.rateLimitedUntil("chat.postMessage") != nil })
            async let b = client.postMessage(token: bot, channel: "C0TEST", text: "two")
            let (first, second) = try await (a, b)
            #expect(first.messageID != second.messageID)
            #expect(ContinuousClock.now - started >= .seconds(2))
            #expect(await fake.callsDuringRateLimit().isEmpty, "calls inside the Retry-After window")
            let calls = await fake.calls("chat.postMessage")
            #expect(calls.filter { $0.status == 429 }.count == 1)
            #expect(calls.filter { $0.status == 200 }.count == 2)
        }
    }

    @Test func aLongRetryAfterIsHandedToTheCaller() async throws {
        try await Self.withClient({ $0.maxInlineRateLimitWait = .seconds(1) }) { fake, client in
            await fake.rateLimitNext("chat.update", retryAfter: 30)
            do {
                try await client.updateMessage(token: Secret(fake.configuration.botToken), channel: "C0TEST", ts: "1.000100", text: "x", blocks: .array([]))
                Issue.record("expected a rate limit")
            } catch let error as SlackAPIError {
                guard case .rateLimited(let after) = error.code else {
                    Issue.record("expected rateLimited, got \(error)")
                    return
                }
                #expect(after == .seconds(30))
                #expect(error.deliveryError.code == .rateLimited(retryAfter: .seconds(30)))
            }
        }
    }
}
