import Testing

@testable import QSSLServeConfig

/// The fleet keys (issue 22): session-store, fleet-key, service-name, session-store-timeout,
/// ticket-rotation, ticket-distribution.
@Suite struct FleetConfigTests {
    @Test func fleetKeysParseWithDefaultsInherited() throws {
        let config = try #require(
            parsed(
                """
                defaults:
                  session-store: "redis+cluster://10.0.0.5:6379,10.0.0.6:6379"
                  fleet-key: /etc/qssl/fleet.key
                  ticket-rotation: 2h
                listeners:
                  - listen: 127.0.0.1:8443
                    backend: echo
                    service-name: shop
                    session-store-timeout: 80ms
                    ticket-distribution: 30s
                    certificates:
                      - cert: /c.pem
                        key: /k.pem
                  - listen: 127.0.0.1:8444
                    backend: echo
                    certificates:
                      - cert: /c.pem
                        key: /k.pem
                """))
        let (a, b) = (config.listeners[0], config.listeners[1])
        #expect(a.sessionStore == "redis+cluster://10.0.0.5:6379,10.0.0.6:6379" && b.sessionStore == a.sessionStore)
        #expect(a.fleetKey == "/etc/qssl/fleet.key")
        #expect(a.serviceName == "shop" && b.serviceName == nil)
        #expect(a.sessionStoreTimeout == .milliseconds(80) && b.sessionStoreTimeout == .milliseconds(50))
        #expect(a.ticketRotation == .seconds(7200) && a.ticketDistribution == .seconds(30) && b.ticketDistribution == .seconds(60))
        #expect(try #require(parsed(minimalYAML)).listeners[0].sessionStore == nil)
    }

    @Test func fleetMistakesAreReportedAtTheirLine() {
        let found = issues(
            """
            listeners:
              - listen: 127.0.0.1:8443
                backend: echo
                session-store: "memcached://10.0.0.5"
                service-name: "two words"
                certificates:
                  - cert: /c.pem
                    key: /k.pem
              - listen: 127.0.0.1:8444
                backend: echo
                session-store: redis://10.0.0.5:6379
                ticket-keys: /etc/qssl/ticket.keys
                ticket-rotation: 60s
                ticket-distribution: 60s
                session-store-timeout: 20s
                certificates:
                  - cert: /c.pem
                    key: /k.pem
              - listen: 127.0.0.1:8445
                backend: echo
                fleet-key: /etc/qssl/fleet.key
                certificates:
                  - cert: /c.pem
                    key: /k.pem
            """)
        expectIssue(found, line: 4, path: "listeners[0].session-store", "unsupported scheme 'memcached'")
        expectIssue(found, line: 5, path: "listeners[0].service-name", "printable ASCII")
        expectIssue(found, line: 11, path: "listeners[1].session-store", "needs fleet-key")
        expectIssue(found, line: 12, path: "listeners[1].ticket-keys", "cannot go together")
        expectIssue(found, line: 14, path: "listeners[1].ticket-distribution", "shorter than ticket-rotation")
        expectIssue(found, line: 15, path: "listeners[1].session-store-timeout", "must be 1ms to 10s")
        expectIssue(found, line: 21, path: "listeners[2].fleet-key", "needs session-store")
    }
}
