import AsyncHTTPClient
import Foundation
import HandoffChatKit
import HandoffCore
import HandoffMatrix
import HandoffTesting
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// The client's protocol duties where a real Synapse never shows the case (it always sends both
/// `Retry-After` and `retry_after_ms`): a tiny homeserver double on loopback.
@Suite struct MatrixClientTests {
    @Test func retryAfterPrefersTheHeaderThenTheBody() {
        #expect(MatrixClient.retryAfter(header: "5", body: .object(["retry_after_ms": .int(4604)])) == .seconds(5))
        #expect(MatrixClient.retryAfter(header: "1.5", body: nil) == .milliseconds(1500))
        #expect(MatrixClient.retryAfter(header: nil, body: .object(["retry_after_ms": .int(700)])) == .milliseconds(700))
        #expect(MatrixClient.retryAfter(header: "soon", body: .object(["retry_after_ms": .int(700)])) == .milliseconds(700))
        #expect(MatrixClient.retryAfter(header: nil, body: nil) == .seconds(1))
    }

    @Test func transactionIDsAreStablePerKeyAndNeverACounterAlone() {
        let a = MatrixTransactionIDs()
        a.setNamespace("nsA")
        #expect(a.keyed("handoff-7-matrix") == a.keyed("handoff-7-matrix"))
        #expect(a.keyed("handoff-7-matrix").hasPrefix("nsA."))
        let fresh = (0..<100).map { _ in a.fresh() }
        #expect(Set(fresh).count == 100)
        #expect(fresh.allSatisfy { $0.hasPrefix("nsA.\(a.bootID).") })
        // Another database (outbox ids from 1 again) gets another namespace: no old txnId is reused.
        let b = MatrixTransactionIDs()
        b.setNamespace("nsB")
        #expect(b.keyed("handoff-7-matrix") != a.keyed("handoff-7-matrix"))
        // Another process of the same database: same keyed ids (retries dedupe), other fresh ids.
        let restarted = MatrixTransactionIDs()
        restarted.setNamespace("nsA")
        #expect(restarted.keyed("handoff-7-matrix") == a.keyed("handoff-7-matrix"))
        #expect(restarted.fresh() != a.fresh())
    }

    @Test("429 with only retry_after_ms is waited out; a dead token is renewed once with the password")
    func rateLimitBodyAndTokenRenewal() async throws {
        let double = try await HomeserverDouble.start()
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var configuration = MatrixClient.Configuration(homeserver: double.url, user: "bot", password: Secret("pw"))
        configuration.transportRetryDelay = .milliseconds(10)
        let client = MatrixClient(http: http, configuration: configuration)
        let started = ContinuousClock.now
        let id = try await client.send(room: "!r:localhost", type: "m.room.message", txnID: "t1", content: .object(["body": .string("hi")]))
        #expect(id == "$event1")
        #expect(ContinuousClock.now - started >= .milliseconds(600), "waited the body's retry_after_ms")
        #expect(client.rateLimitedResponses == 1)
        // The double forgets the token: the next call logs in again once and goes through.
        await double.state.revokeTokens()
        _ = try await client.send(room: "!r:localhost", type: "m.room.message", txnID: "t2", content: .object(["body": .string("again")]))
        #expect(client.logins == 2)
        // Without a password, a dead token is a fatal error with a clear message (no loop).
        let tokenOnly = MatrixClient(http: http, configuration: .init(homeserver: double.url, accessToken: Secret("token-1")))
        await double.state.revokeTokens()
        await #expect(throws: MatrixError.self) { _ = try await tokenOnly.ensureSession() }
        do {
            _ = try await tokenOnly.ensureSession()
        } catch {
            #expect(error.isFatal)
            #expect(error.message.contains("MATRIX_ACCESS_TOKEN"))
        }
        try await http.shutdown()
        await double.stop()
    }
}

/// Just enough of a homeserver for the client tests: login, whoami, one 429 (body only), send.
actor HomeserverDoubleState {
    var tokens: Set<String> = []
    var logins = 0
    var limitedOnce = false

    func login() -> String {
        logins += 1
        let token = "token-\(logins)"
        tokens.insert(token)
        return token
    }

    func valid(_ header: String?) -> Bool { header.map { tokens.contains(String($0.dropFirst("Bearer ".count))) } ?? false }
    func revokeTokens() { tokens = [] }

    func shouldLimit() -> Bool {
        defer { limitedOnce = true }
        return !limitedOnce
    }
}

struct HomeserverDouble {
    let url: String
    let state: HomeserverDoubleState
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start() async throws -> HomeserverDouble {
        let state = HomeserverDoubleState()
        let router = Router()
        @Sendable func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let unknownToken = #"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}"#
        router.post("/_matrix/client/v3/login") { _, _ -> Response in
            let token = await state.login()
            return json(.ok, #"{"user_id":"@bot:localhost","access_token":"\#(token)","device_id":"HANDOFF1"}"#)
        }
        router.get("/_matrix/client/v3/account/whoami") { request, _ -> Response in
            guard await state.valid(request.headers[.authorization]) else { return json(.unauthorized, unknownToken) }
            return json(.ok, #"{"user_id":"@bot:localhost","device_id":"HANDOFF1"}"#)
        }
        router.put("/_matrix/client/v3/rooms/:room/send/:type/:txn") { request, _ -> Response in
            guard await state.valid(request.headers[.authorization]) else { return json(.unauthorized, unknownToken) }
            if await state.shouldLimit() {
                return json(.tooManyRequests, #"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":600}"#)
            }
            return json(.ok, #"{"event_id":"$event1"}"#)
        }
        await state.revokeTokens()
        _ = await state.login()  // token-1, for the access-token client
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "homeserver-double")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports { port = p; break }
        return HomeserverDouble(url: "http://127.0.0.1:\(port)", state: state, group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
