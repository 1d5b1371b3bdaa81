import AsyncHTTPClient
import Foundation
import HandoffAI
import HandoffCore
import HandoffTesting
import Synchronization
import Testing

/// Records the waits a retry policy asks for instead of sleeping, so backoff is checked without timing.
final class RecordedSleeps: Sendable {
    private let waits = Mutex<[Duration]>([])
    var all: [Duration] { waits.withLock { $0 } }
    var seconds: [Double] { all.map(\.seconds) }

    func policy(attempts: Int = 4) -> RetryPolicy {
        var p = RetryPolicy()
        p.maxAttempts = attempts
        p.jitter = 0
        p.initialBackoff = .milliseconds(500)
        p.sleep = { [self] d in waits.withLock { $0.append(d) } }
        return p
    }
}

/// A provider against a fake on loopback, with its own HTTP client (shut down before the fake).
struct ProviderHarness {
    let http = ProviderSettings.makeHTTPClient(connectTimeout: .seconds(1))

    func anthropic(_ fake: FakeAnthropic, key: String? = nil, model: String = "claude-sonnet-4-5", retry: RetryPolicy, version: String = "2023-06-01",
                   baseURL: String? = nil) -> AnthropicProvider
    {
        var c = AnthropicProvider.Configuration(model: model, apiKey: Secret(key ?? fake.configuration.apiKey))
        c.baseURL = baseURL ?? fake.baseURL
        c.retry = retry
        c.version = version
        c.timeout = .seconds(10)
        return AnthropicProvider(http: http, configuration: c)
    }

    func openAI(_ fake: FakeOpenAI, key: String?? = .none, model: String = "gpt-4o-mini", retry: RetryPolicy, baseURL: String? = nil) -> OpenAICompatibleProvider {
        let k: String? = key ?? fake.configuration.apiKey
        var c = OpenAICompatibleProvider.Configuration(model: model, apiKey: k.map(Secret.init))
        c.baseURL = baseURL ?? fake.baseURL
        c.retry = retry
        c.timeout = .seconds(10)
        return OpenAICompatibleProvider(http: http, configuration: c)
    }

    func shutdown() async { try? await http.shutdown() }
}

@Suite struct AnthropicProviderTests {
    @Test("Messages API wire format: headers, model, max_tokens, system, messages; text blocks and stop_reason read back")
    func wireFormat() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.script(.user("refund"), .text("Refunds are accepted within 14 days.", stop: "end_turn"))
        let provider = h.anthropic(fake, retry: sleeps.policy())
        let reply = try await provider.complete(CompletionRequest(system: "Be brief.", messages: [.user("How long is the refund window?")],
                                                                  maxTokens: 300, temperature: 0.2))
        #expect(reply.text == "Refunds are accepted within 14 days.")
        #expect(reply.stopReason == .endTurn)
        #expect(reply.model == "claude-sonnet-4-5")
        #expect((reply.outputTokens ?? 0) > 0)
        #expect(reply.requestID?.hasPrefix("req_") == true)
        let sent = try #require(await fake.requests().first)
        #expect(sent.status == 200)
        #expect(sent.headers["x-api-key"] == fake.configuration.apiKey)
        #expect(sent.headers["anthropic-version"] == "2023-06-01")
        #expect(sent.field("model") == .string("claude-sonnet-4-5"))
        #expect(sent.field("max_tokens") == .int(300))
        #expect(sent.field("system") == .string("Be brief."))
        #expect(sent.messages.map(\.role) == ["user"])
        #expect(sent.field("logprobs") == nil, "Anthropic takes no logprobs field")
        #expect(sleeps.all.isEmpty)
        await h.shutdown()
        await fake.stop()
    }

    @Test("A wrong key is refused (401) and not retried; the error names the variable, never the key")
    func wrongKey() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        let provider = h.anthropic(fake, key: "sk-ant-wrong-secret-value", retry: sleeps.policy())
        do {
            _ = try await provider.complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .unauthorized)
            #expect(error.message.contains("authentication_error"))
            #expect(error.message.contains("ANTHROPIC_API_KEY"))
            #expect(!error.description.contains("wrong-secret"))
            #expect(error.attempts == 1)
        }
        #expect(await fake.requests().count == 1)
        #expect(sleeps.all.isEmpty)
        await h.shutdown()
        await fake.stop()
    }

    @Test("An unknown model and a missing anthropic-version are refused by the fake and reported clearly")
    func fakeEnforcesTheContract() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        do {
            _ = try await h.anthropic(fake, model: "claude-nonexistent", retry: RecordedSleeps().policy()).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .badRequest)
            #expect(error.status == 404)
            #expect(error.message.contains("not_found_error: model: claude-nonexistent"))
        }
        do {
            _ = try await h.anthropic(fake, retry: RecordedSleeps().policy(), version: "1999-01-01").complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.status == 400)
        }
        do {
            _ = try await h.anthropic(fake, retry: RecordedSleeps().policy()).complete(CompletionRequest(messages: [.assistant("hello")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .badRequest, "a conversation must start with the user")
        }
        await h.shutdown()
        await fake.stop()
    }

    @Test("529 overloaded is retried with exponential backoff; then the answer comes")
    func overloadedIsRetried() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.overloaded(), times: 2)
        let reply = try await h.anthropic(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
        #expect(reply.text.hasPrefix("Fake answer"))
        #expect(await fake.requests().map(\.status) == [529, 529, 200])
        #expect(sleeps.seconds == [0.5, 1.0], "exponential: 0.5 s, then 1 s")
        await h.shutdown()
        await fake.stop()
    }

    @Test("429 with retry-after is retried after exactly the time the provider asked for")
    func rateLimitHonorsRetryAfter() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.rateLimited(retryAfter: "7"))
        await fake.failNext(.overloaded(retryAfter: "3"))
        _ = try await h.anthropic(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
        #expect(sleeps.seconds == [7, 3])
        await h.shutdown()
        await fake.stop()
    }

    @Test("A retry-after longer than Handoff waits fails at once, saying so")
    func retryAfterTooLong() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.rateLimited(retryAfter: "3600"))
        do {
            _ = try await h.anthropic(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .rateLimited)
            #expect(error.message.contains("retry after 3600 s"))
        }
        #expect(sleeps.all.isEmpty)
        await h.shutdown()
        await fake.stop()
    }

    @Test("500s until the attempts run out: a server error that says how many attempts were made")
    func serverErrorsExhaustRetries() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.serverError, times: 10)
        do {
            _ = try await h.anthropic(fake, retry: sleeps.policy(attempts: 3)).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .serverError)
            #expect(error.attempts == 3)
            #expect(error.description.contains("500 api_error: Internal server error (after 3 attempts)"))
        }
        #expect(sleeps.seconds == [0.5, 1.0])
        await h.shutdown()
        await fake.stop()
    }

    @Test("Malformed JSON in a 200 is a clear error, not retried")
    func malformedJSON() async throws {
        let fake = try await FakeAnthropic.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.malformed("{\"id\": \"msg_1\", \"content\": [tru"))
        do {
            _ = try await h.anthropic(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .malformedResponse)
            #expect(error.message.contains("not a Messages API reply"))
            #expect(error.message.contains("msg_1"))
        }
        #expect(sleeps.all.isEmpty)
        await h.shutdown()
        await fake.stop()
    }

    @Test("Connection refused: retried, then a connection error that names the host")
    func connectionRefused() async throws {
        let fake = try await FakeAnthropic.start()
        let base = fake.baseURL
        await fake.stop()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        do {
            _ = try await h.anthropic(fake, retry: sleeps.policy(attempts: 2), baseURL: base).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("127.0.0.1"))
            #expect(error.attempts == 2)
        }
        #expect(sleeps.all.count == 1)
        await h.shutdown()
    }
}

@Suite struct OpenAIProviderTests {
    @Test("Chat completions wire format: bearer key, system message first, logprobs asked for and read")
    func wireFormatAndLogprobs() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        await fake.script(.user("capital"), .logprobs("Paris is the capital", [-0.01, -0.2, -0.05, -0.3]))
        let provider = h.openAI(fake, retry: RecordedSleeps().policy())
        let reply = try await provider.complete(CompletionRequest(system: "Answer briefly.", messages: [.user("What is the capital of France?")],
                                                                  maxTokens: 50, temperature: 0, logprobs: true))
        #expect(reply.text == "Paris is the capital")
        #expect(reply.stopReason == .endTurn)
        #expect(reply.tokenLogprobs == [-0.01, -0.2, -0.05, -0.3])
        let sent = try #require(await fake.requests().first)
        #expect(sent.headers["authorization"] == "Bearer \(fake.configuration.apiKey!)")
        #expect(sent.system == "Answer briefly.")
        #expect(sent.field("logprobs") == .bool(true))
        #expect(sent.field("top_logprobs") == .int(0))
        #expect(sent.field("max_tokens") == .int(50))
        await h.shutdown()
        await fake.stop()
    }

    @Test("A local server without keys (Ollama-style base URL without /v1) and without logprobs")
    func localServer() async throws {
        var configuration = FakeOpenAI.Configuration()
        configuration.apiKey = nil
        configuration.offersLogprobs = false
        let fake = try await FakeOpenAI.start(configuration)
        let h = ProviderHarness()
        let provider = h.openAI(fake, key: .some(nil), model: "llama3.1", retry: RecordedSleeps().policy(),
                                baseURL: "http://127.0.0.1:\(fake.port)/")
        let reply = try await provider.complete(CompletionRequest(messages: [.user("hi")], logprobs: true))
        #expect(reply.tokenLogprobs == nil)
        #expect(await fake.requests().first?.headers["authorization"] == nil)
        await h.shutdown()
        await fake.stop()
    }

    @Test("A missing key against a server that needs one is a 401 that names the variables")
    func missingKey() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        do {
            _ = try await h.openAI(fake, key: .some(nil), retry: RecordedSleeps().policy()).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .unauthorized)
            #expect(error.message.contains("OPENAI_API_KEY"))
        }
        await h.shutdown()
        await fake.stop()
    }

    @Test("429 honors retry-after; insufficient_quota is not retried")
    func rateLimits() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        let sleeps = RecordedSleeps()
        await fake.failNext(.rateLimited(retryAfter: "2", type: "rate_limit_exceeded"))
        _ = try await h.openAI(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
        #expect(sleeps.seconds == [2])
        await fake.failNext(.error(status: 429, type: "insufficient_quota", message: "You exceeded your current quota"))
        do {
            _ = try await h.openAI(fake, retry: sleeps.policy()).complete(CompletionRequest(messages: [.user("hi")]))
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .badRequest)
            #expect(error.attempts == 1)
        }
        await h.shutdown()
        await fake.stop()
    }

    @Test("A cut-off answer (finish_reason length) is reported as such")
    func lengthStop() async throws {
        let fake = try await FakeOpenAI.start()
        let h = ProviderHarness()
        await fake.script(.user("essay"), .text("Once upon a", stop: "length"))
        let reply = try await h.openAI(fake, retry: RecordedSleeps().policy()).complete(CompletionRequest(messages: [.user("write an essay")]))
        #expect(reply.stopReason == .maxTokens)
        #expect(!reply.stopReason.isComplete)
        await h.shutdown()
        await fake.stop()
    }
}

@Suite struct RetryPolicyTests {
    @Test func retryAfterHeaders() {
        #expect(RetryPolicy.retryAfter(headers: [("Retry-After", "12")]) == .seconds(12))
        #expect(RetryPolicy.retryAfter(headers: [("retry-after-ms", "1500"), ("retry-after", "9")]) == .milliseconds(1500))
        let now = Date(timeIntervalSince1970: 1_767_225_600)
        #expect(RetryPolicy.retryAfter(headers: [("retry-after", "Thu, 01 Jan 2026 00:00:30 GMT")], now: now) == .seconds(30))
        #expect(RetryPolicy.retryAfter(headers: [("retry-after", "soon")]) == nil)
    }

    @Test func backoffIsExponentialAndCapped() {
        var p = RetryPolicy()
        p.jitter = 0
        p.initialBackoff = .seconds(1)
        p.maxBackoff = .seconds(5)
        #expect((1...5).map { p.delay(afterAttempt: $0, retryAfter: nil)?.seconds } == [1, 2, 4, 5, 5])
        #expect(p.delay(afterAttempt: 1, retryAfter: .seconds(90)) == nil, "longer than maxRetryAfter")
        p.jitter = 0.2
        let spread = p.delay(afterAttempt: 1, retryAfter: nil, random: 1)?.seconds ?? 0
        #expect(abs(spread - 1.2) < 1e-9)
    }
}
