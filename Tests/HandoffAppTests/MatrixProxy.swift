import AsyncHTTPClient
import Foundation
import HandoffTesting
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A loopback proxy in front of the test Synapse that forwards every request and can lose a reply:
/// the request reaches the homeserver (which acts on it) but the connection breaks before the
/// response is back, as on a flaky network (edge case 65).
final class MatrixFaultProxy: Sendable {
    let url: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    private let http: HTTPClient
    private let faults: Faults

    final class Faults: Sendable {
        /// Path fragments whose next reply is lost (once each).
        let dropNext = Mutex<[String]>([])
        /// Requests forwarded, as `METHOD path`.
        let seen = Mutex<[String]>([])
        /// Replies lost so far.
        let dropped = Mutex<[String]>([])
    }

    private init(url: String, group: ServiceGroup, task: Task<Void, any Error>, http: HTTPClient, faults: Faults) {
        self.url = url
        self.group = group
        self.task = task
        self.http = http
        self.faults = faults
    }

    /// Loses the reply of the next request whose path contains `fragment`.
    func dropNextReply(to fragment: String) { faults.dropNext.withLock { $0.append(fragment) } }

    var seen: [String] { faults.seen.withLock { $0 } }
    var dropped: [String] { faults.dropped.withLock { $0 } }

    static func start(upstream: String) async throws -> MatrixFaultProxy {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let faults = Faults()
        let router = Router()
        for method in [HTTPRequest.Method.get, .put, .post, .delete] {
            router.on("**", method: method) { request, _ -> Response in
                let target = request.uri.string
                var forward = HTTPClientRequest(url: upstream + target)
                forward.method = .RAW(value: method.rawValue)
                for name in [HTTPField.Name.authorization, .contentType] {
                    if let value = request.headers[name] { forward.headers.add(name: name.rawName, value: value) }
                }
                let body = try await request.body.collect(upTo: 16 << 20)
                if body.readableBytes > 0 { forward.body = .bytes(body) }
                faults.seen.withLock { $0.append("\(method.rawValue) \(request.uri.path)") }
                let reply = try await http.execute(forward, timeout: .seconds(120))
                let bytes = try await reply.body.collect(upTo: 32 << 20)
                let drop = faults.dropNext.withLock { list -> Bool in
                    guard let index = list.firstIndex(where: { target.contains($0) }) else { return false }
                    list.remove(at: index)
                    return true
                }
                if drop {
                    faults.dropped.withLock { $0.append("\(method.rawValue) \(request.uri.path)") }
                    // Promise a body, send part of it, then break the connection.
                    return Response(status: .ok, headers: [.contentType: "application/json"],
                                    body: ResponseBody(contentLength: bytes.readableBytes + 100) { writer in
                                        try await writer.write(ByteBuffer(string: "{\"event_"))
                                        throw CancellationError()
                                    })
                }
                var headers = HTTPFields()
                headers[.contentType] = reply.headers.first(name: "Content-Type") ?? "application/json"
                if let retry = reply.headers.first(name: "Retry-After") { headers[HTTPField.Name("Retry-After")!] = retry }
                return Response(status: HTTPResponse.Status(code: Int(reply.status.code)), headers: headers, body: .init(byteBuffer: bytes))
            }
        }
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "matrix-proxy")
        logger.logLevel = .critical
        let app = Application(router: router, server: .http1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in ports { port = p; break }
        return MatrixFaultProxy(url: "http://127.0.0.1:\(port)", group: group, task: task, http: http, faults: faults)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? await http.shutdown()
    }
}
