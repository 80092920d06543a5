import Crypto
import Foundation
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Testing
import _CryptoExtras

@testable import QSSL

/// The values of RFC 8448 §3, parsed from the RFC's own text (Resources/rfc8448-section3.txt).
struct RFC8448Trace {
    private var values: [String: [UInt8]] = [:]

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "rfc8448-section3", withExtension: "txt", subdirectory: "Resources"))
        var heading = ""
        var current: (key: String, count: Int)?
        for raw in try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("{"), line.hasSuffix(":") {
                heading = String(line.dropLast()).replacingOccurrences(of: "  ", with: " ")
                current = nil
            } else if let open = line.range(of: " octets):") {
                let head = line[..<open.lowerBound]
                guard let paren = head.lastIndex(of: "(") else { continue }
                let name = head[..<paren].trimmingCharacters(in: .whitespaces)
                let count = Int(head[head.index(after: paren)...]) ?? -1
                let key = "\(heading) / \(name)"
                values[key] = Self.hex(line[open.upperBound...])
                current = (key, count)
            } else if let c = current, !line.isEmpty, line.allSatisfy({ $0.isHexDigit || $0 == " " }) {
                values[c.key, default: []] += Self.hex(Substring(line))
            } else {
                current = nil
            }
        }
    }

    static func hex(_ s: Substring) -> [UInt8] {
        s.split(separator: " ").compactMap { UInt8($0, radix: 16) }
    }

    /// `"{server} derive secret \"tls13 c hs traffic\""`, `"expanded"`.
    func callAsFunction(_ heading: String, _ name: String) throws -> [UInt8] {
        try #require(values["\(heading) / \(name)"], "RFC 8448 value '\(heading) / \(name)' missing")
    }
}

@Suite("RFC 8448 §3 simple 1-RTT handshake (known answers)")
struct RFC8448Tests {
    let rfc: RFC8448Trace
    let hkdf = HKDF(primitives: SwiftCryptoPrimitives(), hash: .sha256)
    init() throws { rfc = try RFC8448Trace() }

    var clientHello: [UInt8] { get throws { try rfc("{client} send handshake record", "payload") } }
    var serverHello: [UInt8] { get throws { try rfc("{server} construct a ServerHello handshake message", "ServerHello") } }
    var serverFlight: [UInt8] {
        get throws {
            try rfc("{server} construct an EncryptedExtensions handshake message", "EncryptedExtensions")
                + rfc("{server} construct a Certificate handshake message", "Certificate")
                + rfc("{server} construct a CertificateVerify handshake message", "CertificateVerify")
                + rfc("{server} construct a Finished handshake message", "Finished")
        }
    }

    @Test("the trace file has the RFC's values with their stated lengths")
    func traceParses() throws {
        #expect(try clientHello.count == 196)
        #expect(try serverHello.count == 90)
        #expect(try serverFlight.count == 40 + 445 + 136 + 36)
    }

    @Test("every key-schedule secret and traffic key of §3 is reproduced")
    func keySchedule() throws {
        // RFC 8448 §3: x25519 between the listed key pairs.
        let clientKey = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: rfc("{client} create an ephemeral x25519 key pair", "private key"))
        #expect(Array(clientKey.publicKey.rawRepresentation) == (try rfc("{client} create an ephemeral x25519 key pair", "public key")))
        let serverPublic = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: rfc("{server} create an ephemeral x25519 key pair", "public key"))
        let ikm = try clientKey.sharedSecretFromKeyAgreement(with: serverPublic).withUnsafeBytes { Array($0) }
        #expect(ikm == (try rfc("{server} extract secret \"handshake\"", "IKM")))

        let early = TLS13KeySchedule.Early(hkdf: hkdf)
        #expect(early.secret == (try rfc("{server} extract secret \"early\"", "secret")))
        #expect(
            hkdf.deriveSecret(early.secret, label: "derived", transcriptHash: hkdf.emptyHash)
                == (try rfc("{server} derive secret for handshake \"tls13 derived\"", "expanded")))
        let handshake = early.handshake(sharedSecret: SecretBytes(ikm))
        #expect(handshake.secret == (try rfc("{server} extract secret \"handshake\"", "secret")))

        var transcript = Transcript()
        transcript.append(raw: try clientHello + serverHello)
        let th1 = transcript.hash(hkdf)
        #expect(th1 == (try rfc("{server} derive secret \"tls13 c hs traffic\"", "hash")))
        let cHS = handshake.clientTrafficSecret(transcriptHash: th1)
        let sHS = handshake.serverTrafficSecret(transcriptHash: th1)
        #expect(cHS == (try rfc("{server} derive secret \"tls13 c hs traffic\"", "expanded")))
        #expect(sHS == (try rfc("{server} derive secret \"tls13 s hs traffic\"", "expanded")))

        let serverKeys = TrafficKeys(secret: sHS, hkdf: hkdf, aead: .aes128GCM)
        #expect(serverKeys.key == (try rfc("{server} derive write traffic keys for handshake data", "key expanded")))
        #expect(serverKeys.iv == (try rfc("{server} derive write traffic keys for handshake data", "iv expanded")))
        let clientKeys = TrafficKeys(secret: cHS, hkdf: hkdf, aead: .aes128GCM)
        #expect(clientKeys.key == (try rfc("{server} derive read traffic keys for handshake data", "key expanded")))
        #expect(clientKeys.iv == (try rfc("{server} derive read traffic keys for handshake data", "iv expanded")))

        let master = handshake.master()
        #expect(
            hkdf.deriveSecret(handshake.secret, label: "derived", transcriptHash: hkdf.emptyHash)
                == (try rfc("{server} derive secret for master \"tls13 derived\"", "expanded")))
        #expect(master.secret == (try rfc("{server} extract secret \"master\"", "secret")))

        // Server Finished covers ClientHello … CertificateVerify.
        let flight = try serverFlight
        transcript.append(raw: Array(flight.prefix(40 + 445 + 136)))
        #expect(
            hkdf.expandLabel(secret: sHS, label: "finished", context: [], length: 32)
                == (try rfc("{server} calculate finished \"tls13 finished\"", "expanded")))
        #expect(
            TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: sHS, transcriptHash: transcript.hash(hkdf))
                == (try rfc("{server} calculate finished \"tls13 finished\"", "finished")))

        transcript.append(raw: Array(flight.suffix(36)))
        let th2 = transcript.hash(hkdf)
        #expect(th2 == (try rfc("{server} derive secret \"tls13 c ap traffic\"", "hash")))
        let cAP = master.clientTrafficSecret(transcriptHash: th2)
        let sAP = master.serverTrafficSecret(transcriptHash: th2)
        #expect(cAP == (try rfc("{server} derive secret \"tls13 c ap traffic\"", "expanded")))
        #expect(sAP == (try rfc("{server} derive secret \"tls13 s ap traffic\"", "expanded")))
        #expect(master.exporterMasterSecret(transcriptHash: th2) == (try rfc("{server} derive secret \"tls13 exp master\"", "expanded")))
        let sAPKeys = TrafficKeys(secret: sAP, hkdf: hkdf, aead: .aes128GCM)
        #expect(sAPKeys.key == (try rfc("{server} derive write traffic keys for application data", "key expanded")))
        #expect(sAPKeys.iv == (try rfc("{server} derive write traffic keys for application data", "iv expanded")))
        let cAPKeys = TrafficKeys(secret: cAP, hkdf: hkdf, aead: .aes128GCM)
        #expect(cAPKeys.key == (try rfc("{client} derive write traffic keys for application data", "key expanded")))
        #expect(cAPKeys.iv == (try rfc("{client} derive write traffic keys for application data", "iv expanded")))

        #expect(
            hkdf.expandLabel(secret: cHS, label: "finished", context: [], length: 32)
                == (try rfc("{client} calculate finished \"tls13 finished\"", "expanded")))
        let clientFinished = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: cHS, transcriptHash: th2)
        #expect(clientFinished == (try rfc("{client} calculate finished \"tls13 finished\"", "finished")))

        transcript.append(raw: try rfc("{client} construct a Finished handshake message", "Finished"))
        let th3 = transcript.hash(hkdf)
        #expect(th3 == (try rfc("{client} derive secret \"tls13 res master\"", "hash")))
        #expect(master.resumptionMasterSecret(transcriptHash: th3) == (try rfc("{client} derive secret \"tls13 res master\"", "expanded")))
    }

    @Test("a client started from the RFC's ClientHello answers the RFC's server flight with a byte-identical Finished")
    func clientReplay() throws {
        let trace = rfc
        var context = HandshakeContext(primitives: SwiftCryptoPrimitives(), recordTrace: false)
        let helloBytes = try clientHello
        let hello = try HandshakeMessage(type: .clientHello, body: Array(helloBytes.dropFirst(4))).decode(as: ClientHello.self)
        var config = ClientConfiguration(provider: .swiftCrypto, verifier: RFC8448Verifier())
        config.middleboxCompatibility = false
        config.groups = [.x25519]
        config.cipherSuites = [.aes128GCMSHA256]
        var state = ExpectServerHello(
            config: config, serverName: "server", clientHello: hello,
            pending: [
                FixedX25519(
                    key: try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: trace("{client} create an ephemeral x25519 key pair", "private key")))
            ])
        state.transcript.append(raw: helloBytes)
        var connection = TLSConnection.replayingClient(state, context: context)
        _ = context

        // ServerHello in plaintext, then the encrypted flight under the RFC's server handshake key.
        var wire: [UInt8] = [22, 3, 3, 0, 90] + (try serverHello)
        let key = try trace("{server} derive write traffic keys for handshake data", "key expanded")
        let iv = try trace("{server} derive write traffic keys for handshake data", "iv expanded")
        wire += try Self.protect(try serverFlight + [22], key: key, iv: iv, sequence: 0)
        let events = try connection.receive(wire)
        guard let summary = events.first?.handshakeSummary else {
            Issue.record("handshake did not complete: \(events)")
            return
        }
        #expect(summary.cipherSuite == .tlsAES128GCMSHA256)
        #expect(summary.group == .x25519)
        #expect(summary.peerSignatureScheme == .rsaPSSRSAESHA256)

        // The client's Finished, decrypted with the RFC's client handshake key.
        let output = connection.takeOutput()
        let clientKey = try trace("{server} derive read traffic keys for handshake data", "key expanded")
        let clientIV = try trace("{server} derive read traffic keys for handshake data", "iv expanded")
        #expect(output.count == 5 + 36 + 1 + 16)
        let plaintext = try Self.unprotect(Array(output), key: clientKey, iv: clientIV, sequence: 0)
        #expect(plaintext == (try trace("{client} construct a Finished handshake message", "Finished")) + [22])
    }

    /// TLSInnerPlaintext sealed as one record, with swift-crypto directly (not Q-SSL's record layer).
    static func protect(_ inner: [UInt8], key: [UInt8], iv: [UInt8], sequence: UInt64) throws -> [UInt8] {
        let header: [UInt8] = [23, 3, 3, UInt8((inner.count + 16) >> 8), UInt8((inner.count + 16) & 0xFF)]
        let box = try AES.GCM.seal(inner, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce(iv, sequence)), authenticating: header)
        return header + Array(box.ciphertext) + Array(box.tag)
    }

    static func unprotect(_ record: [UInt8], key: [UInt8], iv: [UInt8], sequence: UInt64) throws -> [UInt8] {
        let body = record.dropFirst(5)
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce(iv, sequence)), ciphertext: body.dropLast(16), tag: body.suffix(16))
        return Array(try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Array(record.prefix(5))))
    }

    static func nonce(_ iv: [UInt8], _ sequence: UInt64) -> [UInt8] {
        var n = iv
        for i in 0..<8 { n[11 - i] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        return n
    }
}

/// The RFC's client key share, fixed.
struct FixedX25519: PendingKeyExchange {
    let key: Curve25519.KeyAgreement.PrivateKey
    var group: NamedGroup { .x25519 }
    func complete(serverShare: [UInt8]) throws(TLSError) -> SecretBytes {
        do {
            return try key.sharedSecretFromKeyAgreement(with: .init(rawRepresentation: serverShare)).withUnsafeBytes { SecretBytes(copying: $0) }
        } catch {
            throw .misbehaved(.sentInvalidKeyShare)
        }
    }
}

/// RFC 8448's server certificate is a 1024-bit RSA self-signed certificate that expired in
/// July 2026: trust it as is, but check the CertificateVerify signature with its key.
struct RFC8448Verifier: CertificateVerifier {
    var supportedSchemes: [SignatureScheme] { [.rsaPSSRSAESHA256] }
    var supportedCertificateSchemes: [SignatureScheme] { [.rsaPKCS1SHA256] }
    var trustPolicyDigest: [UInt8] { Array("RFC 8448 test verifier".utf8) }
    func checkResumedPeer(_ identity: PeerIdentity, role: PeerRole) throws(TLSError) {}
    func verifyPeer(_ request: PeerVerificationRequest) throws(TLSError) -> VerifiedPeer {
        VerifiedPeer(
            publicKey: try key(request.chain),
            identity: PeerIdentity(
                verifiedChain: request.chain, subject: "CN=rsa", subjectAlternativeNames: [],
                keyAlgorithm: "RSA-1024", certificateSignatureAlgorithm: "sha256WithRSAEncryption"))
    }
    func key(_ chain: [[UInt8]]) throws(TLSError) -> any PeerPublicKey {
        do {
            // swift-certificates refuses RSA keys under 2048 bits, so take the SPKI out of the
            // TBSCertificate by hand: version, serial, signature, issuer, validity, subject, SPKI.
            let certificate = try DER.parse(chain[0])
            guard case .constructed(let outer) = certificate.content, let tbs = outer.first(where: { _ in true }),
                case .constructed(let fields) = tbs.content
            else { throw TLSError.rejected(.malformed) }
            let spki = Array(fields)[6]
            return SwiftCryptoPublicKey.rsa(try _RSA.Signing.PublicKey(unsafeDERRepresentation: Array(spki.encodedBytes)))
        } catch let error as TLSError {
            throw error
        } catch {
            throw .rejected(.malformed, "\(error)")
        }
    }
}

/// Known-answer comparisons of a secret with the published bytes (tests only).
func == (a: SecretBytes, b: [UInt8]) -> Bool { a.withUnsafeBytes { Array($0) } == b }
