import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import HTTPTypes
import Hummingbird
import NIOCore

/// What every API handler needs: authentication, the rate limit, body and query parsing, JSON answers.
struct APIToolkit: Sendable {
    let workflow: Workflow
    let authenticator: APIAuthenticator
    let limiter: RateLimiter
    let maxBodySize: Int

    static let idempotencyHeader = HTTPField.Name("Idempotency-Key")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!

    /// Registers an authenticated route: the key is checked against `access` and the rate limit before `handler` runs.
    func route(
        _ router: HTTPRouter, _ method: HTTPRequest.Method, _ path: RouterPath, _ access: Access,
        _ handler: @escaping @Sendable (Request, BasicRequestContext, APIPrincipal) async throws -> Response
    ) {
        let limits = APILimits.fields(method.rawValue, "\(path)") ?? []
        router.on(path, method: method) { request, context -> Response in
            let principal = try await authenticator.principal(authorization: request.headers[.authorization], access: access)
            if let wait = limiter.take(principal.keyID) {
                throw APIError.rateLimited(retryAfter: max(1, Int(wait.seconds.rounded(.up))))
            }
            guard !limits.isEmpty else { return try await handler(request, context, principal) }
            // The body's strings are held to their limits (APILimits) before anything else reads it.
            var request = request
            let body = try await request.collectBody(upTo: maxBodySize)
            if let violation = APILimits.violation(json: body.readableBytesView, limits) { throw violation }
            return try await handler(request, context, principal)
        }
    }

    /// Decodes a JSON body (snake_case keys); an empty body counts as `{}` when `emptyIsObject`.
    func body<T: Decodable>(_ type: T.Type, _ request: Request, emptyIsObject: Bool = false) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: maxBodySize)
        var bytes = Data(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            guard emptyIsObject else { throw APIError.invalid(nil, "send a JSON object as the request body") }
            bytes = Data("{}".utf8)
        }
        do {
            return try JSONValue.decode(T.self, from: bytes, decoder: WireJSON.decoder())
        } catch let error as DecodingError {
            throw APIError(error)
        }
    }

    /// The `Idempotency-Key` header as the workflow's event key in the caller's namespace.
    func idempotencyKey(_ request: Request, _ principal: APIPrincipal) throws -> EventKey? {
        guard let raw = request.headers[Self.idempotencyHeader]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        guard raw.count <= 255 else { throw APIError.invalid("Idempotency-Key", "Idempotency-Key is longer than 255 characters") }
        return EventKey(source: principal.eventSource, key: raw)
    }

    /// True when the key was already used (the call is a retry).
    func wasApplied(_ key: EventKey?) async throws -> Bool {
        guard let key else { return false }
        return try await workflow.store.eventEntity(source: key.source, key: key.key) != nil
    }

    /// A JSON answer (snake_case keys, ISO 8601 dates).
    func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, replayed: Bool = false) throws -> Response {
        let data = try WireJSON.encoder().encode(value)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if replayed { headers[Self.replayedHeader] = "true" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A created entity: 201, or 200 with `Idempotent-Replayed: true` when a retry returned the original.
    func created(_ value: some Encodable, new: Bool) throws -> Response {
        try json(value, status: new ? .created : .ok, replayed: !new)
    }
}

/// Query-string and path parsing with errors that name the parameter.
extension Request {
    /// A query parameter, form-decoded (`+` is a space, `%2B` a plus); nil when absent or empty.
    func query(_ name: String) -> String? {
        guard let raw = uri.query, let value = FormURLEncoding.parse(raw)[name], !value.isEmpty else { return nil }
        return value
    }

    func intQuery(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = query(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw APIError.invalid(name, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    func doubleQuery(_ name: String, default value: Double, range: ClosedRange<Double>) throws -> Double {
        guard let text = query(name) else { return value }
        guard let n = Double(text), n.isFinite, range.contains(n) else {
            throw APIError.invalid(name, "\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    func idQuery<T>(_ name: String) throws -> ID<T>? {
        guard let text = query(name) else { return nil }
        guard let id = ID<T>(text) else { throw APIError.invalid(name, "\(name) must be a positive integer id") }
        return id
    }
}

extension BasicRequestContext {
    /// The `{id}` path parameter as a typed id; 404 when it is not a positive integer (no such entity).
    func id<T>(_ kind: EntityKind, name: String = "id") throws -> ID<T> {
        guard let text = parameters.get(name), let id = ID<T>(text) else {
            throw APIError.notFound("\(kind.displayName) #\(parameters.get(name) ?? "") does not exist")
        }
        return id
    }

    func text(_ name: String) throws -> String {
        guard let value = parameters.get(name)?.removingPercentEncoding, !value.isEmpty else {
            throw APIError.invalid(name, "\(name) is required in the path")
        }
        return value
    }
}

/// A page of results with the cursor for the next one.
struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    var items: [Item]
    /// Pass as `before` (newest-first lists) or `after` (oldest-first lists) for the next page; absent on the last page.
    var next: Int64?
}

/// Streams text chunks from a producer to a consumer, holding at most two chunks: the producer waits
/// until the consumer took the previous one (back-pressure for large downloads).
final class ChunkPipe: Sendable {
    private let chunks: AsyncThrowingStream<String, any Error>
    private let chunkInput: AsyncThrowingStream<String, any Error>.Continuation
    private let acks: AsyncStream<Void>
    private let ackInput: AsyncStream<Void>.Continuation

    init() {
        (chunks, chunkInput) = AsyncThrowingStream.makeStream(of: String.self)
        (acks, ackInput) = AsyncStream.makeStream(of: Void.self)
    }

    /// Runs `produce` (which calls `send`) and feeds each chunk to `consume`.
    static func run(
        produce: @escaping @Sendable (_ send: @Sendable (String) async throws -> Void) async throws -> Void,
        consume: (String) async throws -> Void
    ) async throws {
        let pipe = ChunkPipe()
        async let producer: Void = {
            do {
                try await produce { chunk in try await pipe.send(chunk) }
                pipe.chunkInput.finish()
            } catch {
                pipe.chunkInput.finish(throwing: error)
            }
        }()
        do {
            for try await chunk in pipe.chunks {
                try await consume(chunk)
                pipe.ackInput.yield()
            }
        } catch {
            pipe.ackInput.finish()
            _ = await producer
            throw error
        }
        pipe.ackInput.finish()
        await producer
    }

    /// Hands one chunk over and waits until it was written; throws when the consumer stopped.
    private func send(_ chunk: String) async throws {
        chunkInput.yield(chunk)
        var iterator = acks.makeAsyncIterator()
        guard await iterator.next() != nil else { throw CancellationError() }
    }
}

/// The router every route registers on (`Router` alone would also name the core's confidence router).
package typealias HTTPRouter = Hummingbird.Router<BasicRequestContext>
