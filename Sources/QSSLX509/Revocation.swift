import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

// Revocation checking's public pieces: the policy for unknown status, the OCSP fetcher protocol and the response cache.

/// What an unknown revocation status means.
///
/// A struct with static values rather than an enum, so that policies can be added (a
/// must-staple policy, say) without breaking code that names these two.
public struct RevocationPolicy: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A certificate whose status cannot be established is accepted (a revoked one never is).
    public static let softFail = RevocationPolicy(rawValue: "soft-fail")
    /// A certificate whose status cannot be established is rejected.
    public static let hardFail = RevocationPolicy(rawValue: "hard-fail")

    public var description: String { rawValue }
}

/// Serial numbers as `openssl x509 -serial` prints them: uppercase hex.
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined() }

/// Fetches an OCSP response over the network (RFC 6960 Appendix A: HTTP POST).
public protocol OCSPFetching: Sendable {
    func fetch(url: String, request: [UInt8], timeout: Duration) async throws -> [UInt8]
}

/// OCSP responses by CertID, until their nextUpdate; bounded.
public final class OCSPResponseCache: Sendable {
    private let entries = Mutex<[OCSPCertID: (der: [UInt8], until: Date)]>([:])
    public static let maxEntries = 4096
    public init() {}

    func response(for id: OCSPCertID, at date: Date) -> [UInt8]? {
        entries.withLock { e in
            guard let hit = e[id] else { return nil }
            if hit.until < date {
                e[id] = nil
                return nil
            }
            return hit.der
        }
    }

    func store(_ der: [UInt8], for id: OCSPCertID, until: Date) {
        entries.withLock { e in
            if e.count >= Self.maxEntries { e.removeAll() }
            e[id] = (der, until)
        }
    }
}
