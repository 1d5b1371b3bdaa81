import Foundation
import Mustache

/// The card templates in `templates/cards/<platform>/<kind>.mustache`, loaded once at start.
///
/// Templates that produce JSON start with `{{% CONTENT_TYPE: JSON}}`: every `{{value}}` is then
/// escaped as a JSON string body, so no text can break out of the JSON. Platform markup escaping
/// (mrkdwn, HTML) happens before, in the platform's renderer.
package struct CardTemplates: Sendable {
    package struct LoadError: Error, CustomStringConvertible {
        package var description: String
    }

    package struct RenderError: Error, CustomStringConvertible {
        package var description: String
    }

    private let library: MustacheLibrary
    package let names: Set<String>

    /// Registers the JSON content type (idempotent; must happen before a template is parsed).
    package static func registerContentTypes() {
        MustacheContentTypes.register(JSONStringContentType(), named: "JSON")
    }

    /// Loads every `*.mustache` under `directory` (e.g. `templates/cards`), named `slack/approval_request`.
    package static func load(directory: String) throws -> CardTemplates {
        registerContentTypes()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LoadError(description: "card templates not found: \(directory) is not a directory (set HANDOFF_CARD_TEMPLATES to the templates/cards folder)")
        }
        var library = MustacheLibrary()
        var names: Set<String> = []
        let base = URL(fileURLWithPath: directory).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else {
            throw LoadError(description: "cannot list card templates in \(directory)")
        }
        for case let url as URL in walker where url.pathExtension == "mustache" {
            let relative = url.standardizedFileURL.path.dropFirst(base.path.count).drop(while: { $0 == "/" })
            let name = String(relative.dropLast(".mustache".count))
            let text: String
            do {
                text = try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw LoadError(description: "cannot read card template \(url.path): \(error.localizedDescription)")
            }
            do {
                try library.register(text, named: name)
            } catch {
                throw LoadError(description: "card template \(url.path) does not parse: \(error)")
            }
            names.insert(name)
        }
        return CardTemplates(library: library, names: names)
    }

    /// The card templates directory from `HANDOFF_CARD_TEMPLATES`, else `./templates/cards`, else the one
    /// next to the package sources (for `swift run` from elsewhere and for tests).
    package static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let configured = environment["HANDOFF_CARD_TEMPLATES"], !configured.isEmpty { return configured }
        let local = FileManager.default.currentDirectoryPath + "/templates/cards"
        if FileManager.default.fileExists(atPath: local) { return local }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent("templates/cards").path
    }

    /// Renders a template; throws when it is missing.
    package func render(_ context: [String: Any], template name: String) throws -> String {
        guard let out = library.render(context, withTemplate: name) else {
            throw RenderError(description: "no card template named \(name) (looked for templates/cards/\(name).mustache)")
        }
        return out
    }
}

/// Escapes interpolated text as the inside of a JSON string literal.
struct JSONStringContentType: MustacheContentType {
    func escapeText(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
