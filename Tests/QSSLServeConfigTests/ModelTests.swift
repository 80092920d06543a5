import Testing

@testable import QSSLServeConfig

@Suite struct ModelTests {
    @Test func sampleParsesToTheExpectedModel() throws {
        let config = try #require(parsed(ServeConfigFile.sampleYAML))
        #expect(config.accessLog == .json)
        #expect(config.metrics == .tcp(host: "127.0.0.1", port: 9100))
        #expect(config.drainTimeout == .seconds(30))
        #expect(config.threads == 2)
        var hsm = HSMConfig(module: "/usr/lib/softhsm/libsofthsm2.so")
        hsm.pinFile = "/etc/qssl/pin"
        hsm.signThreads = 4
        #expect(config.hsm == hsm)
        try #require(config.listeners.count == 2)

        let web = config.listeners[0]
        #expect(web.name == "public-web")
        #expect(web.listen == [.tcp(host: "0.0.0.0", port: 443), .tcp(host: "::", port: 443)])
        #expect(web.backend == .address(.tcp(host: "127.0.0.1", port: 8080)))
        #expect(web.backendConnectTimeout == .seconds(5))
        #expect(web.proxyProtocol == .v2)
        #expect(web.acceptProxyProtocol == .off)
        #expect(
            web.certificates == [
                CertificatePair(
                    cert: .file("/etc/qssl/pq-chain.pem"), key: .file("/etc/qssl/pq-key.pem"),
                    serverNames: ["www.example.com", "*.example.com"], line: 42),
                CertificatePair(cert: .file("/etc/qssl/fallback-chain.pem"), key: .pkcs11("pkcs11:token=qssl;object=fallback-key"), line: 45)
            ])
        #expect(web.tlsVersions == [.tls13, .tls12])
        #expect(web.groups == ["SecP384r1MLKEM1024", "X25519MLKEM768", "x25519"])
        #expect(web.alpn == ["h2", "http/1.1"])
        #expect(web.ticketKeys == .file("/etc/qssl/ticket.keys"))
        #expect(web.staple)
        #expect(web.sessionTimeout == .seconds(3600))
        #expect(web.limits.maxHandshakes == 512)
        #expect(web.limits.handshakeTimeout == .seconds(10))
        #expect(web.limits.idleTimeout == .seconds(300))
        #expect(web.limits.maxLifetime == nil)
        #expect(web.limits.handshakeRatePerSource == nil)

        let api = config.listeners[1]
        #expect(api.name == "mtls-api")
        #expect(api.listen == [.tcp(host: "::1", port: 8443)])
        #expect(api.backend == .address(.unix(path: "/run/api.sock")))
        #expect(api.pqRequired)
        #expect(api.groups == ["X25519MLKEM768", "SecP384r1MLKEM1024"])
        #expect(api.clientAuth == .required)
        #expect(api.clientCA == "/etc/qssl/client-cas.pem")
        #expect(api.crl == ["/etc/qssl/ca.crl"])
        #expect(api.unknownServerName == .reject)
        #expect(api.ticketKeys == .rotating)
        #expect(api.limits.maxHandshakes == 256)
        #expect(api.certificates.first?.serverNames == ["api.example.com"])
    }

    @Test func minimalConfigGetsEveryDefault() throws {
        let config = try #require(parsed(minimalYAML))
        #expect(config.accessLog == .text)
        #expect(config.metrics == nil)
        #expect(config.hsm == nil)
        #expect(config.drainTimeout == .seconds(30))
        let l = try #require(config.listeners.first)
        var expected = ListenerConfig(
            listen: [.tcp(host: "127.0.0.1", port: 8443)], backend: .echo,
            certificates: [CertificatePair(cert: .file("/c.pem"), key: .file("/k.pem"), line: 5)])
        expected.line = 2
        #expect(l == expected)
        #expect(l.groups == ListenerConfig.defaultGroups)
        #expect(l.tlsVersions == [.tls13, .tls12])
        #expect(l.limits == Limits())
        #expect(l.limits.maxConnections == 10_000 && l.limits.maxRequestBytes == 65_536)
        #expect(l.sessionCache && l.tls13Tickets == 2 && !l.staple && !l.pqRequired)
        #expect(l.ticketKeys == .rotating && l.clientAuth == .none && l.unknownServerName == .useDefault)
    }

    @Test func defaultsMergeIntoEveryListener() throws {
        let config = try #require(
            parsed(
                """
                defaults:
                  certificates:
                    - cert: /shared.pem
                      key: /shared.key
                  groups: [X25519MLKEM768]
                  ticket-keys: none
                  limits:
                    max-handshakes: 64
                    idle-timeout: 0
                listeners:
                  - listen: 127.0.0.1:1
                    backend: http
                  - listen: unix:/run/x.sock
                    backend: "[::1]:80"
                    groups: [x25519]
                    certificates:
                      - {cert: /own.pem, key: /own.key}
                    limits:
                      max-connections: 5
                      idle-timeout: 1m
                """))
        try #require(config.listeners.count == 2)
        let a = config.listeners[0]
        let b = config.listeners[1]
        #expect(a.certificates.map(\.cert) == [.file("/shared.pem")])
        #expect(a.groups == ["X25519MLKEM768"])
        #expect(a.ticketKeys == .disabled)
        #expect(a.limits.maxHandshakes == 64 && a.limits.idleTimeout == nil && a.limits.maxConnections == 10_000)
        #expect(b.certificates.map(\.cert) == [.file("/own.pem")])
        #expect(b.groups == ["x25519"])
        #expect(b.ticketKeys == .disabled)
        #expect(b.backend == .address(.tcp(host: "::1", port: 80)))
        #expect(b.listen == [.unix(path: "/run/x.sock")])
        #expect(b.limits.maxHandshakes == 64 && b.limits.maxConnections == 5 && b.limits.idleTimeout == .seconds(60))
    }

    @Test func flexibleSpellings() throws {
        let config = try #require(
            parsed(
                """
                drain-timeout: 90
                threads: 1
                listeners:
                  - listen: LOCALHOST:443
                    backend: HTTP
                    tls-versions: [1.3]
                    groups: x25519mlkem768
                    accept-proxy-protocol: true
                    crl: /one.crl
                    certificates: [{cert: /c, key: /k, server-names: WWW.Example.COM}]
                    limits: {handshake-timeout: 1m30s, max-lifetime: 2d, max-request-bytes: 1_048_576, handshake-rate-per-source: 20}
                """))
        let l = try #require(config.listeners.first)
        #expect(config.drainTimeout == .seconds(90))
        #expect(config.threads == 1)
        #expect(l.listen == [.tcp(host: "localhost", port: 443)])
        #expect(l.backend == .http)
        #expect(l.tlsVersions == [.tls13])
        #expect(l.groups == ["X25519MLKEM768"])
        #expect(l.acceptProxyProtocol == .either)
        #expect(l.crl == ["/one.crl"])
        #expect(l.certificates.first?.serverNames == ["www.example.com"])
        #expect(l.limits.handshakeTimeout == .seconds(90))
        #expect(l.limits.maxLifetime == .seconds(172_800))
        #expect(l.limits.maxRequestBytes == 1_048_576)
        #expect(l.limits.handshakeRatePerSource == 20)
    }

    @Test func severalCertificatesWithoutServerNamesAreFine() {
        #expect(
            issues(
                """
                listeners:
                  - listen: 127.0.0.1:1
                    backend: echo
                    certificates:
                      - {cert: /mldsa.pem, key: /mldsa.key}
                      - {cert: /ecdsa.pem, key: /ecdsa.key}
                """
            ).isEmpty)
    }
}
