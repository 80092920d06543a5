import QSSLPKCS11
import Testing

@Suite("PKCS#11 URIs (RFC 7512)")
struct PKCS11URITests {
    @Test("a URI names token, object, type and id, %-decoded")
    func parsesPathAttributes() throws {
        let uri = try PKCS11URI("pkcs11:token=Q-SSL%20test;object=server%3Bkey;type=private;id=%01%A0%ff")
        #expect(uri.token == "Q-SSL test")
        #expect(uri.object == "server;key")
        #expect(uri.type == .private)
        #expect(uri.id == [0x01, 0xA0, 0xFF])
    }

    @Test("query attributes give the module and the PIN file")
    func parsesQuery() throws {
        let uri = try PKCS11URI("pkcs11:token=t;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
        #expect(uri.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(uri.pinSource == "/etc/pin")
        #expect(!uri.hasPINValue)
    }

    @Test("a pin-value is noticed and never written back")
    func pinValueIsNotKept() throws {
        let uri = try PKCS11URI("pkcs11:token=t?pin-value=1234")
        #expect(uri.hasPINValue)
        #expect(!uri.description.contains("1234"))
    }

    @Test("the description parses back to the same URI")
    func roundTrip() throws {
        var uri = PKCS11URI(token: "my token", object: "a/b;c", type: .certificate, id: [0, 1, 0xfe])
        uri.slotID = 7
        #expect(try PKCS11URI(uri.description) == uri)
    }

    @Test(
        "malformed URIs are rejected with the reason",
        arguments: [
            ("file:/x", "does not start with pkcs11:"),
            ("pkcs11:token=a;token=b", "appears twice"),
            ("pkcs11:token=a;bogus=1", "unknown attribute bogus"),
            ("pkcs11:object=%4", "malformed %-escape"),
            ("pkcs11:object=%zz", "malformed %-escape"),
            ("pkcs11:type=secret", "type secret"),
            ("pkcs11:slot-id=x", "slot-id x"),
            ("pkcs11:token", "has no value")
        ])
    func rejects(text: String, reason: String) {
        #expect {
            try PKCS11URI(text)
        } throws: { error in
            guard let e = error as? PKCS11Error else { return false }
            return e.reason == .invalidURI && e.description.contains(reason)
        }
    }

    @Test("vendor attributes (x-) are accepted")
    func vendorAttributes() throws {
        let uri = try PKCS11URI("pkcs11:token=t;x-vendor=1?x-other=2")
        #expect(uri.token == "t")
    }
}
