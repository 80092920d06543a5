/// Why a sequence of bytes is not the TLS structure it claims to be.
///
/// Every reason names the field, so a diagnostic says *where* a peer's message went wrong.
/// Decode errors map to the `decode_error` alert, except duplicate extensions and values that
/// decode but are forbidden, which are `illegal_parameter`. A struct with static constructors
/// that read like cases, so that reasons can be added without breaking callers.
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable, Sendable {
        case truncated(field: String)
        case trailingData(in: String)
        case illegalEmptyList(String)
        case lengthOutOfRange(field: String, length: Int)
        case duplicateExtension(ExtensionType)
        case invalidValue(field: String)
        case illegalValue(field: String)
    }
    let kind: Kind

    /// The input ended inside the named field.
    public static func truncated(field: String) -> DecodeError { DecodeError(kind: .truncated(field: field)) }
    /// Bytes were left over after the named structure.
    public static func trailingData(in name: String) -> DecodeError { DecodeError(kind: .trailingData(in: name)) }
    /// A vector that must not be empty was empty.
    public static func illegalEmptyList(_ name: String) -> DecodeError { DecodeError(kind: .illegalEmptyList(name)) }
    /// A length is outside what the field allows.
    public static func lengthOutOfRange(field: String, length: Int) -> DecodeError { DecodeError(kind: .lengthOutOfRange(field: field, length: length)) }
    /// The same extension appeared twice in one message.
    public static func duplicateExtension(_ type: ExtensionType) -> DecodeError { DecodeError(kind: .duplicateExtension(type)) }
    /// A field's encoding is invalid (e.g. an odd length for a list of 16-bit values).
    public static func invalidValue(field: String) -> DecodeError { DecodeError(kind: .invalidValue(field: field)) }
    /// A field decodes but holds a value the protocol forbids (illegal_parameter, RFC 8446 §6.2).
    public static func illegalValue(field: String) -> DecodeError { DecodeError(kind: .illegalValue(field: field)) }

    /// Whether the bytes decoded but a value is forbidden (illegal_parameter rather than decode_error).
    public var isIllegalValue: Bool {
        switch kind {
        case .duplicateExtension, .illegalValue: return true
        default: return false
        }
    }

    public var description: String {
        switch kind {
        case .truncated(let field): return "truncated \(field)"
        case .trailingData(let name): return "trailing data after \(name)"
        case .illegalEmptyList(let name): return "empty \(name)"
        case .lengthOutOfRange(let field, let length): return "length \(length) out of range for \(field)"
        case .duplicateExtension(let type): return "duplicate extension \(type)"
        case .invalidValue(let field): return "invalid encoding of \(field)"
        case .illegalValue(let field): return "forbidden value in \(field)"
        }
    }
}
