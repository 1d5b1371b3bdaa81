import Foundation

/// `application/x-www-form-urlencoded` text (HTML forms, Slack's interactivity and slash-command
/// bodies) and query-string values: one parser and one encoder for every module that reads or writes them.
package enum FormURLEncoding {
    /// `a=1&b=x%20y+z` → `["a": "1", "b": "x y z"]`: `+` is a space, percent escapes are decoded, a
    /// name without `=` has the empty value, and a pair whose name is not valid percent-encoding is
    /// skipped. When a name repeats, the first value wins (a value appended later cannot override one
    /// the page put first, such as a CSRF token).
    package static func parse(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            let value = parts.count > 1 ? (decode(parts[1]) ?? "") : ""
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    /// One name or value: `+` → space, then percent-decoding; nil when the escapes are malformed.
    package static func decode(_ part: Substring) -> String? {
        part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// Percent-encodes a value for a query string or form body: everything but the unreserved
    /// characters (`A–Z a–z 0–9 - . _ ~`), so `&`, `#`, `+`, `=`, `/`, spaces and non-ASCII are escaped.
    package static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
