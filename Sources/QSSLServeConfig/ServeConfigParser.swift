// `ServeConfigFile.parse`: YAML → typed, validated model, with every problem at its line and column.

import Foundation
import Yams

extension ServeConfigFile {
    /// Parses and validates a configuration. On failure, all the problems found are returned
    /// together (YAML syntax errors stop the parse, so only those before them are found).
    ///
    /// - Parameters:
    ///   - yaml: the file's text.
    ///   - path: the file name used in messages (`ConfigErrors.description`).
    ///   - checkFiles: also report cert, key, client-ca, crl, pin-file, ticket-keys and hsm module
    ///     paths that do not exist or cannot be read (`pkcs11:` URIs are not files).
    public static func parse(yaml: String, path: String = "<config>", checkFiles: Bool = false) -> Result<ServeConfigFile, ConfigErrors> {
        let sink = IssueSink()
        var parser: ConfigParser?
        if let document = YAMLFront.load(yaml, sink: sink) {
            parser = ConfigParser(reader: Reader(document: document, sink: sink))
        }
        let config = parser?.parse(checkFiles: checkFiles)
        if let config, sink.isEmpty { return .success(config) }
        if sink.isEmpty { sink.add(Loc(line: 1, column: 1), "", "the configuration could not be read") }
        return .failure(ConfigErrors(file: path, issues: sink.sorted()))
    }

    /// Reads the file at `path` and parses it (see `parse(yaml:path:checkFiles:)`).
    public static func load(contentsOf path: String, checkFiles: Bool = false) -> Result<ServeConfigFile, ConfigErrors> {
        func failure(_ line: Int, _ message: String) -> Result<ServeConfigFile, ConfigErrors> {
            .failure(ConfigErrors(file: path, issues: [ConfigIssue(line: line, column: 0, path: "", message: message)]))
        }
        guard let data = FileManager.default.contents(atPath: path) else { return failure(0, "cannot read the file") }
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var line = 1
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): if scalar == "\n" { line += 1 }
            case .emptyInput: break decoding
            case .error: return failure(line, "the file is not valid UTF-8")
            }
        }
        return parse(yaml: String(decoding: data, as: UTF8.self), path: path, checkFiles: checkFiles)
    }
}

struct ConfigParser {
    let reader: Reader
    var sink: IssueSink { reader.sink }

    func parse(checkFiles: Bool) -> ServeConfigFile? {
        let root = reader.document.root
        let start = reader.loc(root, Loc(line: 1, column: 1))
        guard case .mapping = root else {
            sink.add(start, "", "expected a mapping at the top level (access-log:, listeners:, …), got \(Reader.describe(root))")
            return nil
        }
        guard let top = reader.mapping(root, at: start, path: "", allowed: Keys.top, hint: { Keys.misplaced($0, section: "top") }) else {
            return nil
        }
        var config = ServeConfigFile(listeners: [])
        if let e = top["access-log"], let v = reader.choice(e, AccessLogFormat.self) { config.accessLog = v.value }
        var metrics: Located<NetworkAddress>?
        if let e = top["metrics"] {
            metrics = reader.address(e, allowUnix: false)
            config.metrics = metrics?.value
        }
        if let e = top["drain-timeout"], let ms = reader.duration(e, range: 1...86_400_000, zeroAllowed: true) {
            config.drainTimeout = .milliseconds(ms.value)
        }
        if let e = top["threads"], let n = reader.integer(e, range: ServeConfigFile.threadCounts) { config.threads = n.value }
        var files: [Located<String>] = []
        if let e = top["hsm"] { config.hsm = hsm(e, files: &files) }

        var defaults = ListenerFields(loc: start, path: "defaults")
        if let e = top["defaults"], let d = reader.listenerFields(e.value, at: e.valueLoc, path: "defaults", isDefaults: true) {
            defaults = d
        }
        guard let e = top["listeners"] else {
            sink.add(start, "", "missing listeners: (at least one listener with listen:, backend: and certificates:)")
            return nil
        }
        guard let items = reader.items(e, singleAllowed: false, what: "a list of listeners (- listen: …)") else { return nil }
        if items.isEmpty { sink.add(e.valueLoc, e.path, "must list at least one listener") }
        var merged: [ListenerFields] = []
        for item in items {
            guard let own = reader.listenerFields(item.value, at: item.valueLoc, path: item.path, isDefaults: false) else { continue }
            let fields = own.merged(with: defaults)
            check(fields, hsmConfigured: top["hsm"] != nil)
            config.listeners.append(resolve(fields))
            merged.append(fields)
        }
        checkAcrossListeners(merged, metrics: metrics)
        if checkFiles {
            for fields in merged { files += Self.filePaths(fields) }
            for file in files { Self.checkFile(file, sink: sink) }
        }
        return config
    }

    private func hsm(_ entry: Entry, files: inout [Located<String>]) -> HSMConfig? {
        guard let entries = reader.mapping(entry.value, at: entry.valueLoc, path: entry.path, allowed: Keys.hsm) else { return nil }
        guard let moduleEntry = entries["module"] else {
            sink.add(entry.valueLoc, entry.path, "missing module: (path of the PKCS#11 library)")
            return nil
        }
        guard let module = reader.path(moduleEntry) else { return nil }
        var hsm = HSMConfig(module: module.value)
        if module.value.contains("/") { files.append(module) }
        if let e = entries["pin-file"], let pin = reader.path(e) {
            hsm.pinFile = pin.value
            files.append(pin)
        }
        if let e = entries["sign-threads"], let n = reader.integer(e, range: 1...64) { hsm.signThreads = n.value }
        return hsm
    }

    /// Reports `message` at the first of `fields` written in this listener; when all come from
    /// `defaults:` (or are absent), at the listener, saying where the inherited value is.
    private func report(_ message: String, in listener: ListenerFields, _ fields: (key: String, loc: Loc?, path: String?, inherited: Bool)...) {
        if let own = fields.first(where: { $0.loc != nil && !$0.inherited }), let loc = own.loc, let path = own.path {
            sink.add(loc, path, message)
            return
        }
        var note = ""
        if let inherited = fields.first(where: { $0.loc != nil }), let loc = inherited.loc {
            note = " (\(inherited.key) from defaults: at line \(loc.line))"
        }
        sink.add(listener.loc, listener.path, message + note)
    }

    private func field<T>(_ key: String, _ value: Located<T>?) -> (key: String, loc: Loc?, path: String?, inherited: Bool) {
        (key, value?.loc, value?.path, value?.fromDefaults ?? false)
    }

    private func check(_ f: ListenerFields, hsmConfigured: Bool) {
        if f.listen == nil && !f.written.contains("listen") {
            sink.add(f.loc, f.path, "missing listen: (HOST:PORT, [IPv6]:PORT or unix:/path, or a list of them)")
        }
        if f.backend == nil && !f.written.contains("backend") {
            sink.add(f.loc, f.path, "missing backend: (HOST:PORT, unix:/path, echo or http)")
        }
        if f.certificates == nil && !f.written.contains("certificates") {
            sink.add(f.loc, f.path, "missing certificates: (here or under defaults:)")
        }
        checkFleet(f)
        if let auth = f.clientAuth, auth.value != .none, f.clientCA == nil, !f.written.contains("client-ca") {
            report(
                "client-auth: \(auth.value.rawValue) needs client-ca: (the roots trusted for client certificates)",
                in: f, field("client-auth", auth))
        }
        if let pq = f.pqRequired, pq.value, !(f.groups?.value ?? ListenerConfig.defaultGroups).contains(where: { $0.contains("MLKEM") }) {
            report(
                "pq-required: true needs an ML-KEM group in groups: (e.g. X25519MLKEM768)", in: f,
                field("pq-required", pq), field("groups", f.groups))
        }
        let pairs = f.certificates?.value ?? []
        if let policy = f.unknownServerName, policy.value == .reject, !pairs.isEmpty, pairs.allSatisfy({ $0.serverNames.isEmpty }) {
            report(
                "unknown-server-name: reject needs certificates with server-names: (no name would be known)", in: f,
                field("unknown-server-name", policy), field("certificates", f.certificates))
        }
        var claimed: [String: (index: Int, loc: Loc)] = [:]
        for (index, pair) in pairs.enumerated() {
            for name in pair.serverNames {
                if let first = claimed[name.value] {
                    let who = first.index == index ? "is listed twice" : "is also claimed by certificates[\(first.index)] (line \(first.loc.line))"
                    sink.add(name, "server name '\(name.value)' \(who)")
                } else {
                    claimed[name.value] = (index, name.loc)
                }
            }
            if !hsmConfigured {
                for credential in [pair.cert, pair.key] {
                    if case .pkcs11 = credential.value { sink.add(credential, "pkcs11: URIs need the hsm: section (module: …)") }
                }
            }
        }
    }

    private func checkAcrossListeners(_ listeners: [ListenerFields], metrics: Located<NetworkAddress>?) {
        var names: [String: Located<String>] = [:]
        var addresses: [NetworkAddress: (listener: String, loc: Loc)] = [:]
        for f in listeners {
            if let name = f.name {
                if let first = names[name.value] {
                    sink.add(name, "listener name '\(name.value)' is already used at line \(first.loc.line)")
                } else {
                    names[name.value] = name
                }
            }
            for address in f.listen?.value ?? [] {
                if let first = addresses[address.value] {
                    let whose = first.listener == f.path ? "is listed twice" : "is also used by \(first.listener) (line \(first.loc.line))"
                    sink.add(address, "listen address \(address.value) \(whose)")
                } else {
                    addresses[address.value] = (f.path, address.loc)
                }
            }
        }
        if let metrics, let first = addresses[metrics.value] {
            sink.add(metrics, "\(metrics.value) is also a listen address of \(first.listener) (line \(first.loc.line))")
        }
    }

    private func resolve(_ f: ListenerFields) -> ListenerConfig {
        let certificates = (f.certificates?.value ?? []).map { pair in
            CertificatePair(cert: pair.cert.value, key: pair.key.value, serverNames: pair.serverNames.map(\.value), line: pair.loc.line)
        }
        var l = ListenerConfig(listen: f.listen?.value.map(\.value) ?? [], backend: f.backend?.value ?? .echo, certificates: certificates)
        l.name = f.name?.value
        l.line = f.loc.line
        if let v = f.backendConnectTimeout { l.backendConnectTimeout = .milliseconds(v.value) }
        if let v = f.proxyProtocol { l.proxyProtocol = v.value }
        if let v = f.acceptProxyProtocol { l.acceptProxyProtocol = v.value }
        if let v = f.unknownServerName { l.unknownServerName = v.value }
        if let v = f.tlsVersions { l.tlsVersions = v.value }
        if let v = f.groups { l.groups = v.value }
        if let v = f.pqRequired { l.pqRequired = v.value }
        if let v = f.alpn { l.alpn = v.value }
        if let v = f.clientAuth { l.clientAuth = v.value }
        l.clientCA = f.clientCA?.value
        if let v = f.crl { l.crl = v.value.map(\.value) }
        if let v = f.ticketKeys { l.ticketKeys = v.value }
        if let v = f.sessionTimeout { l.sessionTimeout = .milliseconds(v.value) }
        if let v = f.sessionCache { l.sessionCache = v.value }
        if let v = f.tls13Tickets { l.tls13Tickets = v.value }
        if let v = f.staple { l.staple = v.value }
        l.sessionStore = f.sessionStore?.value
        l.fleetKey = f.fleetKey?.value
        l.serviceName = f.serviceName?.value
        if let v = f.sessionStoreTimeout { l.sessionStoreTimeout = .milliseconds(v.value) }
        if let v = f.ticketRotation { l.ticketRotation = .milliseconds(v.value) }
        if let v = f.ticketDistribution { l.ticketDistribution = .milliseconds(v.value) }
        let m = f.limits
        if let v = m.handshakeTimeout { l.limits.handshakeTimeout = .milliseconds(v.value) }
        if let v = m.idleTimeout { l.limits.idleTimeout = v.value == 0 ? nil : .milliseconds(v.value) }
        if let v = m.maxLifetime { l.limits.maxLifetime = v.value == 0 ? nil : .milliseconds(v.value) }
        if let v = m.maxConnections { l.limits.maxConnections = v.value }
        if let v = m.maxHandshakes { l.limits.maxHandshakes = v.value }
        if let v = m.handshakeOverflow { l.limits.handshakeOverflow = v.value }
        if let v = m.handshakeRatePerSource { l.limits.handshakeRatePerSource = v.value == 0 ? nil : v.value }
        if let v = m.maxRequestBytes { l.limits.maxRequestBytes = v.value }
        return l
    }

    static func filePaths(_ f: ListenerFields) -> [Located<String>] {
        var files: [Located<String>] = []
        for pair in f.certificates?.value ?? [] {
            for credential in [pair.cert, pair.key] {
                if case .file(let path) = credential.value { files.append(credential.map { _ in path }) }
            }
        }
        if let ca = f.clientCA { files.append(ca) }
        files += f.crl?.value ?? []
        if let keys = f.ticketKeys, case .file(let path) = keys.value { files.append(keys.map { _ in path }) }
        if let key = f.fleetKey { files.append(key) }
        return files
    }

    static func checkFile(_ file: Located<String>, sink: IssueSink) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: file.value, isDirectory: &isDirectory) {
            sink.add(file, "no such file: \(file.value)")
        } else if isDirectory.boolValue {
            sink.add(file, "is a directory, not a file: \(file.value)")
        } else if !FileManager.default.isReadableFile(atPath: file.value) {
            sink.add(file, "cannot read \(file.value) (permissions)")
        }
    }
}
