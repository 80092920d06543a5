// The fleet keys of a listener: `session-store`, `fleet-key`, `service-name`,
// `session-store-timeout`, `ticket-rotation`, `ticket-distribution`.

extension Reader {
    func fleetFields(_ entries: [String: Entry], into f: inout ListenerFields) {
        if let e = entries["session-store"], let url = string(e, what: "a Redis URL (redis://HOST:PORT, rediss://…, redis+cluster://H:P,H:P)") {
            if let problem = Self.sessionStoreProblem(url.value) { sink.add(url, problem) } else { f.sessionStore = url }
        }
        if let e = entries["fleet-key"] { f.fleetKey = path(e) }
        if let e = entries["service-name"], let name = string(e, what: "a service name") {
            let utf8 = Array(name.value.utf8)
            if (1...255).contains(utf8.count), utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                f.serviceName = name
            } else {
                sink.add(name, "a service name is 1 to 255 printable ASCII characters without spaces")
            }
        }
        if let e = entries["session-store-timeout"] { f.sessionStoreTimeout = duration(e, range: 1...10_000) }
        if let e = entries["ticket-rotation"], let ms = duration(e, range: 1000...604_800_000) {
            if ms.value % 1000 == 0 { f.ticketRotation = ms } else { sink.add(ms, "must be whole seconds") }
        }
        if let e = entries["ticket-distribution"], let ms = duration(e, range: 1000...86_400_000) {
            if ms.value % 1000 == 0 { f.ticketDistribution = ms } else { sink.add(ms, "must be whole seconds") }
        }
    }

    /// Why `url` is not a Redis URL the session store accepts, or nil.
    static func sessionStoreProblem(_ url: String) -> String? {
        guard let range = url.range(of: "://") else {
            return "expected a Redis URL: redis://HOST:PORT[/DB], rediss://…, or redis+cluster://H:P,H:P"
        }
        let scheme = url[..<range.lowerBound].lowercased()
        guard ["redis", "rediss", "redis+cluster", "rediss+cluster"].contains(scheme) else {
            return "unsupported scheme '\(scheme)' (redis, rediss, redis+cluster or rediss+cluster)"
        }
        let rest = url[range.upperBound...]
        let authority = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let hosts = authority.split(separator: "@").last ?? ""
        if hosts.isEmpty { return "the Redis URL names no host" }
        return nil
    }
}

extension ConfigParser {
    /// The fleet keys make sense together only.
    func checkFleet(_ f: ListenerFields) {
        if f.sessionStore == nil {
            func alone<T>(_ key: String, _ value: Located<T>?) {
                if let value, !value.fromDefaults { sink.add(value, "\(key) needs session-store: (a Redis URL)") }
            }
            alone("fleet-key", f.fleetKey)
            alone("service-name", f.serviceName)
            alone("session-store-timeout", f.sessionStoreTimeout)
            alone("ticket-rotation", f.ticketRotation)
            alone("ticket-distribution", f.ticketDistribution)
            return
        }
        guard let store = f.sessionStore else { return }
        if f.fleetKey == nil && !f.written.contains("fleet-key") {
            if store.fromDefaults {
                sink.add(
                    f.loc, f.path,
                    "session-store: needs fleet-key: (the file from `qssl fleet-key generate`) (session-store from defaults: at line \(store.loc.line))")
            } else {
                sink.add(store, "session-store: needs fleet-key: (the file from `qssl fleet-key generate`)")
            }
        }
        if let keys = f.ticketKeys, case .file = keys.value {
            if keys.fromDefaults {
                sink.add(
                    store,
                    "ticket-keys: a file and session-store: cannot go together (the fleet's ticket keys are in Redis) (ticket-keys from defaults: at line \(keys.loc.line))"
                )
            } else {
                sink.add(keys, "ticket-keys: a file and session-store: cannot go together (the fleet's ticket keys are in Redis)")
            }
        }
        let rotation = f.ticketRotation?.value ?? 3_600_000
        if let distribution = f.ticketDistribution, distribution.value >= rotation {
            sink.add(distribution, "ticket-distribution must be shorter than ticket-rotation (\(rotation / 1000)s)")
        }
    }
}
