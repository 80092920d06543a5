/// A PKCS#11 URI (RFC 7512): which token and which object.
///
/// ```swift
/// let uri = try PKCS11URI("pkcs11:token=Q-SSL%20test;object=server;type=private")
/// uri.token    // "Q-SSL test"
/// ```
///
/// Path attributes select the module, slot, token and object; query attributes name the module
/// (`module-path`) and where the PIN comes from (`pin-source=file:…`). A `pin-value` is parsed
/// but never used: PINs do not belong on command lines (`PKCS11PIN`).
public struct PKCS11URI: Hashable, Sendable, CustomStringConvertible {
    /// RFC 7512 §2.3 `type`.
    public struct ObjectType: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public static let `private` = ObjectType("private")
        public static let `public` = ObjectType("public")
        public static let certificate = ObjectType("cert")
        public static let secretKey = ObjectType("secret-key")
        public static let data = ObjectType("data")
        static let all: [ObjectType] = [.private, .public, .certificate, .secretKey, .data]
        public var description: String { name }
    }

    // Token and slot.
    public var token: String?
    public var manufacturer: String?
    public var model: String?
    public var serial: String?
    public var slotID: UInt?
    public var slotDescription: String?
    public var slotManufacturer: String?
    public var libraryManufacturer: String?
    public var libraryDescription: String?
    // Object.
    public var object: String?
    public var type: ObjectType?
    public var id: [UInt8]?
    // Query.
    public var modulePath: String?
    public var moduleName: String?
    /// `pin-source`: a file path (with or without a `file:` prefix).
    public var pinSource: String?
    /// Whether the URI carried a `pin-value` (which Q-SSL refuses to use).
    public private(set) var hasPINValue = false

    public init(token: String? = nil, object: String? = nil, type: ObjectType? = nil, id: [UInt8]? = nil) {
        self.token = token
        self.object = object
        self.type = type
        self.id = id
    }

    /// Parses `pkcs11:path?query`.
    /// - Throws: `.invalidURI` for another scheme, a malformed %-escape, a repeated or unknown
    ///   attribute, or a bad `type`, `id` or `slot-id`.
    public init(_ text: String) throws(PKCS11Error) {
        guard text.lowercased().hasPrefix("pkcs11:") else { throw Self.invalid(text, "does not start with pkcs11:") }
        let rest = text.dropFirst("pkcs11:".count)
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var seen: Set<String> = []
        for attribute in parts[0].split(separator: ";", omittingEmptySubsequences: true) {
            let (name, raw) = try Self.nameValue(attribute, in: text)
            guard seen.insert(name).inserted else { throw Self.invalid(text, "attribute \(name) appears twice") }
            let value = try Self.percentDecode(raw, in: text)
            let string = String(decoding: value, as: UTF8.self)
            switch name {
            case "token": token = string
            case "manufacturer": manufacturer = string
            case "model": model = string
            case "serial": serial = string
            case "slot-description": slotDescription = string
            case "slot-manufacturer": slotManufacturer = string
            case "library-manufacturer": libraryManufacturer = string
            case "library-description": libraryDescription = string
            case "library-version": break
            case "object": object = string
            case "id": id = value
            case "slot-id":
                guard let n = UInt(string) else { throw Self.invalid(text, "slot-id \(string) is not a number") }
                slotID = n
            case "type":
                guard let t = ObjectType.all.first(where: { $0.name == string }) else {
                    throw Self.invalid(text, "type \(string) is not one of public, private, cert, secret-key, data")
                }
                type = t
            default:
                // RFC 7512 §2.3: vendor attributes start with "x-"; any other unknown attribute
                // would make the URI match things it was not meant to.
                guard name.hasPrefix("x-") else { throw Self.invalid(text, "unknown attribute \(name)") }
            }
        }
        if parts.count == 2 {
            var seenQuery: Set<String> = []
            for attribute in parts[1].split(separator: "&", omittingEmptySubsequences: true) {
                let (name, raw) = try Self.nameValue(attribute, in: text)
                guard seenQuery.insert(name).inserted else { throw Self.invalid(text, "query attribute \(name) appears twice") }
                let string = String(decoding: try Self.percentDecode(raw, in: text), as: UTF8.self)
                switch name {
                case "module-path": modulePath = string
                case "module-name": moduleName = string
                case "pin-source": pinSource = string.hasPrefix("file:") ? String(string.dropFirst(5)) : string
                case "pin-value": hasPINValue = true
                default:
                    guard name.hasPrefix("x-") else { throw Self.invalid(text, "unknown query attribute \(name)") }
                }
            }
        }
    }

    /// The URI in RFC 7512 form (a `pin-value` is never written).
    public var description: String {
        var path: [String] = []
        func add(_ name: String, _ value: String?) { if let value { path.append("\(name)=\(Self.percentEncode(Array(value.utf8)))") } }
        add("token", token)
        add("manufacturer", manufacturer)
        add("model", model)
        add("serial", serial)
        add("slot-description", slotDescription)
        add("slot-manufacturer", slotManufacturer)
        if let slotID { path.append("slot-id=\(slotID)") }
        add("object", object)
        if let type { path.append("type=\(type.name)") }
        if let id { path.append("id=" + id.map { "%" + ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()) }
        var query: [String] = []
        if let modulePath { query.append("module-path=\(Self.percentEncode(Array(modulePath.utf8), keepingSlash: true))") }
        if let moduleName { query.append("module-name=\(Self.percentEncode(Array(moduleName.utf8)))") }
        if let pinSource { query.append("pin-source=\(Self.percentEncode(Array(("file:" + pinSource).utf8), keepingSlash: true))") }
        return "pkcs11:" + path.joined(separator: ";") + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// Whether a token matches the URI's token attributes.
    func matches(token info: PKCS11TokenInfo, slot: PKCS11Slot) -> Bool {
        if let token, token != info.label { return false }
        if let manufacturer, manufacturer != info.manufacturer { return false }
        if let model, model != info.model { return false }
        if let serial, serial != info.serialNumber { return false }
        if let slotID, slotID != slot.id { return false }
        if let slotDescription, slotDescription != slot.description { return false }
        if let slotManufacturer, slotManufacturer != slot.manufacturer { return false }
        return true
    }

    private static func nameValue(_ attribute: Substring, in text: String) throws(PKCS11Error) -> (String, Substring) {
        guard let equals = attribute.firstIndex(of: "=") else { throw invalid(text, "attribute \(attribute) has no value") }
        return (attribute[..<equals].lowercased(), attribute[attribute.index(after: equals)...])
    }

    /// RFC 3986 §2.1 percent-decoding.
    static func percentDecode(_ s: Substring, in text: String) throws(PKCS11Error) -> [UInt8] {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            guard b == UInt8(ascii: "%") else {
                out.append(b)
                continue
            }
            guard bytes.count >= 2, let hi = hexValue(bytes[bytes.startIndex]), let lo = hexValue(bytes[bytes.startIndex + 1]) else {
                throw invalid(text, "malformed %-escape")
            }
            out.append(hi << 4 | lo)
            bytes = bytes.dropFirst(2)
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// RFC 7512 §2.3: unreserved characters (and ':' '[' ']' '@' '!' '$' '\'' '(' ')' '*' '+' ',' '=' '&'
    /// in path values) stay as they are; the rest is %-encoded.
    static func percentEncode(_ bytes: [UInt8], keepingSlash: Bool = false) -> String {
        var out = ""
        for b in bytes {
            let c = Character(Unicode.Scalar(b))
            if b < 0x80, c.isLetter || c.isNumber || "-._~:[]@!$'()*+,".contains(c) || (keepingSlash && c == "/") {
                out.append(c)
            } else {
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }

    private static func invalid(_ text: String, _ why: String) -> PKCS11Error {
        // The URI is echoed without its query: a pin-value must never reach a log.
        var shown = text.split(separator: "?", maxSplits: 1).first.map(String.init) ?? text
        // …and a pin-value misplaced in the path is redacted too.
        shown = shown.split(separator: ";", omittingEmptySubsequences: false)
            .map { $0.lowercased().hasPrefix("pin-value") ? "pin-value=(redacted)" : String($0) }.joined(separator: ";")
        return PKCS11Error(.invalidURI, "\(shown): \(why.lowercased().contains("pin-value") ? "pin-value is not accepted" : why)")
    }
}
