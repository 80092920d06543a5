import CPKCS11
import Foundation
import QSSL

/// A CK_ATTRIBUTE array whose values stay allocated as long as the template lives.
final class AttributeTemplate {
    private(set) var attributes: [CK_ATTRIBUTE] = []
    private var buffers: [UnsafeMutableRawPointer] = []

    init() {}

    deinit { buffers.forEach { $0.deallocate() } }

    @discardableResult
    func add(_ type: CK_ATTRIBUTE_TYPE, bytes: [UInt8]) -> AttributeTemplate {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) } }
        buffers.append(buffer)
        attributes.append(CK_ATTRIBUTE(type: type, pValue: buffer, ulValueLen: CK_ULONG(bytes.count)))
        return self
    }

    @discardableResult
    func add(_ type: CK_ATTRIBUTE_TYPE, ulong value: CK_ULONG) -> AttributeTemplate {
        add(type, bytes: withUnsafeBytes(of: value) { Array($0) })
    }

    @discardableResult
    func add(_ type: CK_ATTRIBUTE_TYPE, bool value: Bool) -> AttributeTemplate {
        add(type, bytes: [value ? 1 : 0])
    }

    @discardableResult
    func add(_ type: CK_ATTRIBUTE_TYPE, string value: String) -> AttributeTemplate {
        add(type, bytes: Array(value.utf8))
    }

    var count: CK_ULONG { CK_ULONG(attributes.count) }
}

/// Object search and attribute reads.
extension CK_FUNCTION_LIST {
    /// C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal.
    func findObjects(_ session: CK_SESSION_HANDLE, _ template: AttributeTemplate, limit: Int = 256) throws(PKCS11Error) -> [CK_OBJECT_HANDLE] {
        var attributes = template.attributes
        try check(C_FindObjectsInit!(session, &attributes, template.count), "C_FindObjectsInit")
        var handles = [CK_OBJECT_HANDLE](repeating: 0, count: limit)
        var found: CK_ULONG = 0
        let rv = C_FindObjects!(session, &handles, CK_ULONG(limit), &found)
        _ = C_FindObjectsFinal!(session)
        try check(rv, "C_FindObjects")
        return Array(handles.prefix(Int(found)))
    }

    /// One attribute's value, or nil when the object has none or it is sensitive.
    func attribute(_ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ type: CK_ATTRIBUTE_TYPE) throws(PKCS11Error) -> [UInt8]? {
        var attribute = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        var rv = C_GetAttributeValue!(session, object, &attribute, 1)
        if rv == 0x11 || rv == 0x12 { return nil }  // CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID
        try check(rv, "C_GetAttributeValue", "attribute 0x\(String(type, radix: 16))")
        // CK_UNAVAILABLE_INFORMATION
        guard attribute.ulValueLen != CK_ULONG.max else { return nil }
        var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
        rv = value.withUnsafeMutableBytes { raw in
            attribute.pValue = raw.baseAddress
            return C_GetAttributeValue!(session, object, &attribute, 1)
        }
        try check(rv, "C_GetAttributeValue", "attribute 0x\(String(type, radix: 16))")
        return Array(value.prefix(Int(attribute.ulValueLen)))
    }

    /// A secret attribute's value (a derived key's CKA_VALUE) of exactly `length` bytes, read
    /// straight into a `SecretBytes`; nil when the object has none, it is sensitive, or its
    /// length differs.
    func secretAttribute(
        _ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ type: CK_ATTRIBUTE_TYPE,
        length: Int
    ) throws(PKCS11Error) -> SecretBytes? {
        var attribute = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        var rv = C_GetAttributeValue!(session, object, &attribute, 1)
        if rv == 0x11 || rv == 0x12 { return nil }  // CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID
        try check(rv, "C_GetAttributeValue", "attribute 0x\(String(type, radix: 16))")
        guard attribute.ulValueLen == CK_ULONG(length) else { return nil }
        let secret = SecretBytes(count: length) { raw in
            attribute.pValue = raw.baseAddress
            rv = C_GetAttributeValue!(session, object, &attribute, 1)
        }
        try check(rv, "C_GetAttributeValue", "attribute 0x\(String(type, radix: 16))")
        return attribute.ulValueLen == CK_ULONG(length) ? secret : nil
    }

    func ulongAttribute(_ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ type: CK_ATTRIBUTE_TYPE) throws(PKCS11Error) -> CK_ULONG? {
        guard let bytes = try attribute(session, object, type), bytes.count == MemoryLayout<CK_ULONG>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: CK_ULONG.self) }
    }
}
