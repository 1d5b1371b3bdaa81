import Foundation
import Crypto

/// Any JSON value, kept exactly enough to hash: action arguments, caller state, webhook bodies.
package enum JSONValue: Hashable, Sendable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    /// A number that is not an `Int64` and that a `Double` holds exactly (its shortest text is the same number).
    case double(Double)
    /// A number neither `Int64` nor `Double` holds exactly (an integer beyond ±2^63, or more digits than
    /// a `Double` keeps), with its exact digits — up to `Decimal`'s 38 significant digits — so two
    /// different numbers never share a canonical text (or an approval's arguments hash).
    case decimal(Decimal)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package init(from decoder: any Decoder) throws {
        // Decoded through `JSONValue.decode(_:from:decoder:)`: the value is already parsed (type-guessing
        // below costs time proportional to the depth for every failed guess; see JSONParser.swift).
        if let document = decoder.userInfo[JSONValue.parsedDocumentKey] as? ParsedDocument,
           let value = document.value(at: decoder.codingPath)
        {
            self = value
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = Self.number(d, exactly: try? c.decode(Decimal.self)) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .decimal(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// A decoded non-integer-or-huge number: the `Double` when it is the same number as the digits sent
    /// (so everything a `Double` holds keeps its canonical text, and stored hashes stay valid), else the
    /// exact `Decimal`.
    static func number(_ double: Double, exactly decimal: Decimal?) -> JSONValue {
        guard let decimal, decimal.isFinite, Decimal(string: "\(double)") != decimal else { return .double(double) }
        return .decimal(decimal)
    }

    /// Parses JSON text; the error says what was wrong.
    package static func parse(_ text: String) throws(WorkflowError) -> JSONValue {
        do {
            return try decodeDocument(Array(text.utf8))
        } catch {
            throw .invalid("arguments", "is not valid JSON (\(Self.describe(error)))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .dataCorrupted(let context): return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
            default: return "\(decoding)"
            }
        }
        return "\(error)"
    }

    /// Canonical text: object keys sorted, no insignificant whitespace, numbers in shortest form.
    /// Two argument values that mean the same JSON produce the same text, so the same hash.
    package var canonicalText: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite, d == d.rounded(), abs(d) < 9.007_199_254_740_992e15 {
                out += String(Int64(d))
            } else {
                out += "\(d)"
            }
        case .decimal(let d): out += d.description
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                o[key]!.write(into: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// SHA-256 of the canonical text, lowercase hex. Approvals are bound to this hash.
    package var canonicalHash: String {
        SHA256.hash(data: Array(canonicalText.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}
