import Foundation
import HandoffCore
import HandoffTesting
import Testing

/// The linear JSON reader (JSONParser.swift) must give exactly what decoding `JSONValue` through
/// `JSONDecoder` gives — stored argument hashes depend on it — and accept nothing `JSONDecoder`
/// refuses. Checked on real-looking documents, edge cases and seeded random and mutated inputs.
/// Bounded in time: a decoder that hangs on some input fails here, not at the CI timeout.
@Suite(.timeLimit(.minutes(3))) struct JSONParserTests {
    static func viaDecoder(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    static let edgeCases: [String] = [
        #"{"a":1,"a":2}"#, "\u{FEFF}{\"a\":1}", " [1, 2.0, 1e2, 1E+2, -0, -0.0, 0.1, 1.5e-7, 9223372036854775807, 9223372036854775808, -9223372036854775809] ",
        "123456789012345678901234567890", "1e400", "-1e400", "1.7976931348623157e308", "5e-324", "0.30000000000000004",
        #""\u00e9\ud83d\ude00\u0000\n\t\"\\\/""#, #""\ud800""#, #""\udc00x""#, #""\ud800\u0041""#, "\"\u{1}\"", "[1,]", "{\"a\":1,}", "01", "-", "1.", ".5",
        "1e", "+1", "tru", "nul", "[", "]", "{}", "[]", "null", "true", "false", "\"\"", "{\"\":{\"\":[]}}", "[1 2]", "{\"a\" 1}", "{1:2}",
        "\"a\u{7F}b\"", "\"\u{E9}\"", "\u{A0}1", "1 // x", "[\"a\"]x", "",
    ]

    @Test("edge cases: the same value as JSONDecoder, or refused by both")
    func edgeCasesMatchJSONDecoder() throws {
        for text in Self.edgeCases {
            let bytes = Array(text.utf8)
            let expected = Self.viaDecoder(bytes)
            let fast = JSONValue.parseStrict(bytes)
            if let fast {
                #expect(fast == expected, "\(Fuzz.show(text)): fast \(fast), JSONDecoder \(String(describing: expected))")
            }
            #expect((try? JSONValue.decodeDocument(bytes)) == expected, "\(Fuzz.show(text))")
        }
        // Invalid UTF-8 inside a string is refused, as JSONDecoder refuses it.
        #expect(JSONValue.parseStrict([0x22, 0xFF, 0x22]) == nil)
        #expect(JSONValue.parseStrict([0x22, 0xC0, 0x80, 0x22]) == nil)
    }

    /// The deepest bracket nesting, ignoring strings (good enough to choose inputs).
    static func roughDepth(_ bytes: [UInt8]) -> Int {
        var depth = 0
        var deepest = 0
        for byte in bytes {
            if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") { depth += 1; deepest = max(deepest, depth) }
            if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") { depth -= 1 }
        }
        return deepest
    }

    @Test("random and mutated documents: the fast reader agrees with JSONDecoder on every one it accepts")
    func fuzzAgreesWithJSONDecoder() {
        Fuzz.announce("json.equivalence")
        var m = FuzzMutator(stream: "json.equivalence")
        let samples: [JSONValue] = [
            .object(["action": .string("deploy"), "arguments": .object(["v": .int(3), "ratio": .double(0.25), "tags": .array([.string("a"), .null, .bool(true)])]),
                     "state": .object(["nested": .object(["deep": .array([.int(-1), .decimal(Decimal(string: "12345678901234567890123")!)])])])]),
            .array([.string("é😀\u{0}"), .int(Int64.max), .double(1e300)]),
        ]
        var disagreements = 0
        var accepted = 0
        for i in 0..<3000 {
            let bytes = m.input(from: samples)
            // The reference (type-guessing through JSONDecoder) is what is slow on deep documents.
            guard Self.roughDepth(bytes) <= 24 else { continue }
            let expected = Self.viaDecoder(bytes)
            guard let fast = JSONValue.parseStrict(bytes) else { continue }
            accepted += 1
            if fast != expected {
                disagreements += 1
                Issue.record("input #\(i) (seed \(Fuzz.seedText)): fast \(Fuzz.show("\(fast)", limit: 200)), JSONDecoder \(Fuzz.show("\(String(describing: expected))", limit: 200))\n  \(Fuzz.show(bytes))")
            }
        }
        #expect(accepted > 500)
        #expect(disagreements == 0)
    }

    struct Body: Decodable, Equatable {
        var action: String
        var callbackUrl: String?
        var arguments: JSONValue?
        var items: [JSONValue]?
        var choice: Choice?
        enum Choice: Decodable, Equatable { case one(JSONValue), two(label: String, value: JSONValue) }
    }

    @Test("types with JSONValue fields decode to the same values through the parsed document, snake_case keys included")
    func decodingThroughTheParsedDocument() throws {
        var m = FuzzMutator(stream: "json.fields")
        for _ in 0..<300 {
            var arguments = m.randomJSON(depth: 5)
            if m.chance(0.5) { arguments = m.mutate(arguments) }
            let body = JSONValue.object([
                "action": .string("deploy"), "callback_url": .string("http://x"), "arguments": arguments,
                "items": .array([m.randomJSON(depth: 3), arguments]),
                "choice": m.chance(0.5) ? .object(["one": .object(["_0": arguments])]) : .object(["two": .object(["label": .string("l"), "value": arguments])]),
            ])
            let data = Data(body.canonicalText.utf8)
            guard Self.roughDepth(Array(data)) <= 24 else { continue }  // the reference decode is the slow one
            for snake in [true, false] {
                func decoder() -> JSONDecoder {
                    let d = JSONDecoder()
                    if snake { d.keyDecodingStrategy = .convertFromSnakeCase }
                    return d
                }
                let plain = try? decoder().decode(Body.self, from: data)
                let fast = try? JSONValue.decode(Body.self, from: data, decoder: decoder())
                #expect(plain == fast, "\(Fuzz.show(body.canonicalText, limit: 300))")
            }
        }
    }

    @Test("deeply nested and wide documents are read in one pass (they took seconds through type-guessing)")
    func deepDocumentsAreLinear() throws {
        var deep = "1"
        for i in 0..<64 { deep = i % 2 == 0 ? "[\(deep)]" : "{\"a\":\(deep)}" }
        let wide = "[" + Array(repeating: deep, count: 3000).joined(separator: ",") + "]"
        let value = try #require(JSONValue.parseStrict(Array(wide.utf8)))
        guard case .array(let items) = value else { Issue.record("not an array"); return }
        #expect(items.count == 3000)
        // Through a decoder too, as API bodies and stored rows are read.
        struct Wrapper: Decodable { var arguments: JSONValue }
        let wrapped = try JSONValue.decode(Wrapper.self, from: Data("{\"arguments\":\(wide)}".utf8), decoder: JSONDecoder())
        #expect(wrapped.arguments == value)
        var tooDeep = "1"
        for _ in 0..<(FastJSONParser.maxDepth + 1) { tooDeep = "[\(tooDeep)]" }
        #expect(JSONValue.parseStrict(Array(tooDeep.utf8)) == nil)
    }
}
