import Testing

@testable import QSSLServeConfig

@Suite struct ErrorTests {
    @Test func outOfRangeValueAtItsLineAndColumn() {
        let found = issues(
            """
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                certificates: [{cert: /c, key: /k}]
              - listen: 127.0.0.1:2
                backend: echo
                certificates: [{cert: /c, key: /k}]
                limits:
                  max-handshakes: 0
            """)
        #expect(found == [ConfigIssue(line: 9, column: 23, path: "listeners[1].limits.max-handshakes", message: "must be 1 to 1000000, not 0")])
        let errors = ConfigErrors(file: "/etc/qssl/serve.yaml", issues: found)
        #expect(errors.description == "/etc/qssl/serve.yaml:9:23: listeners[1].limits.max-handshakes: must be 1 to 1000000, not 0")
    }

    @Test func unknownKeysWithSuggestions() {
        let found = issues(
            """
            acess-log: json
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                max-handshakes: 3
                certificates: [{cert: /c, key: /k, server_names: [a.example]}]
                limits: {maxConnections: 3, groups: [x25519]}
                bogus-thing: 1
            """)
        expectIssue(found, line: 1, column: 1, path: "acess-log", "did you mean 'access-log'?")
        expectIssue(found, line: 5, column: 5, path: "listeners[0].max-handshakes", "belongs under limits:")
        expectIssue(found, line: 6, path: "listeners[0].certificates[0].server_names", "did you mean 'server-names'?")
        expectIssue(found, line: 7, column: 14, path: "listeners[0].limits.maxConnections", "did you mean 'max-connections'?")
        expectIssue(found, line: 7, path: "listeners[0].limits.groups", "belongs to the listener")
        expectIssue(found, line: 8, column: 5, path: "listeners[0].bogus-thing", "unknown key 'bogus-thing'")
        #expect(found.count == 6)
    }

    @Test func duplicateKeysAreAllReportedAtTheLaterOccurrence() {
        let found = issues(
            """
            access-log: text
            access-log: json
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                backend: http
                certificates: [{cert: /c, key: /k, cert: /d}]
                limits:
                  max-handshakes: 0
            """)
        expectIssue(found, line: 2, column: 1, path: "access-log", "duplicate key (first at line 1)")
        expectIssue(found, line: 6, column: 5, path: "listeners[0].backend", "duplicate key (first at line 5)")
        expectIssue(found, line: 7, column: 40, path: "listeners[0].certificates[0].cert", "duplicate key (first at line 7)")
        expectIssue(found, line: 9, column: 23, path: "listeners[0].limits.max-handshakes", "must be 1 to")
        #expect(found.count == 4)
    }

    @Test func wrongTypes() {
        let found = issues(
            """
            metrics: [1]
            hsm: /usr/lib/x.so
            listeners:
              - listen: {a: 1}
                backend: echo
                pq-required: maybe
                tls13-tickets: two
                certificates: /c.pem
                groups: {x: 1}
                session-cache:
            """)
        expectIssue(found, line: 1, column: 10, path: "metrics", "expected an address, got a list")
        expectIssue(found, line: 2, column: 6, path: "hsm", "expected a mapping")
        expectIssue(found, line: 4, column: 13, path: "listeners[0].listen", "got a mapping")
        expectIssue(found, line: 6, column: 18, path: "listeners[0].pq-required", "expected true or false, got 'maybe'")
        expectIssue(found, line: 7, column: 20, path: "listeners[0].tls13-tickets", "expected an integer")
        expectIssue(found, line: 8, column: 19, path: "listeners[0].certificates", "expected a list of certificates")
        expectIssue(found, line: 9, column: 13, path: "listeners[0].groups", "expected a string or a list of strings")
        expectIssue(found, line: 10, path: "listeners[0].session-cache", "expected true or false, got nothing")
        #expect(found.count == 8)
    }

    @Test func durationErrors() {
        let found = issues(
            """
            drain-timeout: -5s
            threads: 0
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                certificates: [{cert: /c, key: /k}]
                session-timeout: 0s
                backend-connect-timeout: 5 parsecs
                limits:
                  handshake-timeout: 99999999999999999999s
                  idle-timeout: 1.5s
                  max-lifetime: 5y
            """)
        expectIssue(found, line: 1, column: 16, path: "drain-timeout", "must not be negative")
        expectIssue(found, line: 2, column: 10, path: "threads", "must be 1 to 1024, not 0")
        expectIssue(found, line: 7, column: 22, path: "listeners[0].session-timeout", "must be 1s to 604800s, not 0s")
        expectIssue(found, line: 8, path: "listeners[0].backend-connect-timeout", "expected a duration")
        expectIssue(found, line: 10, column: 26, path: "listeners[0].limits.handshake-timeout", "too large")
        expectIssue(found, line: 11, path: "listeners[0].limits.idle-timeout", "fractions are not accepted")
        expectIssue(found, line: 12, path: "listeners[0].limits.max-lifetime", "unknown unit 'y'")
        #expect(found.count == 7)
    }

    @Test func addressErrors() {
        let found = issues(
            """
            metrics: unix:/run/m.sock
            listeners:
              - listen: ["0.0.0.0:0", "::1:443", "[::1]443", "host", "[fe80::zz]:1", "unix:", "unix:rel/x", "300.1.1.1:5", "a_b:1"]
                backend: 127.0.0.1:99999
                certificates: [{cert: /c, key: /k}]
            """)
        expectIssue(found, line: 1, path: "metrics", "must be HOST:PORT, not a Unix socket")
        expectIssue(found, line: 3, column: 14, path: "listeners[0].listen[0]", "port must be 1 to 65535, not 0")
        expectIssue(found, line: 3, column: 27, path: "listeners[0].listen[1]", "IPv6 addresses go in brackets")
        expectIssue(found, line: 3, path: "listeners[0].listen[2]", "expected :PORT after ']'")
        expectIssue(found, line: 3, path: "listeners[0].listen[3]", "expected HOST:PORT")
        expectIssue(found, line: 3, path: "listeners[0].listen[4]", "is not an IPv6 address")
        expectIssue(found, line: 3, path: "listeners[0].listen[5]", "unix: needs a socket path")
        expectIssue(found, line: 3, path: "listeners[0].listen[6]", "must be absolute")
        expectIssue(found, line: 3, path: "listeners[0].listen[7]", "is not an IPv4 address")
        expectIssue(found, line: 3, path: "listeners[0].listen[8]", "may hold only letters, digits and hyphens")
        expectIssue(found, line: 4, column: 14, path: "listeners[0].backend", "port must be 1 to 65535, not 99999")
        #expect(found.count == 11)
    }

    @Test func semanticChecks() {
        let found = issues(
            """
            listeners:
              - name: web
                listen: 127.0.0.1:443
                backend: echo
                client-auth: required
                pq-required: true
                groups: [x25519, secp384r1]
                certificates:
                  - {cert: /a, key: /a, server-names: ["www.example.com", "*.example.com"]}
                  - {cert: /b, key: "pkcs11:object=k", server-names: ["WWW.example.com", "bad_name.example", "*.*.x", "10.0.0.1", "w*.x.com"]}
              - name: web
                listen: ["127.0.0.1:443", "127.0.0.1:443"]
                backend: echo
                unknown-server-name: reject
                certificates: [{cert: /c, key: /k}]
            """)
        expectIssue(found, line: 5, column: 18, path: "listeners[0].client-auth", "needs client-ca")
        expectIssue(found, line: 6, column: 18, path: "listeners[0].pq-required", "needs an ML-KEM group")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].key", "need the hsm: section")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].server-names[0]", "also claimed by certificates[0] (line 9)")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].server-names[1]", "only letters, digits and hyphens")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].server-names[2]", "wildcard must be the whole leftmost label")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].server-names[3]", "looks like an IP address")
        expectIssue(found, line: 10, path: "listeners[0].certificates[1].server-names[4]", "wildcard must be the whole leftmost label")
        expectIssue(found, line: 11, column: 11, path: "listeners[1].name", "'web' is already used at line 2")
        expectIssue(found, line: 12, column: 14, path: "listeners[1].listen[0]", "also used by listeners[0] (line 3)")
        expectIssue(found, line: 12, column: 31, path: "listeners[1].listen[1]", "also used by listeners[0] (line 3)")
        expectIssue(found, line: 14, column: 26, path: "listeners[1].unknown-server-name", "needs certificates with server-names")
        #expect(found.count == 12)
    }

    @Test func metricsMustNotTakeAListenAddress() {
        let found = issues("metrics: 127.0.0.1:8443\n" + minimalYAML)
        #expect(
            found == [
                ConfigIssue(
                    line: 1, column: 10, path: "metrics",
                    message: "127.0.0.1:8443 is also a listen address of listeners[0] (line 3)")
            ])
    }

    @Test func inheritedProblemsAreReportedAtTheListener() {
        let found = issues(
            """
            defaults:
              client-auth: optional
              certificates: [{cert: /c, key: /k, server-names: [a.example, a.example]}]
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
              - listen: 127.0.0.1:2
                backend: echo
                client-ca: /ca.pem
              - backend: "[::]:1"
            """)
        expectIssue(
            found, line: 5, column: 5, path: "listeners[0]",
            "needs client-ca: (the roots trusted for client certificates) (client-auth from defaults: at line 2)")
        expectIssue(found, line: 3, path: "defaults.certificates[0].server-names[1]", "'a.example' is listed twice")
        expectIssue(found, line: 10, column: 5, path: "listeners[2]", "missing listen:")
        expectIssue(found, line: 10, column: 5, path: "listeners[2]", "needs client-ca")
        #expect(found.count == 4)
    }

    @Test func missingRequiredParts() {
        expectIssue(issues("access-log: text\n"), line: 1, column: 1, path: "", "missing listeners:")
        expectIssue(issues("listeners: []\n"), line: 1, column: 12, path: "listeners", "at least one listener")
        let found = issues(
            """
            hsm: {pin-file: /p}
            defaults:
              listen: 127.0.0.1:1
            listeners:
              - name: x
                certificates: [{cert: /c}]
            """)
        expectIssue(found, line: 1, column: 6, path: "hsm", "missing module:")
        expectIssue(found, line: 3, column: 3, path: "defaults.listen", "cannot be in defaults:")
        expectIssue(found, line: 5, column: 5, path: "listeners[0]", "missing listen:")
        expectIssue(found, line: 5, column: 5, path: "listeners[0]", "missing backend:")
        expectIssue(found, line: 6, column: 20, path: "listeners[0].certificates[0]", "missing key:")
        #expect(found.count == 5)
    }

    @Test func enumsAndListsReportEachBadItem() {
        let found = issues(
            """
            access-log: xml
            listeners:
              - listen: 127.0.0.1:1
                backend: echo
                certificates: [{cert: /c, key: /k}]
                client-auth: requird
                tls-versions: ["1.3", "1.1", "1.3"]
                groups: [X25519Kyber768Draft00, x25519, X25519, secp521r1, "x25519,secp256r1"]
                alpn: [h2, h2]
                limits: {handshake-overflow: drop}
            """)
        expectIssue(found, line: 1, column: 13, path: "access-log", "must be one of text, json; got 'xml'")
        expectIssue(found, line: 6, path: "listeners[0].client-auth", "did you mean 'required'?")
        expectIssue(found, line: 7, column: 27, path: "listeners[0].tls-versions[1]", "TLS 1.1 is not supported")
        expectIssue(found, line: 8, column: 14, path: "listeners[0].groups[0]", "Kyber drafts are not supported")
        expectIssue(found, line: 8, path: "listeners[0].groups[2]", "x25519 is listed twice")
        expectIssue(found, line: 8, path: "listeners[0].groups[3]", "did you mean 'secp384r1'?")
        expectIssue(found, line: 8, path: "listeners[0].groups[4]", "write a list: [x25519, secp256r1]")
        expectIssue(found, line: 9, path: "listeners[0].alpn[1]", "'h2' is listed twice")
        expectIssue(found, line: 10, path: "listeners[0].limits.handshake-overflow", "must be one of wait, refuse")
        #expect(found.count == 9)
    }

    @Test func yamlSyntaxErrorsHaveTheirLine() {
        let unclosed = issues("listeners:\n  - listen: [127.0.0.1:1\n    backend: echo\n")
        #expect(unclosed.count == 1)
        #expect(unclosed.first?.line == 3 && unclosed.first?.path == "")
        #expect(unclosed.first?.message.hasPrefix("YAML syntax error:") == true)

        let badIndent = issues("listeners:\n  - listen: x\n   backend: y\n")
        #expect(badIndent.first?.line == 3)

        let control = issues("access-log: text\nmetrics: \"a\u{1}b\"\n")
        #expect(control.map(\.line) == [2])
        #expect(control.first?.column == 12)

        let twoDocs = issues("\(minimalYAML)\n---\naccess-log: json\n")
        #expect(twoDocs.first?.message.contains("only one document") == true)
        #expect(twoDocs.first?.line == 7)

        #expect(issues("").first?.message.contains("empty") == true)
        #expect(issues("# nothing\n").first?.line == 1)
        expectIssue(issues("- a\n- b\n"), line: 1, column: 1, path: "", "expected a mapping at the top level")
        #expect(issues("listeners: *nowhere\n").first?.message.contains("undefined alias") == true)
    }

    @Test func duplicateKeyBeforeASyntaxErrorIsStillReported() {
        // (The mapping with the duplicates must have ended before the syntax error for Yams to see them.)
        let found = issues("a:\n  x: 1\n  x: 2\nb: [\n")
        #expect(found.count == 2)
        expectIssue(found, line: 2, column: 3, path: "", "duplicate key 'x'")
        #expect(found.contains { $0.line == 5 && $0.message.hasPrefix("YAML syntax error") })
    }

    @Test func duplicateKeysInFlowMappingsKeepTheirColumns() {
        let found = issues(
            "listeners: [{listen: \"127.0.0.1:1\", backend: echo, \"listen\": x, backend: y, certificates: [{cert: /c, key: /k}], limits: {max-handshakes: 0}}]\n"
        )
        expectIssue(found, line: 1, column: 52, path: "listeners[0].listen", "duplicate key (first at line 1)")
        expectIssue(found, line: 1, column: 65, path: "listeners[0].backend", "duplicate key")
        expectIssue(found, line: 1, column: 139, path: "listeners[0].limits.max-handshakes", "must be 1 to 1000000")
        #expect(found.count == 3)
    }

    @Test func deepNestingIsRefusedWithoutCrashing() {
        let deep = "listeners: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        expectIssue(issues(deep), line: 1, path: "", "nesting is too deep")
        let blocks = (0..<400).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n")
        #expect(issues(blocks).first?.message.contains("nesting is too deep") == true)
    }
}
