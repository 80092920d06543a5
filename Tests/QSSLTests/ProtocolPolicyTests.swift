import QSSLWire
import Testing

@testable import QSSL

@Suite("ProtocolPolicy: one value for what both sides configure, validated once")
struct ProtocolPolicyTests {
    @Test("the configurations' usual property names read and write their embedded policy")
    func forwarding() throws {
        var client = clientConfig()
        var server = try serverConfig()
        var policy = ProtocolPolicy()
        policy.versions = [.tls12]
        policy.groups = [.x25519MLKEM768, .x25519]
        policy.cipherSuites = [.aes128GCMSHA256]
        policy.tls12CipherSuites = Defaults.tls12CipherSuites.filter(\.isHybrid)
        policy.alpnProtocols = ["h2"]
        policy.requirePostQuantum = true
        let ways: [(inout ClientConfiguration, inout ServerConfiguration) -> Void] = [
            { c, s in
                c.policy = policy
                s.policy = policy
            },
            { c, s in
                c.versions = policy.versions
                c.groups = policy.groups
                c.cipherSuites = policy.cipherSuites
                c.tls12CipherSuites = policy.tls12CipherSuites
                c.alpnProtocols = policy.alpnProtocols
                c.requirePostQuantum = policy.requirePostQuantum
                s.versions = policy.versions
                s.groups = policy.groups
                s.cipherSuites = policy.cipherSuites
                s.tls12CipherSuites = policy.tls12CipherSuites
                s.alpnProtocols = policy.alpnProtocols
                s.requirePostQuantum = policy.requirePostQuantum
            }
        ]
        for apply in ways {
            var c = client
            var s = server
            apply(&c, &s)
            #expect(c.policy == policy && s.policy == policy)
            #expect(c.versions == [.tls12] && s.groups == [.x25519MLKEM768, .x25519] && c.requirePostQuantum && s.alpnProtocols == ["h2"])
        }
        client.policy = policy
        server.policy = policy
        let o = try runPair(client: client, server: server)
        #expect(o.server.summary?.version == .tls12 && o.server.summary?.alpnProtocol == "h2")
        #expect(o.server.summary?.usedPostQuantumKeyExchange == true)
    }

    @Test(
        "a client and a server refuse the same broken policy with the same misuse",
        arguments: [
            "noGroups", "noVersions", "ssl3", "noTLS13Suites", "noTLS12Suites", "pqWithoutMLKEM"
        ])
    func sameValidation(broken: String) throws {
        var policy = ProtocolPolicy()
        switch broken {
        case "noGroups": policy.groups = []
        case "noVersions": policy.versions = []
        case "ssl3": policy.versions = [ProtocolVersion(rawValue: 0x0300)]
        case "noTLS13Suites": policy.cipherSuites = []
        case "noTLS12Suites": policy.tls12CipherSuites = []
        default:
            policy.groups = [.x25519]
            policy.requirePostQuantum = true
        }
        var client = clientConfig()
        client.policy = policy
        var server = try serverConfig()
        server.policy = policy
        var clientError: TLSError?
        var serverError: TLSError?
        do { try client.validate() } catch { clientError = error }
        do { try server.validate() } catch { serverError = error }
        #expect(clientError?.code.isAPIMisuse == true)
        #expect(clientError?.code == serverError?.code)
        #expect(throws: TLSError.self) { _ = try TLSConnection.client(configuration: client, serverName: "localhost") }
        #expect(throws: TLSError.self) { _ = try TLSConnection.server(configuration: server) }
    }

    @Test("within: a selected policy keeps the floor's PQ requirement and only the floor's versions")
    func within() throws {
        var floor = ProtocolPolicy()
        floor.versions = [.tls13]
        floor.requirePostQuantum = true
        var chosen = ProtocolPolicy()
        chosen.alpnProtocols = ["h2"]
        let narrowed = try chosen.within(floor, serverName: "a.example")
        #expect(narrowed.versions == [.tls13] && narrowed.requirePostQuantum && narrowed.alpnProtocols == ["h2"])
        chosen.groups = [.x25519]
        #expect(throws: TLSError.incompatible(.postQuantumKeyExchangeRequired)) { try chosen.within(floor, serverName: nil) }
        chosen.versions = [.tls12]
        #expect(throws: TLSError.incompatible(.noCommonVersion)) { try chosen.within(floor, serverName: nil) }
    }
}
