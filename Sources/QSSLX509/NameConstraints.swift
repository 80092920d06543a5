import Crypto
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

// Name constraints (RFC 5280 §4.2.1.10): the names a certificate holds, permitted/excluded subtrees, IP addresses.

/// The names of one certificate that name constraints apply to: subjectAltName dNSName and
/// iPAddress entries and, for a leaf without SAN DNS names, a subject CN that looks like a
/// hostname or an IP address (as OpenSSL and browsers do).
struct ConstrainedNames {
    var dns: [String] = []
    var ips: [[UInt8]] = []

    init(_ cert: X509Certificate, isLeaf: Bool) throws(TLSError) {
        let sans: SubjectAlternativeNames?
        do { sans = try cert.extensions.subjectAlternativeNames } catch {
            throw .rejected(.malformed, "\(cert.subject) subjectAlternativeName: \(error)")
        }
        for san in sans ?? SubjectAlternativeNames([]) {
            switch san {
            case .dnsName(let name): dns.append(name)
            case .ipAddress(let bytes):
                guard bytes.bytes.count == 4 || bytes.bytes.count == 16 else {
                    throw .rejected(.malformed, "\(cert.subject) has an iPAddress name of \(bytes.bytes.count) bytes")
                }
                ips.append(Array(bytes.bytes))
            default: continue  // forms whose constraints are refused outright (NameConstraintSet)
            }
        }
        guard isLeaf && dns.isEmpty else { return }
        for rdn in cert.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                guard let cn = String(attribute.value) else { continue }
                if let ip = IPAddress.parse(cn) { ips.append(ip) } else if Self.looksLikeHostname(cn) { dns.append(cn) }
            }
        }
    }

    init(serverName: String) {
        let name = NameConstraintSet.normalize(serverName)
        if let ip = IPAddress.parse(name) { ips = [ip] } else { dns = [name] }
    }

    /// LDH labels (underscores tolerated), optionally a leading "*" label, at most 253 characters.
    static func looksLikeHostname(_ s: String) -> Bool {
        let name = s.hasSuffix(".") ? String(s.dropLast()) : s
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for (i, label) in labels.enumerated() {
            if i == 0 && label == "*" && labels.count > 1 { continue }
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                label.utf8.allSatisfy({
                    $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0)
                        || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                })
            else { return false }
        }
        return true
    }
}

/// One CA's name constraints, DNS and IP forms (RFC 5280 §4.2.1.10).
struct NameConstraintSet {
    var permittedDNS: [String] = []
    var excludedDNS: [String] = []
    var permittedIP: [(base: [UInt8], mask: [UInt8])] = []
    var excludedIP: [(base: [UInt8], mask: [UInt8])] = []

    /// Nil when the certificate has no nameConstraints extension.
    init?(_ cert: X509Certificate) throws(TLSError) {
        guard let ext = cert.extensions[oid: .X509ExtensionID.nameConstraints] else { return nil }
        let parsed: NameConstraints
        do { parsed = try NameConstraints(ext) } catch {
            throw .rejected(.malformed, "\(cert.subject) nameConstraints: \(error)")
        }
        for (subtrees, permitted) in [(parsed.permittedSubtrees, true), (parsed.excludedSubtrees, false)] {
            for name in subtrees {
                switch name {
                case .dnsName(let domain):
                    if permitted { permittedDNS.append(Self.normalize(domain)) } else { excludedDNS.append(Self.normalize(domain)) }
                case .ipAddress(let octets):
                    let bytes = Array(octets.bytes)
                    guard bytes.count == 8 || bytes.count == 32 else {
                        throw .rejected(.malformed, "\(cert.subject) has an iPAddress name constraint of \(bytes.count) bytes")
                    }
                    let range = (base: Array(bytes[..<(bytes.count / 2)]), mask: Array(bytes[(bytes.count / 2)...]))
                    guard Self.isContiguous(range.mask) else {
                        throw .rejected(.malformed, "\(cert.subject) has an iPAddress name constraint with a non-contiguous mask")
                    }
                    if permitted { permittedIP.append(range) } else { excludedIP.append(range) }
                default:
                    throw .rejected(
                        .nameConstraintViolation,
                        "\(cert.subject) constrains \(name), a name form Q-SSL does not implement (only DNS and IP)")
                }
            }
        }
    }

    func check(_ names: ConstrainedNames, of what: String, by ca: X509Certificate) throws(TLSError) {
        for raw in names.dns {
            let name = Self.normalize(raw)
            if let c = excludedDNS.first(where: { Self.dnsIntersects(name, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): DNS name \(raw) is in the subtree \(c) excluded by \(ca.subject)")
            }
            if !permittedDNS.isEmpty && !permittedDNS.contains(where: { Self.dnsWithin(name, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): DNS name \(raw) is outside the subtrees permitted by \(ca.subject)")
            }
        }
        for ip in names.ips {
            if excludedIP.contains(where: { Self.ipWithin(ip, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): IP address \(Self.show(ip)) is in a range excluded by \(ca.subject)")
            }
            if !permittedIP.isEmpty && !permittedIP.contains(where: { Self.ipWithin(ip, $0) }) {
                throw .rejected(.nameConstraintViolation, "\(what): IP address \(Self.show(ip)) is outside the ranges permitted by \(ca.subject)")
            }
        }
    }

    /// Lower case, without a trailing dot: the form every DNS comparison here uses.
    static func normalize(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// Every host `name` stands for lies in the subtree: "example.com" holds itself and its
    /// subdomains, ".example.com" only its subdomains, "" everything. A wildcard name "*.S" is
    /// within when S is within (or, with a leading-dot constraint, when S is the constraint's domain).
    static func dnsWithin(_ name: String, _ constraint: String) -> Bool {
        if constraint.isEmpty { return true }
        if constraint.hasPrefix(".") { return name.hasSuffix(constraint) && name.count > constraint.count }
        return name == constraint || name.hasSuffix("." + constraint)
    }

    /// Some host `name` stands for lies in the (excluded) subtree. A wildcard "*.S" stands for
    /// every one-label child of S, so it also meets a subtree rooted at such a child.
    static func dnsIntersects(_ name: String, _ constraint: String) -> Bool {
        if dnsWithin(name, constraint) { return true }
        guard name.hasPrefix("*.") else { return false }
        let parent = String(name.dropFirst(2))
        let domain = constraint.hasPrefix(".") ? String(constraint.dropFirst()) : constraint
        // S within the domain: every child of S is a proper subdomain of it, excluded by both forms.
        if dnsWithin(parent, domain) { return true }
        // The constraint is itself a child of S, which the wildcard matches ("D" only, not ".D").
        guard !constraint.hasPrefix("."), let dot = constraint.firstIndex(of: ".") else { return false }
        return constraint[constraint.index(after: dot)...] == parent
    }

    static let ipv4MappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]

    static func ipWithin(_ address: [UInt8], _ range: (base: [UInt8], mask: [UInt8])) -> Bool {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it carries: it must
        // not escape an IPv4 constraint, nor an IPv4 address a mapped IPv6 one.
        var ip = address
        if ip.count == 16 && range.base.count == 4 && Array(ip.prefix(12)) == Self.ipv4MappedPrefix {
            ip = Array(ip.suffix(4))
        } else if ip.count == 4 && range.base.count == 16 {
            ip = Self.ipv4MappedPrefix + ip
        }
        guard ip.count == range.base.count else { return false }
        for i in 0..<ip.count where ip[i] & range.mask[i] != range.base[i] & range.mask[i] { return false }
        return true
    }

    static func isContiguous(_ mask: [UInt8]) -> Bool {
        var seenZero = false
        for byte in mask {
            for bit in (0..<8).reversed() {
                let set = byte & (1 << bit) != 0
                if set && seenZero { return false }
                if !set { seenZero = true }
            }
        }
        return true
    }

    static func show(_ ip: [UInt8]) -> String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: ip.count, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}

/// IPv4 and IPv6 literals as bytes.
enum IPAddress {
    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        guard bytes.count == 16 else { return bytes.map { String($0, radix: 16) }.joined(separator: ":") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    static func parse(_ s: String) -> [UInt8]? {
        let v4 = s.split(separator: ".", omittingEmptySubsequences: false)
        if v4.count == 4 {
            // Decimal octets only, without leading zeros: "010.0.0.1" means 8.0.0.1 to
            // inet_aton, so it must not be read as 10.0.0.1 here.
            guard
                v4.allSatisfy({
                    !$0.isEmpty && $0.utf8.count <= 3 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) }
                        && ($0.utf8.count == 1 || $0.utf8.first != 0x30)
                })
            else { return nil }
            let bytes = v4.compactMap { UInt8($0) }
            return bytes.count == 4 ? bytes : nil
        }
        guard s.contains(":") else { return nil }
        var text = s
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            let g = part.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0, radix: 16) }
            return g.contains(where: { $0 == nil }) ? nil : g.map { $0! }
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
