// A listener (or `defaults:`) as written: every field optional and located, before merging.

import Yams

struct CertificateFields {
    var cert: Located<CredentialSource>
    var key: Located<CredentialSource>
    var serverNames: [Located<String>]
    var loc: Loc
    var path: String
}

struct LimitsFields {
    var handshakeTimeout: Located<Int64>?
    var idleTimeout: Located<Int64>?
    var maxLifetime: Located<Int64>?
    var maxConnections: Located<Int>?
    var maxHandshakes: Located<Int>?
    var handshakeOverflow: Located<HandshakeOverflow>?
    var handshakeRatePerSource: Located<Int>?
    var maxRequestBytes: Located<Int>?
}

struct ListenerFields {
    var loc: Loc
    var path: String
    /// Keys written (valid or not), so that a wrong value is not also reported as missing.
    var written: Set<String> = []
    var name: Located<String>?
    var listen: Located<[Located<NetworkAddress>]>?
    var backend: Located<Backend>?
    var backendConnectTimeout: Located<Int64>?
    var proxyProtocol: Located<ProxyProtocolVersion>?
    var acceptProxyProtocol: Located<AcceptProxyProtocol>?
    var certificates: Located<[CertificateFields]>?
    var unknownServerName: Located<UnknownServerNamePolicy>?
    var tlsVersions: Located<[TLSVersion]>?
    var groups: Located<[String]>?
    var pqRequired: Located<Bool>?
    var alpn: Located<[String]>?
    var clientAuth: Located<ClientAuthMode>?
    var clientCA: Located<String>?
    var crl: Located<[Located<String>]>?
    var ticketKeys: Located<TicketKeySource>?
    var sessionTimeout: Located<Int64>?
    var sessionCache: Located<Bool>?
    var tls13Tickets: Located<Int>?
    var staple: Located<Bool>?
    var sessionStore: Located<String>?
    var fleetKey: Located<String>?
    var serviceName: Located<String>?
    var sessionStoreTimeout: Located<Int64>?
    var ticketRotation: Located<Int64>?
    var ticketDistribution: Located<Int64>?
    var limits = LimitsFields()

    /// This listener's fields, each missing one taken from `defaults` (marked as inherited).
    func merged(with defaults: ListenerFields) -> ListenerFields {
        var m = self
        func pick<T>(_ keyPath: WritableKeyPath<ListenerFields, Located<T>?>) {
            if m[keyPath: keyPath] == nil { m[keyPath: keyPath] = defaults[keyPath: keyPath]?.inherited }
        }
        pick(\.backendConnectTimeout)
        pick(\.proxyProtocol)
        pick(\.acceptProxyProtocol)
        pick(\.certificates)
        pick(\.unknownServerName)
        pick(\.tlsVersions)
        pick(\.groups)
        pick(\.pqRequired)
        pick(\.alpn)
        pick(\.clientAuth)
        pick(\.clientCA)
        pick(\.crl)
        pick(\.ticketKeys)
        pick(\.sessionTimeout)
        pick(\.sessionCache)
        pick(\.tls13Tickets)
        pick(\.staple)
        pick(\.sessionStore)
        pick(\.fleetKey)
        pick(\.serviceName)
        pick(\.sessionStoreTimeout)
        pick(\.ticketRotation)
        pick(\.ticketDistribution)
        pick(\.limits.handshakeTimeout)
        pick(\.limits.idleTimeout)
        pick(\.limits.maxLifetime)
        pick(\.limits.maxConnections)
        pick(\.limits.maxHandshakes)
        pick(\.limits.handshakeOverflow)
        pick(\.limits.handshakeRatePerSource)
        pick(\.limits.maxRequestBytes)
        if defaults.written.contains("certificates") { m.written.insert("certificates") }
        return m
    }
}

enum Keys {
    static let top = ["access-log", "metrics", "drain-timeout", "threads", "hsm", "defaults", "listeners"]
    static let hsm = ["module", "pin-file", "sign-threads"]
    static let listener = [
        "name", "listen", "backend", "backend-connect-timeout", "proxy-protocol", "accept-proxy-protocol",
        "certificates", "unknown-server-name", "tls-versions", "groups", "pq-required", "alpn", "client-auth",
        "client-ca", "crl", "ticket-keys", "session-timeout", "session-cache", "tls13-tickets", "staple", "limits",
        "session-store", "fleet-key", "service-name", "session-store-timeout", "ticket-rotation", "ticket-distribution"
    ]
    static let perListenerOnly = ["name", "listen", "backend"]
    static let defaults = listener.filter { !perListenerOnly.contains($0) }
    static let limits = [
        "handshake-timeout", "idle-timeout", "max-lifetime", "max-connections", "max-handshakes",
        "handshake-overflow", "handshake-rate-per-source", "max-request-bytes"
    ]
    static let certificate = ["cert", "key", "server-names"]

    /// A hint for a key written in the wrong section.
    static func misplaced(_ key: String, section: String) -> String? {
        let k = Values.kebab(key)
        if section == "defaults", perListenerOnly.contains(k) { return "each listener sets its own \(k); it cannot be in defaults:" }
        if section != "limits", limits.contains(k) { return "'\(k)' belongs under limits:" }
        if section == "top", listener.contains(k) { return "'\(k)' belongs in a listener (or under defaults:)" }
        if section != "top", top.contains(k) { return "'\(k)' is a top-level key" }
        if section == "limits", listener.contains(k) { return "'\(k)' belongs to the listener, not to limits:" }
        return nil
    }
}

extension Reader {
    func listenerFields(_ node: Node, at fallback: Loc, path: String, isDefaults: Bool) -> ListenerFields? {
        let section = isDefaults ? "defaults" : "listener"
        let here = loc(node, fallback)
        guard
            let entries = mapping(
                node, at: here, path: path, allowed: isDefaults ? Keys.defaults : Keys.listener,
                hint: { Keys.misplaced($0, section: section) })
        else { return nil }
        var f = ListenerFields(loc: here, path: path)
        f.written = Set(entries.keys)
        if let e = entries["name"] { f.name = string(e) }
        if let e = entries["listen"], let items = items(e, singleAllowed: true, what: "an address or a list of addresses") {
            var addresses: [Located<NetworkAddress>] = []
            for item in items { if let a = address(item, allowUnix: true) { addresses.append(a) } }
            if items.isEmpty { sink.add(e.valueLoc, e.path, "must list at least one address") }
            if addresses.count == items.count, !items.isEmpty { f.listen = Located(value: addresses, loc: e.valueLoc, path: e.path) }
        }
        if let e = entries["backend"], let text = string(e, what: "HOST:PORT, unix:/path, echo or http") {
            switch text.value.trimmingSpaces().lowercased() {
            case "echo": f.backend = text.map { _ in .echo }
            case "http": f.backend = text.map { _ in .http }
            default: f.backend = address(e, allowUnix: true)?.map { .address($0) }
            }
        }
        if let e = entries["backend-connect-timeout"] { f.backendConnectTimeout = duration(e, range: 1...300_000) }
        if let e = entries["proxy-protocol"] { f.proxyProtocol = choice(e, ProxyProtocolVersion.self, aliases: ["false": ProxyProtocolVersion.none]) }
        if let e = entries["accept-proxy-protocol"] {
            f.acceptProxyProtocol = choice(e, AcceptProxyProtocol.self, aliases: ["false": .off, "true": .either])
        }
        if let e = entries["certificates"] { f.certificates = certificates(e) }
        if let e = entries["unknown-server-name"] { f.unknownServerName = choice(e, UnknownServerNamePolicy.self) }
        if let e = entries["tls-versions"] { f.tlsVersions = tlsVersions(e) }
        if let e = entries["groups"] { f.groups = groups(e) }
        if let e = entries["pq-required"] { f.pqRequired = bool(e) }
        if let e = entries["alpn"] { f.alpn = alpn(e) }
        if let e = entries["client-auth"] { f.clientAuth = choice(e, ClientAuthMode.self) }
        if let e = entries["client-ca"] { f.clientCA = self.path(e) }
        if let e = entries["crl"], let list = strings(e, singleAllowed: true, nonEmpty: false) {
            let checked = list.value.compactMap { checkPath($0) }
            if checked.count == list.value.count { f.crl = list.map { _ in checked } }
        }
        if let e = entries["ticket-keys"], let text = self.path(e) {
            f.ticketKeys = text.map { $0.lowercased() == "none" ? .disabled : .file($0) }
        }
        if let e = entries["session-timeout"], let ms = duration(e, range: 1000...604_800_000) {
            if ms.value % 1000 == 0 { f.sessionTimeout = ms } else { sink.add(ms, "must be whole seconds") }
        }
        if let e = entries["session-cache"] { f.sessionCache = bool(e) }
        if let e = entries["tls13-tickets"] { f.tls13Tickets = integer(e, range: 0...16) }
        if let e = entries["staple"] { f.staple = bool(e) }
        fleetFields(entries, into: &f)
        if let e = entries["limits"] { f.limits = limits(e) }
        return f
    }

    func address(_ entry: Entry, allowUnix: Bool) -> Located<NetworkAddress>? {
        guard let text = string(entry, what: "an address") else { return nil }
        switch Values.address(text.value, allowUnix: allowUnix) {
        case .success(let address): return text.map { _ in address }
        case .failure(let error):
            sink.add(text, error.message)
            return nil
        }
    }

    private func limits(_ entry: Entry) -> LimitsFields {
        var l = LimitsFields()
        guard
            let entries = mapping(
                entry.value, at: entry.valueLoc, path: entry.path, allowed: Keys.limits,
                hint: { Keys.misplaced($0, section: "limits") })
        else { return l }
        if let e = entries["handshake-timeout"] { l.handshakeTimeout = duration(e, range: 1...3_600_000) }
        if let e = entries["idle-timeout"] { l.idleTimeout = duration(e, range: 1...2_592_000_000, zeroAllowed: true) }
        if let e = entries["max-lifetime"] { l.maxLifetime = duration(e, range: 1...31_536_000_000, zeroAllowed: true) }
        if let e = entries["max-connections"] { l.maxConnections = integer(e, range: 1...10_000_000) }
        if let e = entries["max-handshakes"] { l.maxHandshakes = integer(e, range: 1...1_000_000) }
        if let e = entries["handshake-overflow"] { l.handshakeOverflow = choice(e, HandshakeOverflow.self) }
        if let e = entries["handshake-rate-per-source"] { l.handshakeRatePerSource = integer(e, range: 0...1_000_000, note: " (0 = unlimited)") }
        if let e = entries["max-request-bytes"] { l.maxRequestBytes = integer(e, range: 1024...1_073_741_824) }
        return l
    }

    private func credential(_ entry: Entry) -> Located<CredentialSource>? {
        guard let text = path(entry) else { return nil }
        guard text.value.lowercased().hasPrefix("pkcs11:") else { return text.map { .file($0) } }
        let attributes = text.value.dropFirst(7)
        guard attributes.contains("=") else {
            sink.add(text, "a pkcs11: URI names its object with attributes, e.g. pkcs11:token=qssl;object=server-key")
            return nil
        }
        return text.map { .pkcs11($0) }
    }

    private func certificates(_ entry: Entry) -> Located<[CertificateFields]>? {
        guard let items = items(entry, singleAllowed: false, what: "a list of certificates (- cert: …, key: …)") else { return nil }
        guard !items.isEmpty else {
            sink.add(entry.valueLoc, entry.path, "must list at least one certificate")
            return nil
        }
        var pairs: [CertificateFields] = []
        for item in items {
            guard let entries = mapping(item.value, at: item.valueLoc, path: item.path, allowed: Keys.certificate) else { continue }
            let cert = entries["cert"].flatMap { credential($0) }
            let key = entries["key"].flatMap { credential($0) }
            if entries["cert"] == nil { sink.add(item.valueLoc, item.path, "missing cert: (a PEM chain or a pkcs11: URI)") }
            if entries["key"] == nil { sink.add(item.valueLoc, item.path, "missing key: (a PEM private key or a pkcs11: URI)") }
            var names: [Located<String>] = []
            if let e = entries["server-names"], let list = strings(e, singleAllowed: true) {
                for name in list.value {
                    let lowered = name.value.trimmingSpaces().lowercased()
                    if let problem = Values.serverNameProblem(lowered) {
                        sink.add(name, "invalid server name '\(name.value)': \(problem)")
                    } else {
                        names.append(name.map { _ in lowered })
                    }
                }
            }
            if let cert, let key {
                pairs.append(CertificateFields(cert: cert, key: key, serverNames: names, loc: item.valueLoc, path: item.path))
            }
        }
        return pairs.count == items.count ? Located(value: pairs, loc: entry.valueLoc, path: entry.path) : nil
    }

    private func tlsVersions(_ entry: Entry) -> Located<[TLSVersion]>? {
        guard let list = strings(entry, singleAllowed: true) else { return nil }
        var versions: [TLSVersion] = []
        for item in list.value {
            let text = item.value.trimmingSpaces()
            guard let version = TLSVersion(rawValue: text) else {
                let old = ["1.0", "1.1", "1"].contains(text)
                sink.add(item, old ? "TLS \(text) is not supported; use 1.2 or 1.3" : "must be 1.2 or 1.3, not '\(text)'")
                return nil
            }
            if versions.contains(version) {
                sink.add(item, "\(text) is listed twice")
                return nil
            }
            versions.append(version)
        }
        return list.map { _ in versions }
    }

    private func groups(_ entry: Entry) -> Located<[String]>? {
        guard let list = strings(entry, singleAllowed: true) else { return nil }
        var groups: [String] = []
        var ok = true
        for item in list.value {
            let text = item.value.trimmingSpaces()
            guard let group = ListenerConfig.supportedGroups.first(where: { $0.lowercased() == text.lowercased() }) else {
                var message = "unknown group '\(text)'"
                if text.contains(",") {
                    message += "; write a list: [\(text.split(separator: ",").joined(separator: ", "))]"
                } else if text.lowercased().contains("kyber") {
                    message += "; the Kyber drafts are not supported, use X25519MLKEM768"
                } else if let close = Values.suggestion(for: text, among: ListenerConfig.supportedGroups) {
                    message += "; did you mean '\(close)'?"
                } else {
                    message += "; supported: \(ListenerConfig.supportedGroups.joined(separator: ", "))"
                }
                sink.add(item, message)
                ok = false
                continue
            }
            if groups.contains(group) {
                sink.add(item, "\(group) is listed twice")
                ok = false
                continue
            }
            groups.append(group)
        }
        return ok ? list.map { _ in groups } : nil
    }

    private func alpn(_ entry: Entry) -> Located<[String]>? {
        guard let list = strings(entry, singleAllowed: true) else { return nil }
        var protocols: [String] = []
        var ok = true
        for item in list.value {
            if item.value.utf8.count > 255 {
                sink.add(item, "an ALPN protocol name is at most 255 bytes")
                ok = false
                continue
            }
            if protocols.contains(item.value) {
                sink.add(item, "'\(item.value)' is listed twice")
                ok = false
                continue
            }
            protocols.append(item.value)
        }
        return ok ? list.map { _ in protocols } : nil
    }
}
