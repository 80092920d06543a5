import QSSLWire

// The TLS 1.2 client: a ServerHello without supported_versions, full or abbreviated handshake.

extension ExpectServerHello {
    /// RFC 5246 §7.4.1.3 and RFC 8446 §4.1.3: a ServerHello without supported_versions.
    func processTLS12ServerHello(_ hello: ServerHello, _ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> TLS12ClientState {
        if config.versions.contains(.tls13) {
            // A 1.3-capable client must refuse a downgrade the server marked.
            let tail = Array(hello.random.suffix(8))
            if tail == ServerHello.downgradeTLS12 || tail == ServerHello.downgradeTLS11 { throw .misbehaved(.sentDowngradeSentinel) }
        }
        guard config.versions.contains(.tls12), hello.legacyVersion == .tls12 else {
            throw .incompatible(.noCommonVersion, "server selected \(hello.legacyVersion)")
        }
        // In TLS 1.2 the session ID is the server's choice (RFC 5246 §7.4.1.3); it matters only on resumption.
        guard clientHello.cipherSuites.contains(hello.cipherSuite), let suite = TLS12CipherSuite.named(hello.cipherSuite) else {
            throw .misbehaved(.selectedUnofferedCipherSuite, "\(hello.cipherSuite)")
        }
        guard hello.legacyCompressionMethod == 0 else { throw .misbehaved(.sentNonZeroCompression) }
        let ext = try DecodedServerExtensions(hello.extensions, in: .serverHello12, offered: offeredExtensions)
        // RFC 5746 §3.4: on an initial handshake the server's renegotiated_connection is empty.
        if let reneg = ext.renegotiationInfo, reneg != [0] {
            throw .incompatible(.secureRenegotiationFailed, "non-empty renegotiation_info on an initial handshake")
        }
        let ems = ext.extendedMasterSecret
        // PROTOCOL.md §3: the hybrid suites require extended master secret.
        if suite.isHybrid && !ems { throw .incompatible(.extendedMasterSecretRequired, "hybrid suite without extended master secret") }
        if config.requirePostQuantum && !suite.isHybrid {
            throw .incompatible(.postQuantumKeyExchangeRequired, "server selected \(suite.suite.tls12Name ?? "\(suite.suite)")")
        }
        var alpn: String?
        if let list = ext.alpn {
            guard list.count == 1, config.alpnProtocols.contains(list[0]) else { throw .misbehaved(.selectedUnofferedApplicationProtocol) }
            alpn = list[0]
        }
        var transcript = self.transcript
        transcript.append(message)
        let expectsTicket = ext.sessionTicket
        let prf = TLS12PRF(primitives: context.primitives, hash: suite.hash)
        // RFC 5246 §7.4.1.3, RFC 5077 §3.4: the server echoing our session ID resumes the session
        // we offered; it cannot resume one we did not (our ID may be a random one for middleboxes).
        if !hello.legacySessionIDEcho.isEmpty && hello.legacySessionIDEcho == clientHello.legacySessionID {
            guard let session = tls12Session else { throw .misbehaved(.resumedUnofferedSession, "the ServerHello echoes a session ID we did not offer") }
            let state = session.state
            guard hello.cipherSuite == state.cipherSuite else {
                throw .misbehaved(.changedSessionParametersOnResumption, "resumed with \(suite.suite.tls12Name ?? "another suite")")
            }
            // RFC 7627 §5.3: the client aborts when EMS differs from the session's.
            guard ems == state.extendedMasterSecret else {
                throw .incompatible(.extendedMasterSecretRequired, "extended master secret differs from the resumed session's")
            }
            let keys = TLS12KeyBlock(prf: prf, masterSecret: state.secret, clientRandom: clientHello.random, serverRandom: hello.random, suite: suite)
            let summary = HandshakeSummary(
                version: .tls12, cipherSuite: suite.suite, group: state.group, peerSignatureScheme: nil, localSignatureScheme: nil,
                helloRetryRequest: false, resumed: true, peerCertificates: [], alpnProtocol: alpn, serverName: serverName)
            let keep = TLS12ClientSessionKeeping(
                config: config, key: sessionKey, state: state, sessionID: session.sessionID,
                offeredTicket: session.ticket, expectsTicket: expectsTicket)
            return .finishing(
                .expectChangeCipherSpec(
                    TLS12ClientFinishing(
                        keys: TLS12FinishedKeys(suite: suite, prf: prf, masterSecret: state.secret, keys: keys), transcript: transcript, summary: summary,
                        server: .resumption(ResumptionAccepted(echoed: session)), respondsWithFinished: true, session: keep)))
        }
        return .expectCertificate(
            TLS12ClientHandshake(
                config: config, serverName: serverName, suite: suite, prf: prf,
                clientRandom: clientHello.random, serverRandom: hello.random, transcript: transcript, extendedMasterSecret: ems, alpn: alpn,
                sessionID: hello.legacySessionIDEcho, expectsTicket: expectsTicket, sessionKey: sessionKey,
                expectsCertificateStatus: ext.statusRequest))
    }
}
