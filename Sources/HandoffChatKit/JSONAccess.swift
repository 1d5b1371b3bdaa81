import Foundation
import HandoffCore

/// Read-only access into platform payloads. Named `member`/`as…` rather than subscripts so they never
/// collide with helpers other modules add to ``JSONValue``.
extension JSONValue {
    /// The value under `key` when this is an object.
    package func member(_ key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The value at a path of object keys (`payload.event.type`).
    package func member(path keys: String...) -> JSONValue? {
        var current: JSONValue? = self
        for key in keys { current = current?.member(key) }
        return current
    }

    package var asString: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var asInt: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: Int64(d)
        case .string(let s): Int64(s)
        default: nil
        }
    }

    package var asDouble: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .string(let s): Double(s)
        default: nil
        }
    }

    package var asBool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    package var asArray: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var asObject: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// Parses JSON text from a platform (any error is a malformed payload), in linear time whatever
    /// its shape (see HandoffCore/JSONParser.swift).
    package static func parsePayload(_ text: String) throws(MalformedPayload) -> JSONValue {
        do {
            return try decodeDocument(Array(text.utf8))
        } catch {
            throw MalformedPayload(description: "not JSON: \(error)")
        }
    }

    package static func parsePayload(_ bytes: [UInt8]) throws(MalformedPayload) -> JSONValue {
        do {
            return try decodeDocument(bytes)
        } catch {
            throw MalformedPayload(description: "not JSON: \(error)")
        }
    }

    /// Compact JSON text (keys sorted) for sending.
    package var jsonText: String { canonicalText }
}

/// A platform payload the adapter could not read.
package struct MalformedPayload: Error, CustomStringConvertible, Sendable {
    package var description: String

    package init(description: String) { self.description = description }
}
