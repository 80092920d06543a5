import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import SwiftASN1
import _CryptoExtras

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Loading and writing certificates and private keys as PEM.
public enum CertificateFiles {
    public enum LoadError: Error, CustomStringConvertible {
        case noCertificates(String)
        case unsupportedKey(String)
        case keyDoesNotMatchCertificate

        public var description: String {
            switch self {
            case .noCertificates(let s): return "no certificate found in \(s)"
            case .unsupportedKey(let s): return "unsupported private key: \(s)"
            case .keyDoesNotMatchCertificate: return "the private key does not match the certificate"
            }
        }
    }

    /// Every CERTIFICATE block of a PEM text, in order.
    public static func certificates(fromPEM pem: String) throws -> [X509Certificate] {
        let documents = try PEMDocument.parseMultiple(pemString: pem).filter { $0.discriminator == "CERTIFICATE" }
        guard !documents.isEmpty else { throw LoadError.noCertificates("PEM input") }
        return try documents.map { try X509Certificate(der: $0.derBytes) }
    }

    /// Every certificate of the PEM file at `path`, in order.
    /// - Parameter what: what the file is, for messages ("certificate file", "CA file").
    /// - Throws: `FileError` naming the file and saying why: it cannot be read (no such file,
    ///   permission denied, a directory), it is not PEM, it holds no certificate, or one of its
    ///   certificates does not parse.
    public static func certificates(atPath path: String, what: String = "certificate file") throws(FileError) -> [X509Certificate] {
        let text = try readTextFile(atPath: path, what: what)
        let documents = try pemDocuments(text, path: path, what: what)
        let blocks = documents.filter { $0.discriminator == "CERTIFICATE" }
        guard !blocks.isEmpty else {
            throw FileError(.invalid, path: path, what: what, reason: "no certificate in it (it holds \(kinds(documents)))")
        }
        var certificates: [X509Certificate] = []
        for (index, block) in blocks.enumerated() {
            do { certificates.append(try X509Certificate(der: block.derBytes)) } catch {
                var why = error.detail.map(undecorated) ?? shortReason(error)
                if why.hasPrefix("certificate does not parse: ") { why = String(why.dropFirst("certificate does not parse: ".count)) }
                throw FileError(
                    .invalid, path: path, what: what,
                    reason: "\(blocks.count == 1 ? "its certificate" : "certificate \(index + 1)") does not parse: \(why)")
            }
        }
        return certificates
    }

    /// The private key in the PEM file at `path` (its first PRIVATE KEY, EC PRIVATE KEY or RSA
    /// PRIVATE KEY block; see `privateKey(fromPEM:)`).
    /// - Throws: `FileError` naming the file and saying why.
    public static func privateKey(atPath path: String, what: String = "private key") throws(FileError) -> SwiftCryptoSigningKey {
        let text = try readTextFile(atPath: path, what: what)
        let documents = try pemDocuments(text, path: path, what: what)
        guard let block = documents.first(where: { ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"].contains($0.discriminator) }) else {
            let encrypted = documents.contains { $0.discriminator == "ENCRYPTED PRIVATE KEY" }
            throw FileError(
                .invalid, path: path, what: what,
                reason: encrypted
                    ? "the key is encrypted; Q-SSL reads unencrypted PKCS#8, SEC1 or PKCS#1 keys"
                    : "no private key in it (it holds \(kinds(documents)))")
        }
        do { return try privateKey(fromPEM: block.pemString) } catch {
            throw FileError(.invalid, path: path, what: what, reason: shortReason(error))
        }
    }

    /// Why a file could not be used: which file, what it was for, and a short reason.
    public struct FileError: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable, Hashable {
            /// The file could not be read: no such file, permission denied, a directory.
            case unreadable
            /// It was read, but it is not PEM text.
            case notPEM
            /// It is PEM, but does not hold what was wanted, or that does not parse.
            case invalid
        }
        public let kind: Kind
        public let path: String
        /// What the file is for: "certificate file", "private key", "CA file".
        public let what: String
        /// Short: "no such file", "permission denied", "no certificate in it (it holds PRIVATE KEY)".
        public let reason: String

        public init(_ kind: Kind, path: String, what: String, reason: String) {
            self.kind = kind
            self.path = path
            self.what = what
            self.reason = reason
        }

        /// "cannot read certificate file /x.pem: no such file", "/x.pem is not a PEM
        /// certificate file: the file is empty", "private key /x.key: no private key in it (…)".
        public var description: String {
            switch kind {
            case .unreadable: return "cannot read \(what) \(path): \(reason)"
            case .notPEM: return "\(path) is not a \(what.hasPrefix("PEM ") ? what : "PEM " + what): \(reason)"
            case .invalid: return "\(what) \(path): \(reason)"
            }
        }
    }

    /// The most a PEM file read by `readTextFile` may hold (a large CA bundle is about 200 KiB).
    public static let maximumTextFileSize = 16 << 20

    /// The whole of a text file, or a `FileError` saying which file and why it cannot be read.
    ///
    /// Never blocks on a FIFO without a writer (it reads as empty); a pipe from a process
    /// (`--ca <(…)`) is read to its end. A directory, a socket, more than `maximumSize` bytes
    /// or bytes that are not UTF-8 are refused with a reason.
    public static func readTextFile(atPath path: String, what: String, maximumSize: Int = maximumTextFileSize) throws(FileError) -> String {
        let bytes = try readFile(atPath: path, what: what, maximumSize: maximumSize)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw FileError(
                .notPEM, path: path, what: what,
                reason: "it holds binary data (DER? convert it with `openssl x509 -inform der` or `openssl pkey -inform der`)")
        }
        return text
    }

    /// The whole of a file's bytes, read as `readTextFile` reads (never blocking on a FIFO
    /// without a writer, at most `maximumSize` bytes, a directory or socket refused).
    public static func readFile(atPath path: String, what: String, maximumSize: Int) throws(FileError) -> [UInt8] {
        func unreadable(_ reason: String) -> FileError { FileError(.unreadable, path: path, what: what, reason: reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw unreadable(errnoReason(errno)) }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw unreadable(errnoReason(errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw unreadable("it is a directory")
        case S_IFIFO, S_IFCHR:
            // A pipe: read it to its end (a FIFO nobody writes to reads as empty at once).
            let flags = fcntl(fd, F_GETFL)
            if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        default: throw unreadable("not a regular file")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw unreadable(errnoReason(errno))
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
            guard bytes.count <= maximumSize else { throw unreadable("larger than \(maximumSize) bytes") }
        }
        return bytes
    }

    /// "no such file", "permission denied", … for an errno.
    public static func errnoReason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES, EPERM: return "permission denied"
        case EISDIR: return "it is a directory"
        case ENOTDIR: return "a component of the path is not a directory"
        case ELOOP: return "too many levels of symbolic links"
        case ENAMETOOLONG: return "file name too long"
        case ENXIO: return "not a file that can be read (a socket?)"
        default: return String(cString: strerror(code)).lowercased()
        }
    }

    /// The PEM blocks of `text` (read from `path`), or `FileError.notPEM` saying why it is not PEM.
    public static func pemDocuments(_ text: String, path: String, what: String) throws(FileError) -> [PEMDocument] {
        func notPEM(_ reason: String) -> FileError { FileError(.notPEM, path: path, what: what, reason: reason) }
        if text.allSatisfy(\.isWhitespace) { throw notPEM("the file is empty") }
        guard text.contains("-----BEGIN ") else { throw notPEM("no -----BEGIN line") }
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: text) } catch { throw notPEM(shortReason(error)) }
        guard !documents.isEmpty else { throw notPEM("no complete -----BEGIN/-----END block") }
        return documents
    }

    /// "CERTIFICATE and PRIVATE KEY": the kinds of PEM block found.
    public static func kinds(_ documents: [PEMDocument]) -> String {
        var seen: [String] = []
        for d in documents where !seen.contains(d.discriminator) { seen.append(d.discriminator) }
        return seen.count == 1 ? "only \(seen[0])" : seen.joined(separator: ", ")
    }

    /// An error's text on one line without a library's decoration (see `undecorated`).
    public static func shortReason(_ error: Error) -> String {
        undecorated("\(error)".split(whereSeparator: \.isNewline).joined(separator: "; "))
    }

    /// `text` with each swift-asn1 error ("ASN1Error.invalidASN1Object: reason File.swift:12")
    /// reduced to its reason (or, when it gives none, its code).
    public static func undecorated(_ text: String) -> String {
        var rest = Substring(text)
        var out = ""
        while let start = rest.range(of: "ASN1Error.") {
            out += rest[..<start.lowerBound]
            var tail = rest[start.upperBound...]
            let code = tail.prefix { $0.isLetter || $0.isNumber }
            tail = tail.dropFirst(code.count)
            if tail.hasPrefix(":") { tail = tail.dropFirst() }
            // The reason runs to the source location "Module/File.swift:123" (or to the end).
            var reason = tail
            var after = tail[tail.endIndex...]
            if let location = tail.range(of: #"\S+\.swift:\d+"#, options: .regularExpression) {
                reason = tail[..<location.lowerBound]
                after = tail[location.upperBound...]
            }
            let trimmed = reason.trimmingCharacters(in: .whitespaces)
            out += trimmed.isEmpty ? "invalid DER (\(code))" : trimmed
            rest = after
        }
        return out + rest
    }

    /// A private key from PEM: PKCS#8 ("PRIVATE KEY": EC, RSA, Ed25519, ML-DSA-65/87 in seed or
    /// both form, composite ML-DSA-65 + ECDSA-P384), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
    public static func privateKey(fromPEM pem: String) throws -> SwiftCryptoSigningKey {
        let document = try PEMDocument(pemString: pem)
        switch document.discriminator {
        case "PRIVATE KEY":
            return try privateKey(pkcs8: document.derBytes, pem: pem)
        case "EC PRIVATE KEY":
            if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { return .p384(k) }
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return .p256(k) }
            throw LoadError.unsupportedKey("EC key on an unsupported curve")
        case "RSA PRIVATE KEY":
            return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        default:
            throw LoadError.unsupportedKey("PEM block \(document.discriminator)")
        }
    }

    /// RFC 5958 OneAsymmetricKey.
    static func privateKey(pkcs8 der: [UInt8], pem: String) throws -> SwiftCryptoSigningKey {
        let (oid, key) = try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes -> (ASN1ObjectIdentifier, [UInt8]) in
            _ = try Int(derEncoded: &nodes)
            let (oid, _) = try X509PublicKey.algorithmIdentifier(&nodes)
            let key = try ASN1OctetString(derEncoded: &nodes)
            while nodes.next() != nil {}  // attributes, public key
            return (oid, Array(key.bytes))
        }
        switch oid {
        case X509OID.ecPublicKey:
            if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { return .p384(k) }
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { return .p256(k) }
            throw LoadError.unsupportedKey("EC key on an unsupported curve")
        case X509OID.rsaEncryption:
            return .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        case X509OID.ed25519:
            // RFC 8410 §7: CurvePrivateKey ::= OCTET STRING (32 bytes).
            let inner = try ASN1OctetString(derEncoded: try DER.parse(key))
            return .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: inner.bytes))
        case X509OID.mldsa65:
            return .mldsa65(try MLDSA65.PrivateKey(seedRepresentation: try mldsaSeed(key), publicKey: nil))
        case X509OID.mldsa87:
            return .mldsa87(try MLDSA87.PrivateKey(seedRepresentation: try mldsaSeed(key), publicKey: nil))
        case X509OID.mldsa65ECDSAP384SHA512:
            return .composite(try CompositeMLDSA65ECDSAP384.PrivateKey(rawRepresentation: key))
        case X509OID.mldsa44:
            throw LoadError.unsupportedKey("ML-DSA-44 (swift-crypto has no ML-DSA-44 signer)")
        default:
            throw LoadError.unsupportedKey("PKCS#8 algorithm \(oid)")
        }
    }

    /// RFC 9881 §6: ML-DSA-PrivateKey ::= CHOICE { seed [0] IMPLICIT OCTET STRING (32),
    /// expandedKey OCTET STRING, both SEQUENCE { seed, expandedKey } }.
    static func mldsaSeed(_ key: [UInt8]) throws -> [UInt8] {
        let node = try DER.parse(key)
        if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            let seed = try ASN1OctetString(derEncoded: node, withIdentifier: node.identifier)
            guard seed.bytes.count == 32 else { throw LoadError.unsupportedKey("ML-DSA seed of \(seed.bytes.count) bytes") }
            return Array(seed.bytes)
        }
        if node.identifier == .sequence {
            return try DER.sequence(node, identifier: .sequence) { nodes in
                let seed = try ASN1OctetString(derEncoded: &nodes)
                _ = try ASN1OctetString(derEncoded: &nodes)
                guard seed.bytes.count == 32 else { throw LoadError.unsupportedKey("ML-DSA seed of \(seed.bytes.count) bytes") }
                return Array(seed.bytes)
            }
        }
        throw LoadError.unsupportedKey("expanded-only ML-DSA private key: swift-crypto imports ML-DSA keys from their seed; export the seed or both forms")
    }

    /// PKCS#8 PEM of a key; ML-DSA keys are written in the seed form (RFC 9881).
    public static func pkcs8PEM(_ key: SwiftCryptoSigningKey) throws -> String {
        switch key {
        case .p256(let k): return k.pemRepresentation
        case .p384(let k): return k.pemRepresentation
        case .rsa(let k): return k.pkcs8PEMRepresentation
        case .ed25519(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.ed25519, octetString(Array(k.rawRepresentation)))).pemString
        case .mldsa65(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa65, [0x80, 0x20] + Array(k.seedRepresentation))).pemString
        case .mldsa87(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa87, [0x80, 0x20] + Array(k.seedRepresentation))).pemString
        case .composite(let k):
            return PEMDocument(type: "PRIVATE KEY", derBytes: try oneAsymmetricKey(X509OID.mldsa65ECDSAP384SHA512, k.rawRepresentation)).pemString
        }
    }

    static func octetString(_ bytes: [UInt8]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.serialize(ASN1OctetString(contentBytes: bytes[...]))
        return s.serializedBytes
    }

    static func oneAsymmetricKey(_ oid: ASN1ObjectIdentifier, _ privateKey: [UInt8]) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(0)
            try s.appendConstructedNode(identifier: .sequence) { try $0.serialize(oid) }
            try s.serialize(ASN1OctetString(contentBytes: privateKey[...]))
        }
        return s.serializedBytes
    }

    /// A chain and its key from two PEM files, checked to belong together.
    /// - Throws: `FileError` naming the file at fault (the key's when it does not match).
    public static func certifiedKey(chainPath: String, keyPath: String) throws -> CertifiedKey {
        let chain = try certificates(atPath: chainPath)
        let key = try privateKey(atPath: keyPath)
        do { return try certifiedKey(chain: chain, key: key) } catch LoadError.keyDoesNotMatchCertificate {
            throw FileError(.invalid, path: keyPath, what: "private key", reason: "it does not match the certificate in \(chainPath)")
        }
    }

    public static func certifiedKey(chain: [X509Certificate], key: SwiftCryptoSigningKey) throws -> CertifiedKey {
        guard let leaf = chain.first else { throw LoadError.noCertificates("chain") }
        guard try key.subjectPublicKeyInfo() == leaf.publicKey.spki else { throw LoadError.keyDoesNotMatchCertificate }
        return CertifiedKey(
            chain: chain.map(\.der), key: key, chainSignatureSchemes: chain.compactMap(\.signatureScheme),
            issuerNames: chain.compactMap(\.issuerDER))
    }

    /// A chain and a key that lives elsewhere (an HSM), checked to belong together by the public
    /// key the key's holder read back.
    public static func certifiedKey(chain: [X509Certificate], key: any SigningKey, subjectPublicKeyInfo: [UInt8]) throws -> CertifiedKey {
        guard let leaf = chain.first else { throw LoadError.noCertificates("chain") }
        guard subjectPublicKeyInfo == leaf.publicKey.spki else { throw LoadError.keyDoesNotMatchCertificate }
        return CertifiedKey(
            chain: chain.map(\.der), key: key, chainSignatureSchemes: chain.compactMap(\.signatureScheme),
            issuerNames: chain.compactMap(\.issuerDER))
    }

    public static func pem(_ certs: [X509Certificate]) -> String {
        certs.map { PEMDocument(type: "CERTIFICATE", derBytes: $0.der).pemString }.joined(separator: "\n") + "\n"
    }
}

extension CompositeMLDSA65ECDSAP384.PrivateKey {
    /// Seed ‖ RFC 5915 ECPrivateKey without the public key (draft-19 §5).
    public var rawRepresentation: [UInt8] {
        var s = DER.Serializer()
        try! s.appendConstructedNode(identifier: .sequence) { s in  // local invariant: fixed, valid structure
            try s.serialize(1)
            try s.serialize(ASN1OctetString(contentBytes: Array(ecdsa.rawRepresentation)[...]))
            try s.serialize(X509OID.secp384r1, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
        }
        return seedBytes + s.serializedBytes
    }
}
