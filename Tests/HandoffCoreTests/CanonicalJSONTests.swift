import Foundation
import HandoffCore
import Testing

@Suite("Canonical JSON hashing")
struct CanonicalJSONTests {
    @Test func keyOrderAndWhitespaceDoNotChangeTheHash() throws {
        let compact = try JSONValue.parse(#"{"b":1,"a":[1,2,{"y":true,"x":null}],"c":"héllo \"q\""}"#)
        let spaced = try JSONValue.parse("""
            {
              "c" : "héllo \\"q\\"",
              "a" : [ 1, 2, { "x" : null, "y" : true } ],
              "b" : 1
            }
            """)
        #expect(compact.canonicalHash == spaced.canonicalHash)
        #expect(compact.canonicalText == #"{"a":[1,2,{"x":null,"y":true}],"b":1,"c":"héllo \"q\""}"#)
    }

    @Test func differentValuesGiveDifferentHashes() throws {
        let base = try JSONValue.parse(#"{"to":"acct-9","amount":250}"#)
        let variants = [
            #"{"to":"acct-9","amount":251}"#,
            #"{"to":"acct-6","amount":250}"#,
            #"{"to":"acct-9","amount":"250"}"#,
            #"{"to":"acct-9","amount":250,"extra":null}"#,
            #"{"to":"acct-9"}"#,
            #"["acct-9",250]"#,
        ]
        var hashes: Set<String> = [base.canonicalHash]
        for text in variants {
            let hash = try JSONValue.parse(text).canonicalHash
            #expect(hash != base.canonicalHash, "\(text) must not hash like the original")
            hashes.insert(hash)
        }
        #expect(hashes.count == variants.count + 1)
    }

    @Test func arrayOrderMatters() throws {
        #expect(try JSONValue.parse("[1,2]").canonicalHash != JSONValue.parse("[2,1]").canonicalHash)
    }

    @Test func booleansAreNotNumbers() throws {
        #expect(try JSONValue.parse(#"{"a":true}"#).canonicalHash != JSONValue.parse(#"{"a":1}"#).canonicalHash)
        #expect(try JSONValue.parse(#"{"a":false}"#).canonicalHash != JSONValue.parse(#"{"a":0}"#).canonicalHash)
    }

    @Test func oneAndOnePointZeroAreTheSameNumber() throws {
        let int = try JSONValue.parse(#"{"n":1}"#)
        let double = try JSONValue.parse(#"{"n":1.0}"#)
        #expect(int.canonicalHash == double.canonicalHash)
        #expect(JSONValue.double(1.0).canonicalText == JSONValue.int(1).canonicalText)
        #expect(try JSONValue.parse(#"{"n":1.5}"#).canonicalHash != int.canonicalHash)
    }

    @Test func theHashIsSHA256OfTheCanonicalText() throws {
        // sha256("{}"), computed independently.
        #expect(try JSONValue.parse("{ }").canonicalHash == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    }

    @Test func invalidJSONIsATypedError() {
        expectRefusal(.invalid, "not valid JSON", field: "arguments") { try JSONValue.parse(#"{"a":"#) }
    }
}

@Suite("Policy durations")
struct SpanTests {
    @Test(arguments: [
        ("90", 90.0), ("90s", 90), ("15m", 900), ("4h", 14_400), ("2d", 172_800), ("1h30m", 5400), (" 1H30M ", 5400),
        ("1w", 604_800), ("0", 0),
    ])
    func parses(text: String, seconds: Double) throws {
        let span = try #require(Span(parsing: text))
        #expect(span.seconds == seconds)
    }

    @Test(arguments: ["", "abc", "15x", "m", "1h30", "-5", "inf", "infinity", "nan", "1 hour", "1e300", "999999999999d"])
    func refuses(text: String) {
        #expect(Span(parsing: text) == nil, "'\(text)' is not a duration")
    }

    @Test func printsTheWayPeopleWriteIt() {
        #expect(Span(seconds: 5400).description == "1h30m")
        #expect(Span(seconds: 0).description == "0s")
        #expect(Span(seconds: 90_061).description == "1d1h1m1s")
    }

    @Test func decodesFromNumbersAndStringsAndRejectsNonsense() throws {
        struct Box: Decodable { var d: Span }
        let decoder = JSONDecoder()
        #expect(try decoder.decode(Box.self, from: Data(#"{"d": 90}"#.utf8)).d.seconds == 90)
        #expect(try decoder.decode(Box.self, from: Data(#"{"d": "1h30m"}"#.utf8)).d.seconds == 5400)
        #expect(throws: DecodingError.self) { try decoder.decode(Box.self, from: Data(#"{"d": -1}"#.utf8)) }
        // A huge number would overflow the store's millisecond times; it is refused, not a crash later.
        #expect(throws: DecodingError.self) { try decoder.decode(Box.self, from: Data(#"{"d": 1e300}"#.utf8)) }
        #expect(throws: DecodingError.self) { try decoder.decode(Box.self, from: Data(#"{"d": "soon"}"#.utf8)) }
    }
}
