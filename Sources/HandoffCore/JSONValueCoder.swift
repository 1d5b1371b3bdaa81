import Foundation

/// `Codable` straight to and from JSON, for the store's entity rows.
///
/// Every act reads one entity row and writes it back, and with Foundation's coders that was the largest
/// share of a decision's CPU time (issue 9): `JSONDecoder` parses the text a second time after the
/// linear parser (``FastJSONParser``) has, and builds a coding path for every value; `JSONEncoder`
/// builds its own tree, sorts its keys by Unicode order and formats numbers through `NSNumber`. The
/// decoder here walks the ``JSONValue`` the parser made; the encoder collects each object's members in
/// the order the type encodes them and writes the text from that directly. Coding paths are only put
/// together for an error. It is the same JSON as `JSONEncoder`/`JSONDecoder` with
/// `millisecondsSince1970` dates (object keys in the type's order rather than sorted), so rows written
/// before and after read back alike (tests check both directions for every entity).
///
/// Dates are milliseconds since 1970 (a number); `Data` is base64 text; `URL` its absolute string;
/// `Decimal` a number, as Foundation's coders have them.
package enum JSONValueCoder {
    package static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONValueEncoderImpl.slot(for: value, at: JSONCodingPath()).resolved
    }

    package static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONValueDecoderImpl.unbox(value, as: type, at: JSONCodingPath())
    }

    /// Decodes JSON text: one linear parse, then the tree. Text the strict parser refuses is an error.
    package static func decode<T: Decodable>(_ type: T.Type, fromUTF8 bytes: some Collection<UInt8>) throws -> T {
        guard let root = JSONValue.parseStrict(bytes) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not valid JSON"))
        }
        return try decode(type, from: root)
    }

    /// Encodes to compact JSON text: each object's keys in the order the type encodes them (the
    /// ``JSONValue``s inside, such as action arguments, with their keys in byte order).
    package static func encodeUTF8<T: Encodable>(_ value: T) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        try JSONValueEncoderImpl.slot(for: value, at: JSONCodingPath()).write(into: &out)
        return out
    }
}

/// Where a value is, put together only when needed (an error, a nested coder): the parent's path and
/// this value's key. Building `parent + [key]` for every value was most of the coders' allocations.
struct JSONCodingPath {
    var parent: [any CodingKey] = []
    var key: (any CodingKey)?

    var keys: [any CodingKey] { key.map { parent + [$0] } ?? parent }
}

// MARK: - Writing

extension JSONValue {
    /// Compact JSON text: no whitespace, object keys in UTF-8 byte order (deterministic, and cheaper to
    /// sort than ``canonicalText``'s Unicode order), integral doubles as integers as `JSONEncoder`
    /// writes them. Non-finite numbers cannot be written: they throw, as with `JSONEncoder`.
    package func compactUTF8() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        try write(into: &out)
        return out
    }

    fileprivate func write(into out: inout [UInt8]) throws {
        switch self {
        case .null: out.append(contentsOf: Self.nullBytes)
        case .bool(let b): out.append(contentsOf: b ? Self.trueBytes : Self.falseBytes)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            guard d.isFinite else {
                throw EncodingError.invalidValue(d, .init(codingPath: [], debugDescription: "\(d) cannot be written as JSON"))
            }
            if d == d.rounded(), abs(d) < 9.007_199_254_740_992e15 {
                out.append(contentsOf: String(Int64(d)).utf8)
            } else {
                out.append(contentsOf: "\(d)".utf8)
            }
        case .decimal(let d): out.append(contentsOf: d.description.utf8)
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                try v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in o.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                try o[key].unsafelyUnwrapped.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let nullBytes = Array("null".utf8)
    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, … or `\u00XX`; everything
    /// else (`/` too, as with `.withoutEscapingSlashes`) as its UTF-8.
    fileprivate static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0x00..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Encoding

/// Where an encoder's value goes: a plain value, or an object or array still being filled.
private enum Slot {
    case value(JSONValue)
    case object(ObjectBox)
    case array(ArrayBox)

    var resolved: JSONValue {
        switch self {
        case .value(let v): v
        case .object(let box): .object(Dictionary(box.members.map { ($0.key, $0.slot.resolved) }, uniquingKeysWith: { _, last in last }))
        case .array(let box): .array(box.items.map(\.resolved))
        }
    }

    func write(into out: inout [UInt8]) throws {
        switch self {
        case .value(let v): try v.write(into: &out)
        case .object(let box):
            out.append(UInt8(ascii: "{"))
            for (i, member) in box.members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                try member.slot.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let box):
            out.append(UInt8(ascii: "["))
            for (i, item) in box.items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                try item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}

/// An object's members in the order they were encoded. `Codable` types encode each key once (a key
/// set again replaces the value, as with `JSONEncoder`).
private final class ObjectBox {
    var members: [(key: String, slot: Slot)] = []

    func set(_ key: String, _ slot: Slot) {
        // Replacing is rare (synthesized and Dictionary encodings never repeat a key): look only back
        // through the last few, so a large dictionary stays linear.
        for i in members.indices.suffix(4).reversed() where members[i].key == key {
            members[i].slot = slot
            return
        }
        members.append((key, slot))
    }
}

private final class ArrayBox {
    var items: [Slot] = []
}

private final class JSONValueEncoderImpl: Encoder {
    let path: JSONCodingPath
    var codingPath: [any CodingKey] { path.keys }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var slot: Slot?

    init(path: JSONCodingPath) { self.path = path }

    /// The JSON for one value: the scalars (numbers, strings, dates, …) as Foundation's `JSONEncoder`
    /// writes them; anything else through its own `encode(to:)`.
    static func slot<T: Encodable>(for value: T, at path: JSONCodingPath) throws -> Slot {
        // The commonest types by identity first (a pointer compare), then any scalar (a conformance lookup).
        if T.self == String.self { return .value(.string(unsafeBitCast(value, to: String.self))) }
        if T.self == Date.self { return .value(try unsafeBitCast(value, to: Date.self).jsonValue(path)) }
        if T.self == JSONValue.self { return .value(unsafeBitCast(value, to: JSONValue.self)) }
        if let scalar = value as? any JSONScalar { return .value(try scalar.jsonValue(path)) }
        let encoder = JSONValueEncoderImpl(path: path)
        try value.encode(to: encoder)
        // A type that encodes nothing is an empty object, as with JSONEncoder.
        return encoder.slot ?? .object(ObjectBox())
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: ObjectBox
        if case .object(let existing) = slot {
            box = existing
        } else {
            box = ObjectBox()
            slot = .object(box)
        }
        return KeyedEncodingContainer(KeyedEncoder<Key>(box: box, codingPath: path.keys))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: ArrayBox
        if case .array(let existing) = slot {
            box = existing
        } else {
            box = ArrayBox()
            slot = .array(box)
        }
        return UnkeyedEncoder(box: box, codingPath: path.keys)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueEncoder(encoder: self) }
}

/// Containers keep their own path, put together once; each value's path is that and its key, put
/// together only if needed.
private struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: ObjectBox
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, .value(.null)) }

    // The types synthesized `encode(to:)` names directly: no generic detour.
    mutating func encode(_ value: String, forKey key: Key) throws { box.set(key.stringValue, .value(.string(value))) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { box.set(key.stringValue, .value(.bool(value))) }
    mutating func encode(_ value: Int, forKey key: Key) throws { box.set(key.stringValue, .value(.int(Int64(value)))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { box.set(key.stringValue, .value(.int(value))) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        box.set(key.stringValue, .value(try value.jsonValue(JSONCodingPath(parent: codingPath, key: key))))
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(key.stringValue, try JSONValueEncoderImpl.slot(for: value, at: JSONCodingPath(parent: codingPath, key: key)))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        box.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        box.set(key.stringValue, .array(nested))
        return UnkeyedEncoder(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        ReferencingEncoder(path: JSONCodingPath(parent: codingPath, key: key)) { [box] slot in box.set(key.stringValue, slot) }
    }
}

private struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let box: ArrayBox
    let codingPath: [any CodingKey]
    var count: Int { box.items.count }

    mutating func encodeNil() throws { box.items.append(.value(.null)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        box.items.append(try JSONValueEncoderImpl.slot(for: value, at: JSONCodingPath(parent: codingPath, key: IndexKey(count))))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = ObjectBox()
        let nestedPath = codingPath + [IndexKey(count)]
        box.items.append(.object(nested))
        return KeyedEncodingContainer(KeyedEncoder<NestedKey>(box: nested, codingPath: nestedPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        let nestedPath = codingPath + [IndexKey(count)]
        box.items.append(.array(nested))
        return UnkeyedEncoder(box: nested, codingPath: nestedPath)
    }

    mutating func superEncoder() -> any Encoder {
        let index = box.items.count
        box.items.append(.value(.null))
        return ReferencingEncoder(path: JSONCodingPath(parent: codingPath, key: IndexKey(index))) { [box] slot in box.items[index] = slot }
    }
}

private struct SingleValueEncoder: SingleValueEncodingContainer {
    let encoder: JSONValueEncoderImpl
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.slot = .value(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.slot = try JSONValueEncoderImpl.slot(for: value, at: encoder.path)
    }
}

/// An encoder whose value lands in its parent when the encoding is done (`superEncoder`).
private final class ReferencingEncoder: Encoder {
    private let inner: JSONValueEncoderImpl
    private let store: (Slot) -> Void
    var codingPath: [any CodingKey] { inner.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(path: JSONCodingPath, store: @escaping (Slot) -> Void) {
        self.inner = JSONValueEncoderImpl(path: path)
        self.store = store
    }

    deinit { store(inner.slot ?? .object(ObjectBox())) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
}

private struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

// MARK: - Decoding

private final class JSONValueDecoderImpl: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSONValue, path: [any CodingKey]) {
        self.value = value
        self.codingPath = path
    }

    /// One value as `T`: the scalars (numbers, strings, dates, …) as Foundation's `JSONDecoder` reads them;
    /// anything else through its own `init(from:)`. Null is nil for an optional, else an error.
    static func unbox<T: Decodable>(_ value: JSONValue, as type: T.Type, at path: JSONCodingPath) throws -> T {
        // The commonest types by identity first (a pointer compare), then any scalar (a conformance lookup).
        if type == String.self { return unsafeBitCast(try String.read(value, path), to: T.self) }
        if type == Date.self { return unsafeBitCast(try Date.read(value, path), to: T.self) }
        if type == JSONValue.self { return unsafeBitCast(value, to: T.self) }
        if let scalar = type as? any JSONScalar.Type {
            if case .null = value, scalar != JSONValue.self {
                throw DecodingError.valueNotFound(type, .init(codingPath: path.keys, debugDescription: "Expected \(type) value but found null instead."))
            }
            return try scalar.read(value, path) as! T
        }
        if case .null = value, !(type is any OptionalMarker.Type) {
            throw DecodingError.valueNotFound(type, .init(codingPath: path.keys, debugDescription: "Expected \(type) value but found null instead."))
        }
        return try T(from: JSONValueDecoderImpl(value: value, path: path.keys))
    }

    /// The error for a value of the wrong kind: null where a value was expected is `valueNotFound`, as
    /// `JSONDecoder` has it; anything else `typeMismatch`.
    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey]) -> DecodingError {
        if case .null = value {
            return DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "Expected \(type) value but found null instead."))
        }
        return DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "Expected to decode \(type) but found \(value.kindName) instead."))
    }

    static func outOfRange(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey]) -> DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "Number \(value.canonicalText) does not fit in \(type)."))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw Self.mismatch([String: Any].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedDecoder<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw Self.mismatch([Any].self, value, codingPath) }
        return UnkeyedDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueDecoder(value: value, codingPath: codingPath) }
}

private struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try member(key) { return true }
        return false
    }

    // The types synthesized `init(from:)` names directly: no generic detour.
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try String.read(try member(key), JSONCodingPath(parent: codingPath, key: key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Bool.read(try member(key), JSONCodingPath(parent: codingPath, key: key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Int.read(try member(key), JSONCodingPath(parent: codingPath, key: key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Int64.read(try member(key), JSONCodingPath(parent: codingPath, key: key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Double.read(try member(key), JSONCodingPath(parent: codingPath, key: key)) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let value = members[key.stringValue] else { return nil }
        if case .null = value { return nil }
        return try String.read(value, JSONCodingPath(parent: codingPath, key: key))
    }

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let value = members[key.stringValue] else { return nil }
        if case .null = value { return nil }
        return try Bool.read(value, JSONCodingPath(parent: codingPath, key: key))
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let value = members[key.stringValue] else { return nil }
        if case .null = value { return nil }
        return try Int.read(value, JSONCodingPath(parent: codingPath, key: key))
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        guard let value = members[key.stringValue] else { return nil }
        if case .null = value { return nil }
        return try Double.read(value, JSONCodingPath(parent: codingPath, key: key))
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoderImpl.unbox(try member(key), as: type, at: JSONCodingPath(parent: codingPath, key: key))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let value = members[key.stringValue] else { return nil }
        if case .null = value { return nil }
        return try JSONValueDecoderImpl.unbox(value, as: type, at: JSONCodingPath(parent: codingPath, key: key))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        let value = try member(key)
        guard case .object(let nested) = value else { throw JSONValueDecoderImpl.mismatch([String: Any].self, value, codingPath + [key]) }
        return KeyedDecodingContainer(KeyedDecoder<NestedKey>(members: nested, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let value = try member(key)
        guard case .array(let items) = value else { throw JSONValueDecoderImpl.mismatch([Any].self, value, codingPath + [key]) }
        return UnkeyedDecoder(items: items, codingPath: codingPath + [key])
    }

    func superDecoder() throws -> any Decoder {
        JSONValueDecoderImpl(value: members["super"] ?? .null, path: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONValueDecoderImpl(value: members[key.stringValue] ?? .null, path: codingPath + [key])
    }
}

private struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    private func current(_ type: Any.Type) throws -> JSONValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "Unkeyed container is at end."))
        }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard case .null = try current(Never.self) else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoded = try JSONValueDecoderImpl.unbox(try current(type), as: type, at: JSONCodingPath(parent: codingPath, key: IndexKey(currentIndex)))
        currentIndex += 1
        return decoded
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let value = try current(type)
        let path = codingPath + [IndexKey(currentIndex)]
        guard case .object(let nested) = value else { throw JSONValueDecoderImpl.mismatch([String: Any].self, value, path) }
        currentIndex += 1
        return KeyedDecodingContainer(KeyedDecoder<NestedKey>(members: nested, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let value = try current([Any].self)
        let path = codingPath + [IndexKey(currentIndex)]
        guard case .array(let nested) = value else { throw JSONValueDecoderImpl.mismatch([Any].self, value, path) }
        currentIndex += 1
        return UnkeyedDecoder(items: nested, codingPath: path)
    }

    mutating func superDecoder() throws -> any Decoder {
        let value = try current(Any.self)
        let path = codingPath + [IndexKey(currentIndex)]
        currentIndex += 1
        return JSONValueDecoderImpl(value: value, path: path)
    }
}

private struct SingleValueDecoder: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .null }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValueDecoderImpl.unbox(value, as: type, at: JSONCodingPath(parent: codingPath))
    }
}

// MARK: - Scalars

/// `Optional`, whatever it wraps: decoding null as one is nil, not an error.
private protocol OptionalMarker {}
extension Optional: OptionalMarker {}

/// A value written as one JSON scalar, the way Foundation's coders write it.
private protocol JSONScalar {
    func jsonValue(_ path: JSONCodingPath) throws -> JSONValue
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Self
}

extension String: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { .string(self) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> String {
        guard case .string(let s) = value else { throw JSONValueDecoderImpl.mismatch(String.self, value, path.keys) }
        return s
    }
}

extension Bool: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { .bool(self) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Bool {
        guard case .bool(let b) = value else { throw JSONValueDecoderImpl.mismatch(Bool.self, value, path.keys) }
        return b
    }
}

/// Integers: written exactly; read from any number that is exactly an integer in range.
private protocol JSONInteger: JSONScalar, FixedWidthInteger {}

extension JSONInteger {
    func jsonValue(_ path: JSONCodingPath) throws -> JSONValue {
        if let i = Int64(exactly: self) { return .int(i) }
        return .decimal(Decimal(string: String(self))!)
    }

    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Self {
        switch value {
        case .int(let i): if let v = Self(exactly: i) { return v }
        case .double(let d): if let v = Self(exactly: d) { return v }
        case .decimal(let d): if let v = Self(d.description) { return v }
        default: throw JSONValueDecoderImpl.mismatch(Self.self, value, path.keys)
        }
        throw JSONValueDecoderImpl.outOfRange(Self.self, value, path.keys)
    }
}

extension Int: JSONInteger {}
extension Int8: JSONInteger {}
extension Int16: JSONInteger {}
extension Int32: JSONInteger {}
extension Int64: JSONInteger {}
extension UInt: JSONInteger {}
extension UInt8: JSONInteger {}
extension UInt16: JSONInteger {}
extension UInt32: JSONInteger {}
extension UInt64: JSONInteger {}

extension Double: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) throws -> JSONValue {
        guard isFinite else {
            throw EncodingError.invalidValue(self, .init(codingPath: path.keys, debugDescription: "\(self) is not a valid JSON number"))
        }
        return .double(self)
    }

    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Double {
        switch value {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .decimal(let d): return NSDecimalNumber(decimal: d).doubleValue
        default: throw JSONValueDecoderImpl.mismatch(Double.self, value, path.keys)
        }
    }
}

extension Float: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) throws -> JSONValue {
        // The float's shortest text, as JSONEncoder writes it (not the longer digits of its Double).
        guard isFinite else {
            throw EncodingError.invalidValue(self, .init(codingPath: path.keys, debugDescription: "\(self) is not a valid JSON number"))
        }
        return .double(Double(description) ?? Double(self))
    }

    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Float { Float(try Double.read(value, path)) }
}

extension Date: JSONScalar {
    /// Milliseconds since 1970, as `JSONEncoder.DateEncodingStrategy.millisecondsSince1970`.
    func jsonValue(_ path: JSONCodingPath) throws -> JSONValue { try (timeIntervalSince1970 * 1000).jsonValue(path) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Date {
        Date(timeIntervalSince1970: try Double.read(value, path) / 1000)
    }
}

extension Decimal: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { .decimal(self) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Decimal {
        switch value {
        case .int(let i): return Decimal(i)
        case .double(let d): return Decimal(string: "\(d)") ?? Decimal(d)
        case .decimal(let d): return d
        default: throw JSONValueDecoderImpl.mismatch(Decimal.self, value, path.keys)
        }
    }
}

extension URL: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { .string(absoluteString) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> URL {
        guard case .string(let s) = value, let url = URL(string: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path.keys, debugDescription: "Invalid URL string."))
        }
        return url
    }
}

extension Data: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { .string(base64EncodedString()) }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) throws -> Data {
        guard case .string(let s) = value, let data = Data(base64Encoded: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path.keys, debugDescription: "Encountered Data is not valid Base64."))
        }
        return data
    }
}

extension JSONValue: JSONScalar {
    func jsonValue(_ path: JSONCodingPath) -> JSONValue { self }
    static func read(_ value: JSONValue, _ path: JSONCodingPath) -> JSONValue { value }
}

extension JSONValue {
    /// The JSON kind, for error messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double, .decimal: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
