import Foundation
import HandoffCore
import Synchronization

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, fully deterministic generator, so a fuzz run is
/// replayed exactly from its seed on every platform (the standard library's generator is not seedable).
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The fuzz run: one seed per test process (printed; `HANDOFF_FUZZ_SEED=<n>` replays it), a
/// generator per stream derived from it, and the tally behind the summary line the README quotes:
/// `fuzz: seed=…, inputs=N (parser=…, slack=…, matrix=…, api=…), crashes=0`.
package enum Fuzz {
    /// What the README's figures are grouped by.
    package enum Category: String, CaseIterable, Sendable {
        case parser, slack, matrix, api
    }

    /// `HANDOFF_FUZZ_SEED` (decimal, or hex with `0x`), else a fresh random seed.
    package static let seed: UInt64 = {
        if let text = ProcessInfo.processInfo.environment["HANDOFF_FUZZ_SEED"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            let parsed = text.lowercased().hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            if let parsed { return parsed }
            print("fuzz: HANDOFF_FUZZ_SEED=\(text) is not a number; using a random seed")
        }
        var system = SystemRandomNumberGenerator()
        return system.next()
    }()

    /// The seed as the summary prints it (and `HANDOFF_FUZZ_SEED` takes it).
    package static var seedText: String { String(seed) }

    /// A generator for one named stream: the same seed and name give the same inputs, whatever other
    /// suites ran before (the name is hashed with FNV-1a, not `Hashable`, which is seeded per process).
    package static func generator(_ stream: String) -> SplitMix64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in stream.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return SplitMix64(seed: seed ^ hash)
    }

    /// Prints the seed before a stream starts, so a crash (which ends the process) can be replayed.
    package static func announce(_ stream: String) {
        print("fuzz[\(stream)]: seed=\(seedText) (replay with HANDOFF_FUZZ_SEED=\(seedText))")
    }

    private static let tally = Mutex<(inputs: [Category: Int], crashes: Int)>(([:], 0))

    /// Adds a finished stream's figures and prints the running summary (the last line printed in a
    /// run covers every fuzz suite that ran).
    package static func record(_ category: Category, inputs: Int, crashes: Int, stream: String) {
        let line = tally.withLock { t -> String in
            t.inputs[category, default: 0] += inputs
            t.crashes += crashes
            return summary(t.inputs, crashes: t.crashes)
        }
        print("fuzz[\(stream)]: \(inputs) inputs, \(crashes) crashes")
        print(line)
    }

    /// The figures so far as the summary line.
    package static var summary: String {
        tally.withLock { summary($0.inputs, crashes: $0.crashes) }
    }

    private static func summary(_ inputs: [Category: Int], crashes: Int) -> String {
        let total = inputs.values.reduce(0, +)
        let parts = Category.allCases.map { "\($0.rawValue)=\(inputs[$0, default: 0])" }.joined(separator: ", ")
        return "fuzz: seed=\(seedText), inputs=\(total) (\(parts)), crashes=\(crashes)"
    }

    /// An input as a failure message shows it: escaped, cut to `limit` characters.
    package static func show(_ text: String, limit: Int = 600) -> String {
        let escaped = text.unicodeScalars.map { s -> String in
            switch s {
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case "\\": "\\\\"
            default: s.value < 0x20 || (0x7F...0x9F).contains(s.value) || (0x202A...0x202E).contains(s.value)
                ? String(format: "\\u{%04X}", s.value) : String(s)
            }
        }.joined()
        return escaped.count > limit ? String(escaped.prefix(limit)) + "…(\(escaped.count) chars)" : escaped
    }

    package static func show(_ bytes: [UInt8], limit: Int = 600) -> String {
        show(String(decoding: bytes, as: UTF8.self), limit: limit)
    }
}

/// Makes hostile inputs from a seeded generator: random bytes, random JSON, and mutations of valid
/// samples (truncation, byte flips, type swaps, huge numbers, deep nesting, unicode, null bytes).
package struct FuzzMutator: Sendable {
    package var rng: SplitMix64

    package init(_ rng: SplitMix64) { self.rng = rng }
    package init(stream: String) { rng = Fuzz.generator(stream) }

    // MARK: Basics

    package mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    package mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    package mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// Strings that break naive code: empties, whitespace of every kind, control characters, NUL,
    /// right-to-left overrides, zero-width and combining characters, emoji sequences, look-alike digits,
    /// mentions and markup, numbers at and beyond the integer limits.
    package static let nasty: [String] = [
        "", " ", "\t", "\n", "\r\n", "\u{00A0}", "\u{2028}", "\u{3000}", "\u{0}", "\u{1}", "\u{7F}", "\u{1B}[31m",
        "\u{202E}", "\u{202E}evil\u{202C}", "\u{200B}", "\u{200D}", "\u{FEFF}", "e\u{301}\u{301}\u{301}", "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈",
        "٤٢", "４２", "𝟒𝟐", "-1", "0", "-0", "+42", "#", "##42", "#-1", "1e3", "0x2A", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "99999999999999999999999999999999", "1.5", "NaN", "inf",
        "<!channel>", "<!here>", "@room", "<@U123>", "<@UBOT>", "@handoff:localhost", "[x](http://evil)", "<script>alert(1)</script>",
        "${jndi:ldap://x}", "%s%n", "%00", "%", "%zz", "&", "=", "+", "%2B", "\"", "\\", "\\u0000", "'", "`", "{", "}", "[", "]",
        "null", "true", "{}", "[]", "approve", "reject", "claim", "/handoff", "!handoff", "handoff", ":", ",", "!",
        String(repeating: "a", count: 300), String(repeating: "é", count: 200), String(repeating: "💥", count: 100),
    ]

    package mutating func nastyString() -> String {
        switch int(0...4) {
        case 0...1: return pick(Self.nasty)
        case 2: return (0..<int(1...4)).map { _ in pick(Self.nasty) }.joined(separator: pick(["", " ", "\n"]))
        case 3: return randomUnicode(maxLength: 24)
        default: return String(repeating: pick(Self.nasty), count: int(1...50))
        }
    }

    /// Random scalars from ASCII, Latin, combining marks, RTL/bidi controls, CJK, emoji and the edges
    /// of the code space (never surrogates, which a Swift string cannot hold).
    package mutating func randomUnicode(maxLength: Int) -> String {
        var out = String.UnicodeScalarView()
        for _ in 0..<int(0...maxLength) {
            let value: UInt32
            switch int(0...7) {
            case 0, 1: value = UInt32(int(0x20...0x7E))
            case 2: value = UInt32(int(0x0...0x1F))
            case 3: value = UInt32(int(0x80...0x24F))
            case 4: value = pick([0x300, 0x301, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2069, 0x200B, 0x200D, 0xFEFF, 0xFFFD, 0x10FFFF])
            case 5: value = UInt32(int(0x4E00...0x9FFF))
            case 6: value = UInt32(int(0x1F300...0x1FAFF))
            default: value = UInt32(int(0xE000...0xFFFD))
            }
            if let scalar = Unicode.Scalar(value) { out.append(scalar) }
        }
        return String(out)
    }

    package mutating func randomBytes(maxLength: Int) -> [UInt8] {
        (0..<int(0...maxLength)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    // MARK: JSON

    /// A random JSON value, up to `depth` levels deep.
    package mutating func randomJSON(depth: Int = 4) -> JSONValue {
        let kinds = depth <= 0 ? 6 : 8
        switch int(0...(kinds - 1)) {
        case 0: return .null
        case 1: return .bool(chance(0.5))
        case 2: return .int(pick([0, 1, -1, 42, Int64.max, Int64.min, Int64(int(-1000...1000))]))
        case 3: return .double(pick([0.5, -0.0, 1e300, -1e300, 1.7976931348623157e308, Double.leastNonzeroMagnitude, 3.14159, 1e20, -9.3e18]))
        case 4, 5: return .string(nastyString())
        case 6: return .array((0..<int(0...4)).map { _ in randomJSON(depth: depth - 1) })
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<int(0...5) { o[chance(0.5) ? nastyString() : pick(Self.commonKeys)] = randomJSON(depth: depth - 1) }
            return .object(o)
        }
    }

    /// Keys the decoders look for, so random objects sometimes hit real branches.
    package static let commonKeys = [
        "type", "event", "event_id", "envelope_id", "payload", "user", "id", "channel", "channel_id", "ts", "text", "actions",
        "action_id", "value", "container", "message_ts", "trigger_id", "command", "user_id", "subtype", "bot_id", "reaction",
        "item", "content", "sender", "m.relates_to", "rel_type", "key", "redacts", "body", "msgtype", "room_id", "rooms", "join",
        "timeline", "events", "next_batch", "verdict", "action", "arguments", "queue", "priority", "confidence", "value", "query",
    ]

    /// Text that is almost JSON, or JSON a strict parser may choke on: huge and odd numbers, deep
    /// nesting, duplicate keys, comments, a BOM, trailing commas, lone escapes.
    package mutating func oddJSONText() -> String {
        switch int(0...11) {
        case 0: return String(repeating: "[", count: int(1...3000)) + String(repeating: "]", count: int(0...3000))
        case 1: return String(repeating: "{\"a\":", count: int(1...2000)) + "1" + String(repeating: "}", count: int(0...2000))
        case 2: return "{\"n\":" + pick(["1e400", "-1e400", "1" + String(repeating: "0", count: 400), "0.\(String(repeating: "0", count: 400))1",
                                         "18446744073709551616", "-0", "1E+2", "1.", ".5", "01", "NaN", "Infinity", "0x10"]) + "}"
        case 3: return "{\"a\":1,\"a\":2}"
        case 4: return "\u{FEFF}{\"type\":\"event_callback\"}"
        case 5: return "{\"a\":1,}"
        case 6: return "{\"a\":\"\\ud800\"}"
        case 7: return "{\"a\":\"\\u0000\"}"
        case 8: return "// comment\n{}"
        case 9: return "{\"a\":\"" + String(repeating: "\\", count: int(1...9)) + "\"}"
        case 10: return "\"just a string\""
        default: return pick(["", " ", "null", "true", "1", "[]", "{}", "{", "}", "[{]}", "{\"a\"}", "{\"a\":}"])
        }
    }

    /// `value` with one hostile change somewhere inside: a type swapped, a key removed or added, a
    /// number made huge, a string made hostile, a subtree nested deeply or replaced by random JSON.
    package mutating func mutate(_ value: JSONValue) -> JSONValue {
        var paths: [[PathStep]] = []
        Self.collect(value, [], into: &paths)
        let path = pick(paths)
        guard var leaf = Self.value(in: value, at: path[...]) else { return value }
        mutateLeaf(&leaf)
        return Self.setting(leaf, in: value, at: path[...])
    }

    package enum PathStep: Sendable { case key(String), index(Int) }

    /// Every path in `value`, keys in sorted order (dictionary order differs per process; the inputs must not).
    private static func collect(_ value: JSONValue, _ prefix: [PathStep], into paths: inout [[PathStep]]) {
        paths.append(prefix)
        switch value {
        case .object(let o): for k in o.keys.sorted() { collect(o[k]!, prefix + [.key(k)], into: &paths) }
        case .array(let a): for (i, v) in a.enumerated() { collect(v, prefix + [.index(i)], into: &paths) }
        default: break
        }
    }

    private static func value(in value: JSONValue, at path: ArraySlice<PathStep>) -> JSONValue? {
        guard let step = path.first else { return value }
        switch (step, value) {
        case (.key(let k), .object(let o)): return o[k].flatMap { Self.value(in: $0, at: path.dropFirst()) }
        case (.index(let i), .array(let a)): return a.indices.contains(i) ? Self.value(in: a[i], at: path.dropFirst()) : nil
        default: return nil
        }
    }

    private static func setting(_ leaf: JSONValue, in value: JSONValue, at path: ArraySlice<PathStep>) -> JSONValue {
        guard let step = path.first else { return leaf }
        switch (step, value) {
        case (.key(let k), .object(var o)):
            if let child = o[k] { o[k] = setting(leaf, in: child, at: path.dropFirst()) }
            return .object(o)
        case (.index(let i), .array(var a)):
            if a.indices.contains(i) { a[i] = setting(leaf, in: a[i], at: path.dropFirst()) }
            return .array(a)
        default:
            return value
        }
    }

    private mutating func mutateLeaf(_ value: inout JSONValue) {
        switch int(0...11) {
        case 0:  // type swap
            switch value {
            case .string(let s): value = pick([.int(Int64(s.count)), .bool(true), .array([.string(s)]), .object(["value": .string(s)]), .null])
            case .object(let o): value = pick([.array(o.keys.sorted().map { o[$0]! }), .string("\(o.count)"), .null])
            case .array(let a): value = pick([.object(["0": a.first ?? .null]), .string(""), .int(Int64(a.count))])
            case .int(let i): value = pick([.string(String(i)), .double(Double(i) + 0.5), .bool(i != 0)])
            default: value = .string(nastyString())
            }
        case 1: value = .null
        case 2: value = pick([.int(Int64.max), .int(Int64.min), .double(1e300), .double(-1e300), .double(1.7976931348623157e308), .double(1e19),
                              .double(-9.3e18), .decimal(Decimal(string: "123456789012345678901234567890")!)])
        case 3: value = .string(nastyString())
        case 4:  // deep nesting (the text parser sees it after serialisation)
            var v = value
            for _ in 0..<int(1...600) { v = chance(0.5) ? .array([v]) : .object(["a": v]) }
            value = v
        case 5:
            if case .object(var o) = value, !o.isEmpty {
                o[pick(o.keys.sorted())] = nil
                value = .object(o)
            } else {
                value = randomJSON(depth: 2)
            }
        case 6:
            if case .object(var o) = value {
                o[chance(0.5) ? pick(Self.commonKeys) : nastyString()] = randomJSON(depth: 2)
                value = .object(o)
            } else {
                value = randomJSON(depth: 2)
            }
        case 7:
            if case .array(var a) = value, let first = a.first {
                a.append(contentsOf: Array(repeating: first, count: int(1...50)))
                value = .array(a)
            } else {
                value = .array([])
            }
        case 8: value = .string(String(repeating: pick(Self.nasty), count: int(100...5000)))
        case 9:
            if case .string(let s) = value {
                // Keep the text but make it hostile: a prefix, a suffix, or cut in the middle.
                value = .string(pick([nastyString() + s, s + nastyString(), String(s.prefix(int(0...s.count)))]))
            } else {
                value = .string(nastyString())
            }
        case 10: value = .object([:])
        default: value = randomJSON(depth: 3)
        }
    }

    // MARK: Bytes

    /// `bytes` with 1–4 byte-level changes: truncation, flips, inserted NULs and invalid UTF-8,
    /// deleted, duplicated or swapped ranges, hostile text spliced in.
    package mutating func mutate(bytes input: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<int(1...4) {
            switch int(0...9) {
            case 0: if !b.isEmpty { b = Array(b.prefix(int(0...(b.count - 1)))) }
            case 1: if !b.isEmpty { b[int(0...(b.count - 1))] ^= UInt8(1) << UInt8(int(0...7)) }
            case 2: if !b.isEmpty { b[int(0...(b.count - 1))] = UInt8.random(in: 0...255, using: &rng) }
            case 3: b.insert(contentsOf: pick([[0x00] as [UInt8], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x80, 0xAE], [0xF4, 0x90, 0x80, 0x80], [0xC3]]),
                             at: int(0...b.count))
            case 4:
                if b.count > 1 {
                    let start = int(0...(b.count - 1))
                    b.removeSubrange(start..<min(b.count, start + int(1...16)))
                }
            case 5:
                if !b.isEmpty {
                    let start = int(0...(b.count - 1))
                    let chunk = b[start..<min(b.count, start + int(1...32))]
                    b.insert(contentsOf: chunk, at: int(0...b.count))
                }
            case 6: b.insert(contentsOf: Array(nastyString().utf8), at: int(0...b.count))
            case 7: b.insert(contentsOf: Array(pick(["\"", "\\", "{", "}", "[", "]", ",", ":", "%", "&", "=", "+", "\"\\u"]).utf8), at: int(0...b.count))
            case 8:
                if b.count > 2 {
                    let i = int(0...(b.count - 1))
                    let j = int(0...(b.count - 1))
                    b.swapAt(i, j)
                }
            default: b.append(contentsOf: randomBytes(maxLength: 8))
            }
        }
        return b
    }

    // MARK: Inputs

    /// One hostile input made from valid samples: random bytes, random or odd JSON, a structural
    /// mutation of a sample, or a byte-level mutation of one.
    package mutating func input(from samples: [JSONValue]) -> [UInt8] {
        switch int(0...19) {
        case 0: return randomBytes(maxLength: 256)
        case 1: return Array(randomJSON().canonicalText.utf8)
        case 2: return Array(oddJSONText().utf8)
        case 3...10:
            var value = pick(samples)
            for _ in 0..<int(1...3) { value = mutate(value) }
            return Array(value.canonicalText.utf8)
        default:
            return mutate(bytes: Array(pick(samples).canonicalText.utf8))
        }
    }
}
