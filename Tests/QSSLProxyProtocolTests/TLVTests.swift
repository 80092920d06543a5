import QSSLProxyProtocol
import Testing

@Suite("TLVs: SSL and Q-SSL")
struct TLVTests {
    @Test("SSL TLV known bytes: client flags, big-endian verify, sub-TLVs in order")
    func sslBytes() throws {
        let tlv = try ProxyTLV.ssl(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384")
        #expect(tlv.type == 0x20)
        let expected: [UInt8] = [0x01, 0, 0, 0, 1] + [0x21, 0, 7] + ascii("TLSv1.3") + [0x23, 0, 22] + ascii("TLS_AES_256_GCM_SHA384")
        #expect(tlv.value == expected)
        let info = try #require(tlv.sslInfo)
        #expect(info.client == .ssl)
        #expect(!info.clientCertificateVerified)
        #expect(info.commonName == nil)
    }

    @Test(
        "client certificate states map to flags and verify",
        arguments: [
            (ProxyTLV.ClientCertificate.none, UInt8(0x01), UInt32(1), false),
            (.presented(verified: true), 0x07, 0, true),
            (.presented(verified: false), 0x07, 1, false),
            (.presentedEarlierInSession(verified: true), 0x05, 0, true),
            (.presentedEarlierInSession(verified: false), 0x05, 1, false)
        ])
    func certificateFlags(_ cert: ProxyTLV.ClientCertificate, _ flags: UInt8, _ verify: UInt32, _ verified: Bool) throws {
        let info = try #require(try ProxyTLV.ssl(version: nil, cipher: nil, clientCertificate: cert).sslInfo)
        #expect(info.client.rawValue == flags)
        #expect(info.verify == verify)
        #expect(info.clientCertificateVerified == verified)
    }

    @Test("SSL info round-trips every field, unknown sub-TLVs kept")
    func sslRoundTrip() throws {
        let info = ProxyTLV.SSLInfo(
            client: [.ssl, .certificateOnConnection], verify: 0x0102_0304, version: "TLSv1.2",
            commonName: "Ünïcode CN", cipher: "ECDHE-RSA-AES128-GCM-SHA256", signatureAlgorithm: "SHA256",
            keyAlgorithm: "RSA2048", group: "secp256r1", signatureScheme: "rsa_pss_rsae_sha256",
            clientCertificate: [0x30, 0x82, 0x01], otherSubTLVs: [ProxyTLV(type: 0x2F, value: [9])])
        let value = try info.encode()
        #expect(Array(value[0..<5]) == [0x03, 0x01, 0x02, 0x03, 0x04])
        #expect(try ProxyTLV.SSLInfo(decoding: value) == info)
        #expect(try ProxyTLV.ssl(info).sslInfo == info)
        #expect(ProxyTLV(type: 0x21, value: value).sslInfo == nil)  // wrong type
    }

    @Test("SSL TLV decoding rejects malformed values")
    func sslRejects() {
        func why(_ value: [UInt8]) -> String? {
            do {
                _ = try ProxyTLV.SSLInfo(decoding: value)
                return nil
            } catch { return error.message }
        }
        #expect(why([1, 0, 0, 0]).map { $0.contains("shorter than 5") } == true)
        #expect(why([1, 0, 0, 0, 0, 0x21, 0]).map { $0.contains("truncated TLV header") } == true)
        #expect(why([1, 0, 0, 0, 0, 0x21, 0, 5, 0x41]).map { $0.contains("length 5 overruns") } == true)
        #expect(why([1, 0, 0, 0, 0, 0x21, 0, 1, 0xFF]).map { $0.contains("VERSION is not valid UTF-8") } == true)
        #expect(why([1, 0, 0, 0, 0, 0x23, 0, 1, 0x41, 0x23, 0, 1, 0x42]).map { $0.contains("CIPHER more than once") } == true)
        #expect(why([1, 0, 0, 0, 0]) == nil)
    }

    @Test("Q-SSL TLV known bytes")
    func qsslBytes() throws {
        let info = ProxyTLV.QSSLInfo(groupCodePoint: 0x11EC, groupName: "X25519MLKEM768", postQuantum: true, resumed: true)
        let tlv = try ProxyTLV.qssl(info)
        #expect(tlv.type == 0xE0)
        #expect(ProxyTLV.qsslType == 0xE0)
        #expect(tlv.value == [0x01, 0x11, 0xEC, 0x03, 14] + ascii("X25519MLKEM768"))
        #expect(tlv.qsslInfo == info)
        let classical = ProxyTLV.QSSLInfo(groupCodePoint: 0x001D, groupName: "x25519", postQuantum: false, resumed: false)
        #expect(try classical.encode() == [0x01, 0x00, 0x1D, 0x00, 6] + ascii("x25519"))
        #expect(try ProxyTLV.QSSLInfo(decoding: classical.encode()) == classical)
        let resumedOnly = ProxyTLV.QSSLInfo(groupCodePoint: 0x0201, groupName: "", postQuantum: false, resumed: true)
        #expect(try resumedOnly.encode() == [1, 0x02, 0x01, 0x02, 0])
        #expect(try ProxyTLV.QSSLInfo(decoding: resumedOnly.encode()) == resumedOnly)
    }

    @Test("Q-SSL TLV: reserved bits and trailing bytes are ignored; bad versions, lengths and UTF-8 are not")
    func qsslDecoding() throws {
        let lenient = try ProxyTLV.QSSLInfo(decoding: [1, 0x11, 0xEC, 0xFD, 2] + ascii("ab") + [0xEE, 0xEE])
        #expect(lenient == ProxyTLV.QSSLInfo(groupCodePoint: 0x11EC, groupName: "ab", postQuantum: true, resumed: false))
        func why(_ value: [UInt8]) -> String? {
            do {
                _ = try ProxyTLV.QSSLInfo(decoding: value)
                return nil
            } catch { return error.message }
        }
        #expect(why([1, 0, 0, 0]).map { $0.contains("shorter than the 5-byte") } == true)
        #expect(why([2, 0, 0, 0, 0]).map { $0.contains("unsupported format version 2") } == true)
        #expect(why([1, 0, 0, 0, 3, 0x41]).map { $0.contains("length 3 overruns") } == true)
        #expect(why([1, 0, 0, 0, 1, 0xC0]).map { $0.contains("not valid UTF-8") } == true)
        #expect(ProxyTLV(type: 0xE0, value: [9]).qsslInfo == nil)
        let longName = ProxyTLV.QSSLInfo(groupCodePoint: 1, groupName: String(repeating: "x", count: 256), postQuantum: false, resumed: false)
        #expect(throws: ProxyProtocolError.self) { try longName.encode() }
    }

    @Test("simple TLV helpers")
    func helpers() throws {
        #expect(ProxyTLV.alpn(ascii("http/1.1")) == ProxyTLV(type: 1, value: ascii("http/1.1")))
        #expect(ProxyTLV.authority("example.com") == ProxyTLV(type: 2, value: ascii("example.com")))
        #expect(ProxyTLV.noop(count: 3) == ProxyTLV(type: 4, value: [0, 0, 0]))
        #expect(try ProxyTLV.uniqueID([1, 2]) == ProxyTLV(type: 5, value: [1, 2]))
        #expect(ProxyTLV.netns("ns1") == ProxyTLV(type: 0x30, value: ascii("ns1")))
        #expect(ProxyTLV(type: 2, value: [0xFF]).stringValue == nil)
        let header = ProxyHeader(transport: .unspecified, tlvs: [.authority("a"), .authority("b")])
        #expect(header.authority == "a")
        #expect(header.tlv(ofType: 0x99) == nil)
        #expect(header.sslInfo == nil && header.qsslInfo == nil && header.crc32c == nil)
    }
}
