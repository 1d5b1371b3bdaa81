import AsyncHTTPClient
import Foundation
import HandoffApp
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

/// Secrets never appear in logs or error messages (issue 8): `handoff serve` runs as a process at log
/// level trace with every credential configured — Slack tokens and signing secret, the webhook
/// secret, an AI API key, a Matrix password — while the test provokes the errors that carry them
/// nearby (refused tokens, `invalid_auth`, a provider 401, failing webhooks, forged Slack requests,
/// bad API keys presented by clients). Then no secret may be found in the captured log, in any HTTP
/// answer, or in `/readyz`. Every secret carries a marker, so a partial print is caught too.
@Suite(.serialized) struct SecretsInLogsTests {
    static let appToken = "xapp-1-A111-APPSECRETq81z5t"
    static let botToken = "xoxb-111-222-BOTSECRETw3k9x"
    static let signingSecret = "SIGNSECRETz6c3r8e1f0a9b7"
    static let webhookSecret = "whsec_HOOKSECRETa4d8j2"
    static let aiKey = "sk-ant-api03-AIKEYSECRETm5p1"
    static let matrixPassword = "MXPASSSECRETv7n2"
    /// Substrings that mark secret material; none may be printed, whole or in part.
    static let markers = ["APPSECRET", "BOTSECRET", "SIGNSECRET", "HOOKSECRET", "AIKEYSECRET", "MXPASSSECRET", "PRESENTEDSECRET"]

    /// What leaked: each secret (and each marker) found in `text`.
    static func leaks(in text: String, secrets: [String]) -> [String] {
        (secrets + markers).filter { !$0.isEmpty && text.contains($0) }
    }

    static func port(from log: String) -> Int? {
        guard let range = log.range(of: #"address=http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) else { return nil }
        return Int(log[range].split(separator: ":").last ?? "")
    }

    static func baseEnvironment(_ dir: TemporaryDirectory) -> [String: String] {
        [
            "HANDOFF_DATABASE": dir.file("handoff.sqlite"), "HANDOFF_POLICY": dir.file("handoff.yaml"), "HANDOFF_PORT": "0",
            "HANDOFF_CARD_TEMPLATES": PackagePaths.cardTemplates, "HANDOFF_LOG_LEVEL": "trace", "HANDOFF_WEBHOOK_SECRET": webhookSecret,
            "HANDOFF_AI_PROVIDER": "anthropic", "HANDOFF_AI_MODEL": "claude-sonnet-4-5", "HANDOFF_AI_API_KEY": aiKey, "HANDOFF_AI_MAX_RETRIES": "0",
            "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "",
        ]
    }

    /// A client that keeps every answer it got, for the "not in any error message" check.
    final class Client: Sendable {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let base: String
        private let seen = Mutex<[String]>([])

        init(port: Int) { base = "http://127.0.0.1:\(port)" }

        var answers: [String] { seen.withLock { $0 } }

        @discardableResult
        func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(body) }
            let response = try await http.execute(request, timeout: .seconds(30))
            var text = String(buffer: try await response.body.collect(upTo: 4 << 20))
            for (name, value) in response.headers { text += "\n\(name): \(value)" }
            seen.withLock { $0.append(text) }
            return (Int(response.status.code), text)
        }

        func shutdown() async { try? await http.shutdown() }
    }

    @Test("Socket Mode and Matrix with refused credentials: invalid_auth and a refused login are reported without the tokens or the password")
    func refusedCredentials() async throws {
        let fake = try await FakeSlack.start()
        let homeserver = try await PasswordRefusingHomeserver.start()
        let dir = try TemporaryDirectory(prefix: "handoff-secrets-socket")
        try ChatHarness.defaultPolicy.write(toFile: dir.file("handoff.yaml"), atomically: true, encoding: .utf8)
        var env = Self.baseEnvironment(dir)
        env["SLACK_APP_TOKEN"] = Self.appToken
        env["SLACK_BOT_TOKEN"] = Self.botToken
        env["SLACK_API_URL"] = fake.apiURL
        env["MATRIX_HOMESERVER"] = homeserver.url
        env["MATRIX_USER"] = "handoff"
        env["MATRIX_PASSWORD"] = Self.matrixPassword
        let serve = try ServeProcess.start(environment: env, directory: dir.path)
        let refused = await eventually(timeout: .seconds(60)) {
            let log = serve.output
            return log.contains("invalid_auth") && log.contains("refused the login") && Self.port(from: log) != nil
        }
        #expect(refused, "serve reports both refusals: \(serve.output.suffix(4000))")
        var answers: [String] = []
        if let port = Self.port(from: serve.output) {
            let client = Client(port: port)
            let (status, ready) = try await client.send(.GET, "/readyz")
            #expect(status == 503, "refused credentials make the process not ready: \(ready)")
            answers = client.answers
            await client.shutdown()
        }
        #expect(await homeserver.loginAttempts() > 0, "the password was presented to the homeserver")
        #expect(await fake.calls().contains { $0.error == "invalid_auth" }, "the tokens were presented to Slack")
        _ = await serve.terminate()
        let log = serve.output
        #expect(log.contains(" trace "), "the log ran at level trace")
        let secrets = [Self.appToken, Self.botToken, Self.matrixPassword, Self.webhookSecret, Self.aiKey]
        #expect(Self.leaks(in: log, secrets: secrets).isEmpty, "secrets in the log: \(Self.leaks(in: log, secrets: secrets))")
        for answer in answers {
            #expect(Self.leaks(in: answer, secrets: secrets).isEmpty, "secrets in an answer: \(answer)")
        }
        await homeserver.stop()
        await fake.stop()
        dir.remove()
    }

    @Test("Slack over HTTP, an AI key the provider refuses, failing webhooks, forged requests, bad API keys: no secret in the log or any answer")
    func errorsAroundEverySecret() async throws {
        var fakeConfiguration = FakeSlack.Configuration()
        fakeConfiguration.botToken = Self.botToken
        fakeConfiguration.signingSecret = Self.signingSecret
        let fake = try await FakeSlack.start(fakeConfiguration)
        let llm = try await FakeAnthropic.start()
        let receiver = try await WebhookReceiver.start(script: Array(repeating: 500, count: 20))
        let dir = try TemporaryDirectory(prefix: "handoff-secrets-http")
        try AIChatHarness.policy.write(toFile: dir.file("handoff.yaml"), atomically: true, encoding: .utf8)
        var env = Self.baseEnvironment(dir)
        env["SLACK_BOT_TOKEN"] = Self.botToken
        env["SLACK_SIGNING_SECRET"] = Self.signingSecret
        env["SLACK_MODE"] = "http"
        env["SLACK_API_URL"] = fake.apiURL
        env["HANDOFF_AI_BASE_URL"] = llm.baseURL

        // `handoff keys create` prints the key once, by design; serve must never print it.
        func createKey(_ name: String, _ scope: String) async throws -> String {
            let created = try await runProcess(try BuiltProducts.executable("handoff"), ["keys", "create", "--name", name, "--scope", scope, "--json"],
                                               environment: ["HANDOFF_DATABASE": dir.file("handoff.sqlite"), "HANDOFF_POLICY": dir.file("handoff.yaml")])
            return try #require((try? JSONDecoder().decode(JSONValue.self, from: Data(created.stdout.utf8)))?.member("key")?.asString,
                                "keys create: \(created.stdout) \(created.stderr)")
        }
        let agentKey = try await createKey("deploy-bot", "agent")
        let adminKey = try await createKey("ops", "admin")
        let keyParts = try #require(APIKeys.parse(adminKey))
        let agentParts = try #require(APIKeys.parse(agentKey))

        let serve = try ServeProcess.start(environment: env, directory: dir.path)
        let up = await eventually(timeout: .seconds(60)) { Self.port(from: serve.output) != nil && serve.output.contains("scheduler started") }
        #expect(up, "serve did not start: \(serve.output.suffix(4000))")
        let client = Client(port: Self.port(from: serve.output) ?? 0)
        let admin = [("Authorization", "Bearer \(adminKey)"), ("Content-Type", "application/json")]

        // Cards fail with invalid_auth (a revoked bot token, as Slack reports it).
        await fake.failNext("chat.postMessage", error: "invalid_auth", times: 3)
        let agent = [("Authorization", "Bearer \(agentKey)"), ("Content-Type", "application/json")]
        let (createdStatus, createdBody) = try await client.send(.POST, "/v1/approvals", headers: agent,
                                                                 body: Array(#"{"action":"deploy","arguments":{"v":1},"callback_url":"\#(receiver.url)"}"#.utf8))
        #expect(createdStatus == 201, "\(createdBody)")
        // A decision: its webhook goes to a receiver that answers 500.
        let (decidedStatus, decidedBody) = try await client.send(.POST, "/v1/approvals/1/decision", headers: admin,
                                                                 body: Array(#"{"verdict":"approve","comment":"ok"}"#.utf8))
        #expect(decidedStatus == 200, "\(decidedBody)")

        // A question in a DM: the AI provider refuses the key (401).
        let dm = FakeSlack.dmChannel(for: People.user)
        let question = Array(FakeSlackPayloads.eventCallback(FakeSlackPayloads.message(user: People.user, channel: dm, text: "How long is the refund window?",
                                                                                       ts: "1767226000.000100"), eventID: "EvSecret1").canonicalText.utf8)
        let signed = fake.signedHeaders(body: question, contentType: "application/json").map { ($0.name.rawName, $0.value) }
        #expect(try await client.send(.POST, "/slack/events", headers: signed, body: question).0 == 200)

        // Forged Slack requests.
        let now = String(Int64(Date().timeIntervalSince1970))
        for signature in ["v0=" + String(repeating: "0", count: 64), SignatureTests.slackSignature(question, timestamp: now, secret: "guess"), "garbage"] {
            let (status, _) = try await client.send(.POST, "/slack/events", headers: [("X-Slack-Request-Timestamp", now), ("X-Slack-Signature", signature),
                                                                                     ("Content-Type", "application/json")], body: question)
            #expect(status == 401)
        }
        let stale = String(Int64(Date().timeIntervalSince1970) - 3600)
        let replay = fake.signedHeaders(body: question, timestamp: Int64(stale)!, contentType: "application/json").map { ($0.name.rawName, $0.value) }
        #expect(try await client.send(.POST, "/slack/events", headers: replay, body: question).0 == 401)

        // Keys presented by clients that are not keys, or not valid: refused without echoing them.
        let presented = [
            "Bearer hk_PRESENTEDid1_PRESENTEDSECRETk2j4abcdefghijklmnop",
            "Bearer hk_\(keyParts.id)_PRESENTEDSECRETwrong0123456789abcdefgh",
            "Bearer sk-live-PRESENTEDSECRETx9",
            "Bearer \(adminKey)PRESENTEDSECRET",
            "Basic " + Data("ops:PRESENTEDSECRETpw".utf8).base64EncodedString(),
            "Token PRESENTEDSECRETtok",
            "bearer  PRESENTEDSECRET spaced",
        ]
        for authorization in presented {
            let (status, body) = try await client.send(.POST, "/v1/approvals", headers: [("Authorization", authorization), ("Content-Type", "application/json")],
                                                       body: Array(#"{"action":"x"}"#.utf8))
            #expect(status == 401, "\(authorization): \(body)")
            let (getStatus, _) = try await client.send(.GET, "/v1/approvals/1", headers: [("Authorization", authorization)])
            #expect(getStatus == 401)
        }
        // The dashboard sign-in refuses them too.
        let (_, loginPage) = try await client.send(.GET, "/login")
        if let csrf = loginPage.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression).map({ String(loginPage[$0].split(separator: "\"")[3]) }),
           let cookie = loginPage.split(separator: "\n").first(where: { $0.lowercased().hasPrefix("set-cookie: handoff_login=") })?.split(separator: ";").first
        {
            let value = cookie.dropFirst("set-cookie: ".count)
            for key in ["hk_PRESENTEDid1_PRESENTEDSECRETlogin", "PRESENTEDSECRETnotakey"] {
                let form = "csrf=\(csrf)&key=\(key)"
                let (status, _) = try await client.send(.POST, "/login", headers: [("Cookie", String(value)), ("Content-Type", "application/x-www-form-urlencoded")],
                                                        body: Array(form.utf8))
                #expect(status == 401 || status == 403)
            }
        } else {
            Issue.record("could not read the sign-in form: \(loginPage.prefix(2000))")
        }

        // Wait until each error has happened (the controls: the secrets were really in play).
        #expect(await eventually(timeout: .seconds(60)) { await llm.requests().contains { $0.status == 401 && $0.headers["x-api-key"] == Self.aiKey } },
                "the AI key was presented and refused")
        #expect(await eventually(timeout: .seconds(60)) { receiver.received.count >= 2 }, "the webhook failed and was retried")
        #expect(receiver.received.allSatisfy { $0.headers["handoff-signature"]?.contains("v1=") == true })
        #expect(await eventually(timeout: .seconds(30)) { await fake.calls("chat.postMessage").contains { $0.error == "invalid_auth" } },
                "a card post met invalid_auth")
        // The log reports each failure (so the secrets were next to what was logged).
        #expect(await eventually(timeout: .seconds(30)) { serve.output.contains("invalid_auth") }, "no invalid_auth in the log")
        #expect(await eventually(timeout: .seconds(30)) { serve.output.contains("authentication_error") }, "no provider refusal in the log")
        #expect(await eventually(timeout: .seconds(30)) { serve.output.contains("answered 500") },
                "no webhook failure in the log")
        _ = try await client.send(.GET, "/readyz")
        _ = try await client.send(.GET, "/metrics")
        await client.shutdown()
        #expect(await serve.terminate() == 0)

        let log = serve.output
        #expect(log.contains(" trace "), "the log ran at level trace")
        let secrets = [Self.botToken, Self.signingSecret, Self.webhookSecret, Self.aiKey, adminKey, keyParts.secret, String(keyParts.secret.prefix(12)),
                       agentKey, agentParts.secret, String(agentParts.secret.prefix(12))]
        #expect(Self.leaks(in: log, secrets: secrets).isEmpty, "secrets in the log: \(Self.leaks(in: log, secrets: secrets))")
        for answer in client.answers {
            #expect(Self.leaks(in: answer, secrets: secrets).isEmpty, "secrets in an answer: \(Self.leaks(in: answer, secrets: secrets)): \(answer.prefix(2000))")
        }
        // The command line, at trace too: a question the provider refuses, and the key list.
        var cliEnvironment = env
        cliEnvironment["HANDOFF_PORT"] = nil
        let asked = try await runProcess(try BuiltProducts.executable("handoff"), ["ask", "How long is the refund window?"],
                                         environment: cliEnvironment, dropInherited: { $0.hasPrefix("SLACK_") || $0.hasPrefix("HANDOFF_") })
        let listed = try await runProcess(try BuiltProducts.executable("handoff"), ["keys", "list"], environment: cliEnvironment,
                                          dropInherited: { $0.hasPrefix("SLACK_") || $0.hasPrefix("HANDOFF_") })
        #expect((asked.stdout + asked.stderr).contains("401") || (asked.stdout + asked.stderr).contains("authentication_error"),
                "handoff ask reports the refusal: \(asked.stdout) \(asked.stderr)")
        #expect(listed.stdout.contains("ops"))
        for output in [asked.stdout, asked.stderr, listed.stdout, listed.stderr] {
            #expect(Self.leaks(in: output, secrets: secrets).isEmpty, "secrets in command output: \(Self.leaks(in: output, secrets: secrets))")
        }
        // The webhook bodies carry decisions, never the secret they are signed with.
        for hook in receiver.received {
            #expect(Self.leaks(in: String(decoding: hook.body, as: UTF8.self), secrets: secrets).isEmpty)
        }
        try await receiver.stop()
        await llm.stop()
        await fake.stop()
        dir.remove()
    }
}

/// A homeserver that refuses every login (as Synapse does a wrong password) and every token.
final class PasswordRefusingHomeserver: Sendable {
    final class Counter: Sendable {
        let value = Mutex(0)
    }

    let url: String
    private let attempts: Counter
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(url: String, attempts: Counter, group: ServiceGroup, task: Task<Void, any Error>) {
        self.url = url
        self.attempts = attempts
        self.group = group
        self.task = task
    }

    func loginAttempts() async -> Int { attempts.value.withLock { $0 } }

    static func start() async throws -> PasswordRefusingHomeserver {
        let attempts = Counter()
        let router = Router()
        @Sendable func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.post("/_matrix/client/v3/login") { _, _ in
            attempts.value.withLock { $0 += 1 }
            return json(.forbidden, #"{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}"#)
        }
        router.get("/_matrix/client/versions") { _, _ in json(.ok, #"{"versions":["v1.11"]}"#) }
        router.get("/**") { _, _ in json(.unauthorized, #"{"errcode":"M_MISSING_TOKEN","error":"Missing access token"}"#) }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "refusing-homeserver")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports { port = p; break }
        return PasswordRefusingHomeserver(url: "http://127.0.0.1:\(port)", attempts: attempts, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
