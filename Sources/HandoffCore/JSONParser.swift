import Foundation

/// Reading JSON into ``JSONValue`` in linear time.
///
/// `JSONValue`'s `Decodable` conformance has to guess each value's type by trying to decode it as
/// each type in turn, and with `JSONDecoder` every failed try costs time proportional to the depth of
/// the value (the decoder builds the coding path for the error it throws). A document of a few hundred
/// kilobytes with nesting a few dozen levels deep then takes seconds to decode — a hang any client
/// with a key (or a chat payload) could cause at will (issue 8, found by the fuzz tests).
///
/// So JSON is read here by a small strict RFC 8259 parser that gives exactly the values the
/// `Decodable` path gives (the first of duplicate keys wins, as with `JSONDecoder`; numbers other
/// than plain integers are converted by `JSONDecoder` itself, so `1.0`, `1e2` and big numbers keep
/// their meaning and every stored hash stays valid), and `JSONDecoder` decoding a type with
/// `JSONValue` fields finds each field's value already parsed (``decode(_:from:decoder:)``).
extension JSONValue {
    /// Parses a JSON document; nil when it is not strict JSON (or is nested more than
    /// ``FastJSONParser/maxDepth`` levels). Callers that need `JSONDecoder`'s exact acceptance fall back to
    /// it on nil (``decodeDocument(_:)``).
    package static func parseStrict(_ bytes: some Collection<UInt8>) -> JSONValue? {
        var parser = FastJSONParser(Array(bytes))
        return parser.document()
    }

    /// Decodes a JSON document as `JSONValue`: the linear parser, and `JSONDecoder` only for what it
    /// refuses (so the accepted documents and the error are `JSONDecoder`'s).
    package static func decodeDocument(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        let array = Array(bytes)
        if let value = parseStrict(array) { return value }
        return try JSONDecoder().decode(JSONValue.self, from: Data(array))
    }

    /// The key under which ``decode(_:from:decoder:)`` hands the parsed document to `JSONValue` fields.
    package static let parsedDocumentKey = CodingUserInfoKey(rawValue: "handoff.json.parsed-document")!

    /// Decodes `type` with `decoder`, giving every `JSONValue` inside it its value from one linear parse
    /// of the same bytes instead of type-guessing through the decoder.
    package static func decode<T: Decodable>(_ type: T.Type, from data: Data, decoder: JSONDecoder) throws -> T {
        guard let root = parseStrict(data) else { return try decoder.decode(type, from: data) }
        let snakeCase: Bool
        if case .convertFromSnakeCase = decoder.keyDecodingStrategy { snakeCase = true } else { snakeCase = false }
        decoder.userInfo[parsedDocumentKey] = ParsedDocument(root: root, snakeCaseKeys: snakeCase)
        defer { decoder.userInfo[parsedDocumentKey] = nil }
        return try decoder.decode(type, from: data)
    }
}

/// A document parsed once, for the `JSONValue`s decoded out of it.
package final class ParsedDocument: Sendable {
    let root: JSONValue
    /// Keys were converted from snake_case by the decoder: `callbackUrl` in the coding path is
    /// `callback_url` in the document.
    let snakeCaseKeys: Bool

    init(root: JSONValue, snakeCaseKeys: Bool) {
        self.root = root
        self.snakeCaseKeys = snakeCaseKeys
    }

    /// The value at a decoder's coding path; nil when the path does not lead to exactly one value
    /// (the caller then decodes as before).
    func value(at path: [any CodingKey]) -> JSONValue? {
        var current = root
        for key in path {
            switch current {
            case .array(let items):
                guard let index = key.intValue, items.indices.contains(index) else { return nil }
                current = items[index]
            case .object(let members):
                if !snakeCaseKeys {
                    guard let value = members[key.stringValue] else { return nil }
                    current = value
                } else {
                    // The one member whose converted name is the key (several would be ambiguous).
                    let matches = members.keys.filter { Self.convertFromSnakeCase($0) == key.stringValue }
                    guard matches.count == 1, let value = members[matches[0]] else { return nil }
                    current = value
                }
            default:
                return nil
            }
        }
        return current
    }

    /// `JSONDecoder.KeyDecodingStrategy.convertFromSnakeCase`: `callback_url` → `callbackUrl`;
    /// leading and trailing underscores are kept; a key without underscores is left as it is.
    static func convertFromSnakeCase(_ key: String) -> String {
        guard let first = key.firstIndex(where: { $0 != "_" }) else { return key }
        var last = key.index(before: key.endIndex)
        while last > first && key[last] == "_" { key.formIndex(before: &last) }
        let body = key[first...last]
        let components = body.split(separator: "_")
        guard components.count > 1 else { return key }
        let joined = ([components[0].lowercased()] + components.dropFirst().map { $0.capitalized }).joined()
        return String(key[..<first]) + joined + String(key[key.index(after: last)...])
    }
}

/// A strict RFC 8259 JSON parser producing ``JSONValue`` in one pass.
package struct FastJSONParser {
    /// Deeper documents are refused (`JSONDecoder` refuses them too).
    package static let maxDepth = 512

    private let bytes: [UInt8]
    private var index = 0
    private var scalarDecoder: JSONDecoder?

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The whole input as one value, or nil.
    package mutating func document() -> JSONValue? {
        // JSONDecoder skips a UTF-8 byte order mark.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        skipWhitespace()
        guard let value = value(depth: 0) else { return nil }
        skipWhitespace()
        return index == bytes.count ? value : nil
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    private mutating func value(depth: Int) -> JSONValue? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"): return object(depth: depth + 1)
        case UInt8(ascii: "["): return array(depth: depth + 1)
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return nil }
        for k in 0..<count where bytes[index + k] != word.utf8Start[k] { return nil }
        index += count
        return value
    }

    private mutating func object(depth: Int) -> JSONValue? {
        guard depth <= Self.maxDepth else { return nil }
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipWhitespace()
            guard let member = value(depth: depth) else { return nil }
            // The first of duplicate keys wins, as with JSONDecoder.
            if members[key] == nil { members[key] = member }
            skipWhitespace()
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { return nil }
            index += 1
            return .object(members)
        }
    }

    private mutating func array(depth: Int) -> JSONValue? {
        guard depth <= Self.maxDepth else { return nil }
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            guard let item = value(depth: depth) else { return nil }
            items.append(item)
            skipWhitespace()
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { return nil }
            index += 1
            return .array(items)
        }
    }

    /// A string token: escapes decoded, UTF-8 validated; nil for control characters, bad escapes,
    /// lone surrogates or invalid UTF-8 (all of which JSONDecoder refuses too).
    private mutating func string() -> String? {
        index += 1
        let start = index
        var plain = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                plain = false
                index += 2
                continue
            }
            index += 1
        }
        guard index < bytes.count else { return nil }
        let end = index
        index += 1
        if plain { return String(validating: bytes[start..<end], as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var i = start
        while i < end {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < end else { return nil }
            let escape = bytes[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4(at: i, end: end) else { return nil }
                i += 4
                var scalarValue = UInt32(unit)
                if (0xD800...0xDBFF).contains(unit) {
                    // A high surrogate must be followed by an escaped low one.
                    guard i + 6 <= end, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                          let low = hex4(at: i + 2, end: end), (0xDC00...0xDFFF).contains(low)
                    else { return nil }
                    i += 6
                    scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    return nil
                }
                guard let scalar = Unicode.Scalar(scalarValue) else { return nil }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                return nil
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private func hex4(at i: Int, end: Int) -> UInt16? {
        guard i + 4 <= end else { return nil }
        var value: UInt16 = 0
        for k in 0..<4 {
            let c = bytes[i + k]
            let digit: UInt16
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt16(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt16(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt16(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }

    /// A number token (RFC 8259 grammar). Plain integers that fit an `Int64` are read here; anything
    /// else (fractions, exponents, `-0`, huge values) is converted by `JSONDecoder`, so it means what
    /// it always meant.
    private mutating func number() -> JSONValue? {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(bytes[index]) {
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        } else {
            return nil
        }
        var plain = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            let digits = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { return nil }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digits = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { return nil }
        }
        let token = bytes[start..<index]
        // "-0" is left to JSONDecoder too: only text that is unambiguously an Int64 is read here.
        if plain, token.count <= 18, !token.elementsEqual("-0".utf8),
           let integer = Int64(String(decoding: token, as: UTF8.self))
        {
            return .int(integer)
        }
        if scalarDecoder == nil { scalarDecoder = JSONDecoder() }
        return try? scalarDecoder!.decode(JSONValue.self, from: Data(token))
    }
}
