import Foundation
import HandoffChatKit
import HandoffCore
import HandoffStore
import HandoffWorkflow
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import NIOCore

/// Where the dashboard finds its templates and how its sessions behave.
package struct DashboardConfiguration: Sendable {
    /// The folder with the `*.mustache` pages (`HANDOFF_TEMPLATES`). Nil looks in `./templates/dashboard`,
    /// then in the source checkout the binary was built from.
    package var templatesDirectory: String?
    /// How long a sign-in lasts.
    package var sessionLifetime: Duration = .seconds(12 * 3600)
    /// Mark cookies `Secure` (set when the dashboard is served over HTTPS).
    package var secureCookies: Bool = false

    package init() {}
}

/// The web dashboard: server-rendered pages (swift-mustache, every untrusted text escaped with `{{ }}`)
/// for reviewers and admins who sign in with their API key.
struct Dashboard: Sendable {
    struct TemplatesNotFound: Error, CustomStringConvertible {
        var looked: [String]
        var description: String {
            "dashboard templates not found (looked in \(looked.joined(separator: ", "))); set HANDOFF_TEMPLATES to the templates/dashboard folder"
        }
    }

    let workflow: Workflow
    let kit: APIToolkit
    let library: MustacheLibrary
    let sessions: SessionCodec
    let configuration: DashboardConfiguration
    let logger: Logger

    static let sessionCookie = "handoff_session"
    static let loginCookie = "handoff_login"

    init(workflow: Workflow, kit: APIToolkit, configuration: DashboardConfiguration, logger: Logger) async throws {
        self.workflow = workflow
        self.kit = kit
        self.configuration = configuration
        self.logger = logger
        let directory = try Self.templatesDirectory(configured: configuration.templatesDirectory)
        self.library = try await MustacheLibrary(directory: directory)
        self.sessions = SessionCodec(secret: try await SessionCodec.loadSecret(store: workflow.store, now: workflow.clock.now()))
    }

    /// The first folder that has the templates.
    static func templatesDirectory(configured: String?) throws -> String {
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        // A configured folder is the only one tried, so a typo is reported instead of silently using another.
        let candidates = configured.map { [$0] } ?? ["templates/dashboard", sourceRoot.appendingPathComponent("templates/dashboard").path]
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/layout_head.mustache") {
            return candidate
        }
        throw TemplatesNotFound(looked: candidates)
    }

    // MARK: Requests

    /// A signed-in reviewer or admin.
    struct Viewer: Sendable {
        var principal: APIPrincipal
        var session: SessionCodec.Session
        var csrf: String
        var actor: Actor { principal.actor }
    }

    /// Why a page cannot be shown: sign in first, or an error page.
    enum PageFailure: Error {
        case signIn
    }

    /// The viewer behind the session cookie, or nil (expired, tampered, key revoked, wrong scope).
    func viewer(_ request: Request) async throws -> Viewer? {
        guard let cookie = request.cookies[Self.sessionCookie]?.value,
              let session = sessions.open(cookie, now: workflow.clock.now()),
              let key = try await workflow.store.apiKey(id: session.keyID), key.revokedAt == nil,
              key.scope == .reviewer || key.scope == .admin
        else { return nil }
        return Viewer(principal: APIPrincipal(keyID: key.id, name: key.name, scope: key.scope), session: session,
                      csrf: sessions.csrfToken(for: session))
    }

    /// Registers a page that needs a signed-in viewer; anonymous visitors go to the sign-in page.
    func page(_ router: HTTPRouter, _ path: RouterPath,
              _ handler: @escaping @Sendable (Request, BasicRequestContext, Viewer) async throws -> Response)
    {
        router.get(path) { request, context -> Response in
            guard let viewer = try await viewer(request) else { return signInRedirect(request) }
            do {
                return try await handler(request, context, viewer)
            } catch {
                return errorPage(error, viewer: viewer, context: context)
            }
        }
    }

    /// Registers a form target: a signed-in viewer and a valid CSRF token, or nothing happens.
    func action(_ router: HTTPRouter, _ path: RouterPath,
                _ handler: @escaping @Sendable (Request, BasicRequestContext, Viewer, [String: String]) async throws -> Response)
    {
        let limits = APILimits.fields("POST", "\(path)") ?? []
        router.post(path) { request, context -> Response in
            let form = try await formFields(request)
            guard let viewer = try await viewer(request) else { return signInRedirect(request) }
            if let violation = APILimits.violation(form: form, limits) {
                return render("error", ["title": "That did not work", "message": violation.message], viewer: viewer, status: violation.status)
            }
            guard sessions.csrfValid(form["csrf"], for: viewer.session) else {
                logger.warning("dashboard form refused: missing or wrong CSRF token", metadata: ["path": "\(request.uri.path)"])
                return render("error", [
                    "title": "Form expired", "message": "This form is missing its security token or it does not match your session. Reload the page and try again.",
                ], viewer: viewer, status: .forbidden)
            }
            do {
                return try await handler(request, context, viewer, form)
            } catch {
                return errorPage(error, viewer: viewer, context: context)
            }
        }
    }

    func formFields(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: kit.maxBodySize)
        return FormURLEncoding.parse(String(buffer: buffer))
    }

    /// To the sign-in page, coming back to this page afterwards (a form post comes back to the overview).
    func signInRedirect(_ request: Request) -> Response {
        let next = request.method == .get ? request.uri.description : "/"
        return redirect("/login?next=\(FormURLEncoding.encode(next))")
    }

    func redirect(_ location: String, status: HTTPResponse.Status = .seeOther) -> Response {
        var headers = Self.securityHeaders(nonce: nil)
        headers[.location] = location
        return Response(status: status, headers: headers)
    }

    /// A page for an error: workflow refusals keep their message and status; anything else is logged.
    func errorPage(_ error: any Error, viewer: Viewer?, context: BasicRequestContext) -> Response {
        let mapped = APIError.from(error, maxBodySize: kit.maxBodySize)
        if mapped.status == .internalServerError {
            context.logger.error("dashboard page failed", metadata: ["error": "\(error)"])
        }
        return render("error", ["title": mapped.status == .notFound ? "Not found" : "That did not work", "message": mapped.message],
                      viewer: viewer, status: mapped.status)
    }

    /// Headers every dashboard page carries: a strict content security policy (inline scripts only
    /// with this response's nonce), no framing, no caching, no referrer.
    static func securityHeaders(nonce: String?) -> HTTPFields {
        let script = nonce.map { "'nonce-\($0)'" } ?? "'none'"
        return [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; script-src \(script); form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .cacheControl: "no-store",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
    }

    /// Renders a template with the layout's common values (viewer, CSRF token, script nonce).
    func render(_ template: String, _ values: [String: Any], viewer: Viewer?, status: HTTPResponse.Status = .ok,
                extraHeaders: HTTPFields = [:]) -> Response
    {
        let nonce = APIKeys.randomToken(length: 22)
        var context = values.mapValues(Self.inert)
        context["nonce"] = nonce
        if let viewer {
            context["viewer"] = ["name": viewer.principal.name, "scope": viewer.principal.scope.rawValue, "identity": viewer.actor.id.rawValue]
            context["csrf"] = viewer.csrf
        }
        context["nav_\(template)"] = true
        let html = library.render(context, withTemplate: template) ?? "<!doctype html><title>Missing template</title><p>template \(template) is missing"
        var headers = Self.securityHeaders(nonce: nonce)
        for field in extraHeaders { headers.append(field) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Every text a page shows with its acting characters (controls, bidirectional overrides) made
    /// visible and inert (``Escaping/inert(_:)``); HTML escaping is the template's `{{ }}`.
    static func inert(_ value: Any) -> Any {
        switch value {
        case let text as String: Escaping.inert(text)
        case let object as [String: Any]: object.mapValues(inert)
        case let list as [Any]: list.map(inert)
        default: value
        }
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: configuration.secureCookies, httpOnly: true, sameSite: .strict)
    }

    func register(on router: HTTPRouter) {
        registerSignIn(router)
        registerPages(router)
    }

    // MARK: Sign-in

    func registerSignIn(_ router: HTTPRouter) {
        router.get("/login") { request, _ -> Response in
            if try await viewer(request) != nil { return redirect(safeNext(request.query("next"))) }
            return loginPage(next: request.query("next"), error: nil, status: .ok)
        }
        router.post("/login") { request, _ -> Response in
            let form = try await formFields(request)
            if let violation = APILimits.violation(form: form, APILimits.fields("POST", "/login") ?? []) {
                return loginPage(next: nil, error: violation.message, status: violation.status)
            }
            let next = form["next"]
            guard let expected = request.cookies[Self.loginCookie]?.value, let sent = form["csrf"], !sent.isEmpty,
                  constantTimeEqual(expected, sent)
            else {
                return loginPage(next: next, error: "The sign-in form expired or is missing its security token. Try again.", status: .forbidden)
            }
            let principal: APIPrincipal
            do {
                (principal, _) = try await kit.authenticator.authenticate(key: (form["key"] ?? "").trimmingCharacters(in: .whitespaces))
            } catch let error as APIError {
                return loginPage(next: next, error: error.message, status: .unauthorized)
            }
            guard principal.scope == .reviewer || principal.scope == .admin else {
                return loginPage(next: next, error: "The key '\(principal.name)' is an agent key; sign in with a reviewer or admin key.",
                                 status: .forbidden)
            }
            let lifetime = configuration.sessionLifetime.seconds
            let (value, _) = sessions.issue(keyID: principal.keyID, now: workflow.clock.now(), lifetime: lifetime)
            var response = redirect(safeNext(next))
            response.setCookie(cookie(Self.sessionCookie, value, maxAge: Int(lifetime)))
            response.setCookie(cookie(Self.loginCookie, "", maxAge: 0))
            logger.info("dashboard sign-in", metadata: ["key": "\(principal.name)"])
            return response
        }
        action(router, "/logout") { _, _, _, _ in
            var response = redirect("/login")
            response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0))
            return response
        }
    }

    /// Only local paths are followed after sign-in (no open redirect): a `/` not followed by another `/`,
    /// with no backslash and no control character anywhere. Browsers drop tabs and newlines inside a URL
    /// and read `\` as `/`, so `/\t/evil.com` and `/\evil.com` would otherwise reach `//evil.com`, a
    /// scheme-relative URL to another site; a control character could also split the `Location` header.
    func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.dropFirst().hasPrefix("/"), !next.hasPrefix("/login"),
              !next.unicodeScalars.contains(where: { $0 == "\\" || $0.properties.generalCategory == .control })
        else { return "/" }
        return next
    }

    func loginPage(next: String?, error: String?, status: HTTPResponse.Status) -> Response {
        let token = APIKeys.randomToken(length: 32)
        var values: [String: Any] = ["title": "Sign in", "login_csrf": token, "next": safeNext(next)]
        if let error { values["error"] = error }
        var response = render("login", values, viewer: nil, status: status)
        response.setCookie(cookie(Self.loginCookie, token, maxAge: 3600))
        return response
    }
}
