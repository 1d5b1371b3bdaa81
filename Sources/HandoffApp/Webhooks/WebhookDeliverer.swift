import AsyncHTTPClient
import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Logging
import NIOCore
import ServiceLifecycle

/// Delivers `.webhook` outbox rows: POSTs the payload the workflow built (`{"event","occurred_at","data"}`)
/// to the entity's callback URL, signed with HMAC-SHA256, with the outbox row id as `Handoff-Delivery`
/// so receivers can drop repeats (delivery is at least once). 2xx is delivered; anything else is
/// retried by the ``OutboxDispatcher`` with exponential backoff and jitter until ``Configuration/maxAttempts``.
package struct WebhookDeliverer: OutboxDeliverer {
    package struct Configuration: Sendable {
        /// Whole-request timeout per attempt.
        package var timeout: Duration = .seconds(10)
        /// Attempts before the row is marked failed (with the default backoff: about a day and a half).
        package var maxAttempts: Int = 18
        /// The secret from configuration (`HANDOFF_WEBHOOK_SECRET`); nil uses the one stored in the database.
        package var secret: Secret?
        /// Backoff, batch size and concurrency of the dispatcher that delivers webhooks.
        package var dispatcher = OutboxDispatcher.Configuration()

        package init() {}
    }

    package let kinds: Set<OutboxKind> = [.webhook]
    package let maxAttempts: Int
    let client: HTTPClient
    let secret: Secret
    let clock: any WorkflowClock
    let timeout: Duration
    let logger: Logger

    package init(client: HTTPClient, secret: Secret, clock: any WorkflowClock, configuration: Configuration,
                 logger: Logger = Logger(label: "handoff.webhooks"))
    {
        self.client = client
        self.secret = secret
        self.clock = clock
        self.timeout = configuration.timeout
        self.maxAttempts = max(1, configuration.maxAttempts)
        self.logger = logger
    }

    package func deliver(_ message: OutboxMessage) async -> DeliveryResult {
        let result = await attempt(message)
        switch result {
        case .delivered:
            HandoffMetrics.webhookCounter(result: "delivered").increment()
        case .retry(_, let reason):
            HandoffMetrics.webhookCounter(result: message.attempts + 1 >= maxAttempts ? "failed" : "retry").increment()
            HandoffMetrics.webhookFailures.increment()
            logger.info("webhook not delivered; will retry", metadata: ["delivery": "\(message.id)", "attempt": "\(message.attempts + 1)", "reason": "\(reason)"])
        case .failed(let reason):
            HandoffMetrics.webhookCounter(result: "failed").increment()
            HandoffMetrics.webhookFailures.increment()
            logger.warning("webhook failed", metadata: ["delivery": "\(message.id)", "reason": "\(reason)"])
        }
        return result
    }

    func attempt(_ message: OutboxMessage) async -> DeliveryResult {
        guard let destination = message.destination, let url = URL(string: destination),
              let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil
        else {
            return .failed(reason: "the callback URL is not an http(s) URL")
        }
        let body = Array(message.payload.utf8)
        let timestamp = Int64(clock.now().timeIntervalSince1970)
        var request = HTTPClientRequest(url: destination)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "handoff-webhooks/1")
        request.headers.add(name: WebhookSignature.headerName, value: WebhookSignature.header(secret: secret, timestamp: timestamp, body: body))
        request.headers.add(name: WebhookSignature.deliveryHeaderName, value: String(message.id))
        if let event = Self.event(of: message.payload) { request.headers.add(name: WebhookSignature.eventHeaderName, value: event) }
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout.seconds * 1000)))
            // Drain (bounded) so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .delivered }
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds(min($0, 3600)) }
            return .retry(after: retryAfter, reason: "the receiver answered \(status)")
        } catch {
            return .retry(after: nil, reason: "could not reach the receiver: \(Self.describe(error))")
        }
    }

    /// The `event` field of a payload, for the `Handoff-Event` header.
    static func event(of payload: String) -> String? {
        struct Probe: Decodable { var event: String? }
        return (try? JSONDecoder().decode(Probe.self, from: Data(payload.utf8)))?.event
    }

    static func describe(_ error: any Error) -> String {
        String(String(describing: error).prefix(300))
    }
}

/// Delivers webhooks for as long as the service runs: owns the HTTP client (made when the service
/// starts, so building the graph holds no resources) and the outbox dispatcher for `.webhook` rows. On
/// graceful shutdown the dispatcher finishes the deliveries in flight, then the client shuts down.
package struct WebhookService: Service {
    let workflow: Workflow
    let configuration: WebhookDeliverer.Configuration
    let secret: Secret
    let logger: Logger

    package init(workflow: Workflow, configuration: WebhookDeliverer.Configuration,
                 logger: Logger = Logger(label: "handoff.webhooks")) async throws
    {
        self.workflow = workflow
        self.configuration = configuration
        self.logger = logger
        if let configured = configuration.secret {
            secret = configured
        } else {
            secret = try await WebhookSignature.loadSecret(environment: [:], store: workflow.store, now: workflow.clock.now())
        }
    }

    package func run() async throws {
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
        let deliverer = WebhookDeliverer(client: client, secret: secret, clock: workflow.clock, configuration: configuration, logger: logger)
        let dispatcher = OutboxDispatcher(workflow: workflow, deliverers: [deliverer], configuration: configuration.dispatcher, logger: logger)
        do {
            try await dispatcher.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
