import AsyncHTTPClient
import Foundation
import HandoffCore
import Logging
import NIOCore

/// An HTTP answer from a provider, body read in full (bounded).
package struct ProviderHTTPResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]

    package func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// POSTs JSON to a provider with the retry policy: one place for timeouts, connection failures,
/// `retry-after` and backoff, shared by every provider.
package struct ProviderTransport: Sendable {
    package let http: HTTPClient
    package let timeout: Duration
    package let retry: RetryPolicy
    package let maxResponseBytes: Int
    package let logger: Logger

    package init(http: HTTPClient, timeout: Duration, retry: RetryPolicy, maxResponseBytes: Int = 8 << 20, logger: Logger) {
        self.http = http
        self.timeout = timeout
        self.retry = retry
        self.maxResponseBytes = maxResponseBytes
        self.logger = logger
    }

    /// One attempt's failure: either an answer to classify, or a transport error.
    package enum Failure: Sendable {
        case response(ProviderHTTPResponse)
        case transport(ProviderError)
    }

    /// Sends the body, retrying on failures `classify` calls retryable. `classify` turns a non-2xx
    /// answer into the provider's error (its message, whether to retry).
    package func post(
        url: String, headers: [(String, String)], body: [UInt8], provider: String,
        classify: (ProviderHTTPResponse) -> ProviderError
    ) async throws(ProviderError) -> ProviderHTTPResponse {
        var attempt = 0
        while true {
            attempt += 1
            let failure: ProviderError
            var retryAfter: Duration?
            switch await send(url: url, headers: headers, body: body, provider: provider) {
            case .success(let response) where (200..<300).contains(response.status):
                return response
            case .success(let response):
                failure = classify(response)
                retryAfter = RetryPolicy.retryAfter(headers: response.headers)
            case .failure(let error):
                failure = error
            }
            var error = failure
            error.attempts = attempt
            guard error.isRetryable, attempt < retry.maxAttempts else { throw error }
            guard let wait = retry.delay(afterAttempt: attempt, retryAfter: retryAfter) else {
                throw ProviderError(error.code, "\(error.message); it asked to retry after \(Int(retryAfter?.seconds ?? 0)) s, longer than the \(Int(retry.maxRetryAfter.seconds)) s Handoff waits",
                                    status: error.status, attempts: attempt)
            }
            logger.warning("\(provider) call failed; retrying", metadata: [
                "attempt": "\(attempt)", "status": "\(error.status.map(String.init) ?? "-")", "error": "\(error.message)",
                "wait_ms": "\(Int(wait.seconds * 1000))",
            ])
            do {
                try await retry.sleep(wait)
            } catch {
                throw ProviderError(.timeout, "\(provider): cancelled while waiting to retry (\(failure.message))", status: failure.status,
                                    attempts: attempt)
            }
        }
    }

    private func send(url: String, headers: [(String, String)], body: [UInt8], provider: String) async -> Result<ProviderHTTPResponse, ProviderError> {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        let host = URL(string: url).map { "\($0.scheme ?? "http")://\($0.host ?? "?")\($0.port.map { ":\($0)" } ?? "")" } ?? url
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            let buffer = try await response.body.collect(upTo: maxResponseBytes)
            return .success(ProviderHTTPResponse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                                                 body: Array(buffer: buffer)))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .failure(ProviderError(.timeout, "\(provider) did not answer within \(Int(timeout.seconds)) s (\(host))"))
        } catch let error as HTTPClientError where error == .connectTimeout {
            return .failure(ProviderError(.connectionFailed, "could not connect to \(provider) at \(host): connection timed out"))
        } catch let error as NIOTooManyBytesError {
            return .failure(ProviderError(.malformedResponse, "\(provider) sent more than \(error.maxBytes ?? maxResponseBytes) bytes"))
        } catch {
            return .failure(ProviderError(.connectionFailed, "could not reach \(provider) at \(host): \(Self.describe(error))"))
        }
    }

    /// A short, key-free description of a transport error ("connection refused").
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        if text.localizedCaseInsensitiveContains("remoteConnectionClosed") { return "the server closed the connection" }
        return String(text.prefix(200))
    }
}
