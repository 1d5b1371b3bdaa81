import Foundation
import HandoffCore
import Testing

/// ``JSONValueCoder`` must read what Foundation's coders wrote (every stored row before it) and write
/// what they read, for every shape `Codable` produces.
@Suite("JSONValueCoder against Foundation's coders")
struct JSONValueCoderTests {
    enum Shape: Codable, Hashable {
        case plain
        case number(Int)
        case labeled(x: String, y: Date?)
        case nested(Inner)
    }

    enum Word: String, Codable, Hashable { case one, two }

    struct Inner: Codable, Hashable {
        var shapes: [Shape]
        var word: Word
    }

    struct Sample: Codable, Hashable {
        var text: String
        var int: Int
        var small: Int8
        var huge: UInt64
        var negative: Int64
        var real: Double
        var float: Float
        var flag: Bool
        var date: Date
        var decimal: Decimal
        var url: URL
        var data: Data
        var present: String?
        var absent: Int?
        var list: [Int]
        var table: [String: [Double]]
        var byNumber: [Int: String]
        var holes: [String?]
        var json: JSONValue
        var shape: Shape
        var inner: Inner
    }

    static let sample = Sample(
        text: "quote \" backslash \\ slash / newline \n tab \t bell \u{7} nul \u{0} é 🎉 \u{202E}rtl",
        int: -42, small: -128, huge: UInt64.max, negative: Int64.min, real: 0.1, float: 0.1, flag: true,
        date: Date(timeIntervalSince1970: 1_796_665_602.5), decimal: Decimal(string: "12345678901234567890.123")!,
        url: URL(string: "https://example.com/a?b=c")!, data: Data([0, 1, 2, 250, 255]), present: "here", absent: nil,
        list: [1, 2, 3], table: ["a": [1.5, -2.25], "": []], byNumber: [3: "three", -1: "minus one"], holes: ["a", nil, "c"],
        json: .object(["n": .int(7), "nested": .array([.null, .bool(false), .double(2.5), .string("x")])]),
        shape: .labeled(x: "x", y: nil),
        inner: Inner(shapes: [.plain, .number(3), .labeled(x: "y", y: Date(timeIntervalSince1970: 12)), .nested(Inner(shapes: [], word: .two))],
                     word: .one))

    func foundationEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .millisecondsSince1970
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    func foundationDecoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return d
    }

    @Test func readsWhatFoundationWrote() throws {
        let text = try foundationEncoder().encode(Self.sample)
        #expect(try JSONValueCoder.decode(Sample.self, fromUTF8: text) == Self.sample)
    }

    @Test func writesWhatFoundationReads() throws {
        let ours = try JSONValueCoder.encodeUTF8(Self.sample)
        #expect(try foundationDecoder().decode(Sample.self, from: Data(ours)) == Self.sample)
        #expect(try JSONValueCoder.decode(Sample.self, fromUTF8: ours) == Self.sample)
    }

    @Test func writesTheSameJSONAsFoundation() throws {
        let ours = try #require(JSONValue.parseStrict(try JSONValueCoder.encodeUTF8(Self.sample)))
        let theirs = try #require(JSONValue.parseStrict(try foundationEncoder().encode(Self.sample)))
        #expect(ours == theirs)
        #expect(ours.canonicalText == theirs.canonicalText)
    }

    @Test func textIsCompactWithKeysInTheTypesOrder() throws {
        struct Pair: Codable { var b = 1; var a = "x/y" }
        #expect(String(decoding: try JSONValueCoder.encodeUTF8(Pair()), as: UTF8.self) == #"{"b":1,"a":"x/y"}"#)
        // JSONValues inside (action arguments, caller state) keep their keys in byte order.
        #expect(String(decoding: try JSONValueCoder.encodeUTF8(["v": JSONValue.object(["b": .int(1), "a": .null])]), as: UTF8.self)
                    == #"{"v":{"a":null,"b":1}}"#)
        #expect(String(decoding: try JSONValueCoder.encodeUTF8([1.0, 2.5, 1e20]), as: UTF8.self) == "[1,2.5,1e+20]")
    }

    @Test func errorsAreFoundationsErrors() throws {
        struct Needs: Codable { var name: String; var count: Int }
        func decode(_ text: String) throws -> Needs { try JSONValueCoder.decode(Needs.self, fromUTF8: Array(text.utf8)) }
        #expect {
            _ = try decode(#"{"name":"x"}"#)
        } throws: { error in
            guard case DecodingError.keyNotFound(let key, _) = error else { return false }
            return key.stringValue == "count"
        }
        #expect {
            _ = try decode(#"{"name":1,"count":1}"#)
        } throws: { error in
            guard case DecodingError.typeMismatch(_, let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["name"]
        }
        #expect {
            _ = try decode(#"{"name":null,"count":1}"#)
        } throws: { error in
            if case DecodingError.valueNotFound = error { return true }
            return false
        }
        #expect {
            _ = try JSONValueCoder.decode(Int8.self, fromUTF8: Array("300".utf8))
        } throws: { error in
            if case DecodingError.dataCorrupted = error { return true }
            return false
        }
        #expect(throws: DecodingError.self) { _ = try JSONValueCoder.decode(Int.self, fromUTF8: Array("1.5".utf8)) }
        #expect(throws: DecodingError.self) { _ = try JSONValueCoder.decode(Needs.self, fromUTF8: Array("{".utf8)) }
        #expect(throws: EncodingError.self) { _ = try JSONValueCoder.encodeUTF8([Double.nan]) }
        #expect(throws: EncodingError.self) { _ = try JSONValueCoder.encodeUTF8(["x": Double.infinity]) }
    }

    @Test func nullsAndOptionals() throws {
        #expect(try JSONValueCoder.decode([Int?].self, fromUTF8: Array("[1,null,3]".utf8)) == [1, nil, 3])
        #expect(try JSONValueCoder.decode(JSONValue.self, fromUTF8: Array("null".utf8)) == .null)
        #expect(try JSONValueCoder.decode([String: JSONValue].self, fromUTF8: Array(#"{"a":null}"#.utf8)) == ["a": .null])
        struct Maybe: Codable, Equatable { var a: Int? }
        #expect(try JSONValueCoder.decode(Maybe.self, fromUTF8: Array(#"{"a":null}"#.utf8)) == Maybe(a: nil))
        #expect(try JSONValueCoder.decode(Maybe.self, fromUTF8: Array("{}".utf8)) == Maybe(a: nil))
        #expect(String(decoding: try JSONValueCoder.encodeUTF8(Maybe(a: nil)), as: UTF8.self) == "{}", "a nil optional is left out, as JSONEncoder does")
    }
}
