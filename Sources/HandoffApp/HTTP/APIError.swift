import Foundation
import HandoffCore
import HandoffStore
import HandoffWorkflow
import Hummingbird
import NIOCore

/// The one error shape every HTTP response uses: `{"error":{"code","message","field"?}}`.
///
/// A struct with a private code so new cases can be added without breaking callers (the house style
/// for boundary errors). Workflow refusals map onto it with ``init(_:)``.
package struct APIError: Error, Sendable, CustomStringConvertible {
    private enum Code: String, Sendable {
        case invalid
        case unauthorized
        case forbidden
        case notFound = "not_found"
        case notAllowed = "not_allowed"
        case wrongState = "wrong_state"
        case duplicate
        case conflict
        case tooLarge = "too_large"
        case rateLimited = "rate_limited"
        case unavailable
        case `internal`
    }

    private let code: Code
    /// The HTTP status the error is answered with.
    package let status: HTTPResponse.Status
    /// A sentence for the caller that says what was wrong and what to do.
    package let message: String
    /// The input field the problem is in, when known (snake_case, as on the wire).
    package let field: String?
    /// Seconds to wait before retrying (429, 503).
    package let retryAfter: Int?

    private init(_ code: Code, _ status: HTTPResponse.Status, _ message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    /// The wire code (`invalid`, `not_found`, …).
    package var codeName: String { code.rawValue }
    package var description: String { "\(status.code) \(code.rawValue): \(message)" }

    package static func invalid(_ field: String?, _ message: String) -> APIError {
        APIError(.invalid, .badRequest, message, field: field)
    }
    package static func unauthorized(_ message: String) -> APIError { APIError(.unauthorized, .unauthorized, message) }
    package static func forbidden(_ message: String) -> APIError { APIError(.forbidden, .forbidden, message) }
    package static func notFound(_ message: String) -> APIError { APIError(.notFound, .notFound, message) }
    package static func tooLarge(limit: Int) -> APIError {
        APIError(.tooLarge, .contentTooLarge, "the request body is larger than \(limit) bytes; send less")
    }
    package static func rateLimited(retryAfter seconds: Int) -> APIError {
        APIError(.rateLimited, .tooManyRequests, "too many requests for this key; retry in \(seconds)s", retryAfter: seconds)
    }
    package static func unavailable(_ message: String, retryAfter: Int? = nil) -> APIError {
        APIError(.unavailable, .serviceUnavailable, message, retryAfter: retryAfter)
    }
    package static func conflict(_ message: String) -> APIError { APIError(.conflict, .conflict, message) }
    package static let `internal` = APIError(.internal, .internalServerError, "something went wrong on our side; the error is logged")

    /// A workflow refusal as the API answers it: invalid → 400 (naming the field), not_found → 404,
    /// wrong_state and duplicate → 409, not_allowed → 403, conflict → 409.
    package init(_ error: WorkflowError) {
        switch error.code {
        case .invalid: self.init(.invalid, .badRequest, error.message, field: error.field.map(Self.wireName))
        case .notFound: self.init(.notFound, .notFound, error.message)
        case .wrongState: self.init(.wrongState, .conflict, error.message)
        case .duplicate: self.init(.duplicate, .conflict, error.message)
        case .notAllowed: self.init(.notAllowed, .forbidden, error.message)
        case .conflict: self.init(.conflict, .conflict, error.message)
        }
    }

    /// A body that could not be decoded, naming the field when the decoder knows it.
    package init(_ error: DecodingError) {
        func path(_ context: DecodingError.Context, extra: (any CodingKey)? = nil) -> String? {
            let keys = context.codingPath + (extra.map { [$0] } ?? [])
            guard !keys.isEmpty else { return nil }
            return keys.map { $0.intValue.map { "[\($0)]" } ?? Self.wireName($0.stringValue) }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context, extra: key) ?? Self.wireName(key.stringValue)
            self.init(.invalid, .badRequest, "\(field) is required", field: field)
        case .typeMismatch(let type, let context):
            let field = path(context)
            self.init(.invalid, .badRequest, "\(field ?? "the body") must be \(Self.typeName(type))", field: field)
        case .valueNotFound(let type, let context):
            let field = path(context)
            self.init(.invalid, .badRequest, "\(field ?? "the body") must be \(Self.typeName(type)), not null", field: field)
        case .dataCorrupted(let context):
            if let field = path(context) {
                self.init(.invalid, .badRequest, "\(field): \(context.debugDescription)", field: field)
            } else {
                self.init(.invalid, .badRequest, "the body is not valid JSON")
            }
        @unknown default:
            self.init(.invalid, .badRequest, "the body could not be read")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : (String(describing: type).hasPrefix("Dictionary") ? "an object" : "a valid value")
        }
    }

    /// `callbackUrl` → `callback_url`: fields are named as the caller wrote them. Header names
    /// (`Idempotency-Key`) and names already in snake_case stay as they are.
    package static func wireName(_ name: String) -> String {
        guard !name.contains("-"), name.first?.isLowercase ?? false else { return name }
        var out = ""
        for ch in name {
            if ch.isUppercase {
                if !out.isEmpty { out.append("_") }
                out.append(contentsOf: ch.lowercased())
            } else {
                out.append(ch)
            }
        }
        return out
    }

    /// The JSON body.
    package var body: ByteBuffer {
        struct Inner: Encodable {
            var code: String
            var message: String
            var field: String?
        }
        struct Outer: Encodable { var error: Inner }
        let data = (try? WireJSON.encoder().encode(Outer(error: Inner(code: code.rawValue, message: message, field: field))))
            ?? Data(#"{"error":{"code":"internal","message":"error"}}"#.utf8)
        return ByteBuffer(bytes: data)
    }

    package var response: Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"handoff\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}

extension APIError: HTTPResponseError {
    package var headers: HTTPFields { response.headers }
    package func response(from request: Request, context: some RequestContext) throws -> Response { response }
}

/// Turns every error that escapes a handler into the one JSON error shape: workflow refusals, decoding
/// failures, oversize bodies, unknown routes; anything unexpected is logged and answered 500 without detail.
package struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodySize: Int

    package init(maxBodySize: Int) { self.maxBodySize = maxBodySize }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
                return APIError.tooLarge(limit: maxBodySize).response
            }
            return try await next(request, context)
        } catch {
            let mapped = APIError.from(error, maxBodySize: maxBodySize)
            if mapped.status == .internalServerError {
                context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            }
            return mapped.response
        }
    }
}

extension APIError {
    /// Maps any error to the API error a caller sees.
    package static func from(_ error: any Error, maxBodySize: Int) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as WorkflowError: return APIError(e)
        case let e as DecodingError: return APIError(e)
        case is NIOTooManyBytesError: return .tooLarge(limit: maxBodySize)
        case let e as HTTPError:
            switch e.status {
            case .notFound: return .notFound("no such route; see manifests/openapi.yaml for the API")
            case .contentTooLarge: return .tooLarge(limit: maxBodySize)
            case .badRequest: return .invalid(nil, e.body ?? "bad request")
            case .unauthorized: return .unauthorized(e.body ?? "authentication required")
            case .forbidden: return .forbidden(e.body ?? "forbidden")
            default: return .internal
            }
        case let e as StoreError:
            switch e {
            case .unavailable(let what): return .unavailable("the database is unavailable (\(what)); try again", retryAfter: 1)
            case .conflict, .uniqueViolation, .duplicate: return .conflict("\(e); try again")
            case .corrupt: return .internal
            }
        case _ where StoreError.isTransient(error):
            // Another process holds the database's write lock past the busy timeout: nothing was written.
            return .unavailable("the database is busy; try again", retryAfter: 1)
        default: return .internal
        }
    }
}
