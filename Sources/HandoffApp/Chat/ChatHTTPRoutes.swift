import Foundation
import HandoffSlack
import HTTPTypes
import Hummingbird
import NIOCore

extension ChatRuntime {
    /// Mounts the Slack Events API handlers (HTTP mode) on a Hummingbird router:
    /// `POST /slack/events` (events, url_verification, slash commands), `POST /slack/interactivity`
    /// (buttons) and `POST /slack/commands` (slash commands, if configured to a separate URL).
    /// Does nothing in Socket Mode. The raw body is read before anything parses it, for the signature,
    /// up to the server's body limit (a longer one is refused with 413, like every other route's).
    package func mountSlackRoutes<Context: RequestContext>(on router: Router<Context>, maxBodySize: Int = 1 << 20) {
        guard let endpoint = slackEvents else { return }
        for path in ["/slack/events", "/slack/interactivity", "/slack/commands"] {
            router.post(RouterPath(path)) { request, _ -> Response in
                let body = try await request.body.collect(upTo: maxBodySize)
                return Self.response(await endpoint.handle(headers: request.headers, body: Array(buffer: body)))
            }
        }
    }

    /// A framework-neutral answer as a Hummingbird response.
    package static func response(_ r: SlackHTTPResponse) -> Response {
        Response(status: HTTPResponse.Status(code: r.status), headers: [.contentType: r.contentType],
                 body: .init(byteBuffer: ByteBuffer(string: r.body)))
    }
}
