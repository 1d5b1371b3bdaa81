import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import HandoffWorkflow
import Testing
import Yams

/// manifests/openapi.yaml and the server's router list the same routes.
@Suite struct OpenAPISyncTests {
    /// `METHOD /path` for every operation in the document.
    static func documentedRoutes() throws -> (version: String, routes: Set<String>) {
        let url = BuiltProducts.packageRoot.appendingPathComponent("manifests/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        guard let document = try Yams.load(yaml: text) as? [String: Any], let paths = document["paths"] as? [String: Any] else {
            throw TestFailure("manifests/openapi.yaml has no paths")
        }
        var routes: Set<String> = []
        for (path, item) in paths {
            guard let operations = item as? [String: Any] else { continue }
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] where operations[method] != nil {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return ((document["openapi"] as? String) ?? "", routes)
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        // The route list comes from the router `serve` actually runs, with Slack in HTTP mode so the
        // Events API routes (signed by Slack, not by a key) are mounted and checked too.
        let fake = try await FakeSlack.start()
        let registered: Set<String>
        do {
            registered = try await withTestApp(configure: { c in
                c.slack = SlackSettings(botToken: fake.configuration.botToken, signingSecret: fake.configuration.signingSecret,
                                        apiURL: fake.apiURL)
            }) { app in Set(try #require(app.app.httpServer, "the HTTP server runs").routes) }
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
        #expect(registered.isSuperset(of: ["POST /slack/events", "POST /slack/interactivity", "POST /slack/commands"]),
                "Slack's HTTP routes are mounted: \(registered.sorted())")

        let (version, documented) = try Self.documentedRoutes()
        #expect(version.hasPrefix("3.1"), "OpenAPI 3.1, not \(version)")
        #expect(registered.count > 50, "the router lists its routes: \(registered.sorted())")
        let undocumented = registered.subtracting(documented).sorted()
        let phantom = documented.subtracting(registered).sorted()
        #expect(undocumented.isEmpty, "routes missing from manifests/openapi.yaml: \(undocumented)")
        #expect(phantom.isEmpty, "manifests/openapi.yaml lists routes the server does not have: \(phantom)")
    }

    @Test func theCheckNoticesADifference() throws {
        // Guard against a check that cannot fail: removing one documented route must be noticed.
        let (_, documented) = try Self.documentedRoutes()
        var edited = documented
        edited.remove("POST /v1/approvals")
        #expect(documented.subtracting(edited) == ["POST /v1/approvals"])
        #expect(documented.contains("GET /v1/approvals/{id}"))
        #expect(documented.contains("GET /"))
    }
}
