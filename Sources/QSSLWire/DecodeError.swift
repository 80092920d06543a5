/// Why a sequence of bytes is not the TLS structure it claims to be.
///
/// Every case names the field, so a diagnostic says *where* a peer's message went wrong.
/// All decode errors map to the `decode_error` alert, except where the core decides that a
/// well-formed but forbidden value is `illegal_parameter`.
public enum DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input ended inside the named field.
    case truncated(field: String)
    /// Bytes were left over after the named structure.
    case trailingData(in: String)
    /// A vector that must not be empty was empty.
    case illegalEmptyList(String)
    /// A length is outside what the field allows.
    case lengthOutOfRange(field: String, length: Int)
    /// The same extension appeared twice in one message.
    case duplicateExtension(ExtensionType)
    /// A field's encoding is invalid (e.g. an odd length for a list of 16-bit values).
    case invalidValue(field: String)
    /// A field decodes but holds a value the protocol forbids (illegal_parameter, RFC 8446 §6.2).
    case illegalValue(field: String)

    public var description: String {
        switch self {
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
