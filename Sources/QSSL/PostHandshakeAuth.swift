import QSSLWire

// RFC 8446 §4.6.2: post-handshake client authentication. A client that offered
// post_handshake_auth may be asked for a certificate at any time after the handshake; it answers
// with Certificate, CertificateVerify and Finished over the handshake transcript plus the
// CertificateRequest, keyed by its current application traffic secret.

/// What either side keeps after a TLS 1.3 handshake in which the client offered post_handshake_auth.
struct PostHandshakeAuthentication {
    /// The handshake transcript through the client's Finished.
    let base: Transcript
    let hkdf: HKDF
    var side: Side

    enum Side {
        case client(certificates: [CertifiedKey])
        case server(Server)
    }

    struct Server {
        let policy: ClientAuthenticationPolicy
        let verifier: any CertificateVerifier
        /// CertificateRequests sent and not yet answered, by context.
        var outstanding: [[UInt8]: HandshakeMessage] = [:]
        var progress: Progress = .idle
    }

    /// Where the server is in one answer.
    enum Progress {
        case idle
        case expectCertificateVerify(context: [UInt8], transcript: Transcript, peer: VerifiedPeer)
        case expectFinished(context: [UInt8], transcript: Transcript, proof: PeerSignatureVerified?)
    }

    /// At most this many requests wait for an answer at once.
    static let maxOutstanding = 4
}

/// What a post-handshake message did: an event for the application, or a pause.
enum PostHandshakeOutcome {
    case none
    case event(TLSEvent)
    case pause(PausedHandshake)
}

extension TrafficState {
    /// Server: sends a CertificateRequest with a fresh context (RFC 8446 §4.6.2).
    mutating func requestClientCertificate(context: inout HandshakeContext) throws(TLSError) {
        guard !isClient, tls13 != nil else { throw .misuse("post-handshake authentication is a TLS 1.3 server's request") }
        guard var pha = postHandshakeAuth, case .server(var server) = pha.side else {
            throw .misuse("the client did not offer post_handshake_auth, or no clientCertificateVerifier is configured")
        }
        guard server.outstanding.count < PostHandshakeAuthentication.maxOutstanding else {
            throw .misuse("\(server.outstanding.count) certificate requests are still unanswered")
        }
        let requestContext = context.primitives.randomBytes(32)
        var ext = ExtensionList()
        ext.append(
            .signatureAlgorithms, try encoding { () throws(EncodeError) in try ExtensionBody.encodeU16List(server.verifier.supportedSchemes.map(\.rawValue)) })
        let authorities = server.verifier.acceptableIssuerNames
        if !authorities.isEmpty {
            ext.append(.certificateAuthorities, try encoding { () throws(EncodeError) in try ExtensionBody.encodeCertificateAuthorities(authorities) })
        }
        let message = try encoding { () throws(EncodeError) in try HandshakeMessage(CertificateRequest(requestContext: requestContext, extensions: ext)) }
        var scratch = Transcript()
        context.send(message, transcript: &scratch)
        try context.flush()
        server.outstanding[requestContext] = message
        pha.side = .server(server)
        postHandshakeAuth = pha
    }

    /// Client: answers a CertificateRequest; server: the answer's messages.
    mutating func handlePostHandshakeAuthentication(_ message: HandshakeMessage, context: inout HandshakeContext) throws(TLSError) -> PostHandshakeOutcome {
        guard let secrets = tls13, var pha = postHandshakeAuth else {
            throw .misbehaved(.sentUnexpectedMessage, "\(message.type) after the handshake without post_handshake_auth")
        }
        switch pha.side {
        case .client(let certificates):
            guard message.type == .certificateRequest else { throw .misbehaved(.sentUnexpectedMessage, "\(message.type) after the handshake") }
            let request = try ClientCertificateRequest(try message.require(CertificateRequest.self))
            // Each answer is a signature and a certificate chain: a server that asks again and
            // again, with a byte of data between its requests, would otherwise have the client
            // sign and send kilobytes for every 60-byte request. A few answers between this end's
            // own application data; none after its close_notify (RFC 8446 §6.1).
            if context.closeNotifySent { return .none }
            guard context.repliesSinceDataSent.certificateRequestsAnswered < TLSConnection.maxPostHandshakeAuthAnswers else {
                throw .misbehaved(
                    .sentUnexpectedMessage,
                    "more than \(TLSConnection.maxPostHandshakeAuthAnswers) CertificateRequests without application data from the client between them")
            }
            context.repliesSinceDataSent.certificateRequestsAnswered += 1
            var transcript = pha.base
            transcript.append(message)
            let answer = ClientPostHandshakeAnswer(hkdf: pha.hkdf, clientSecret: secrets.client, requestContext: request.context, transcript: transcript)
            guard let (certificate, scheme) = chooseClientCertificate(certificates, request: request) else {
                try answer.send(certificate: nil, context: &context)
                return .none
            }
            let pending = try answer.sendCertificate(certificate, scheme: scheme, context: &context)
            guard certificate.key.isSynchronous else {
                let traffic = self
                return .pause(
                    .signature(pending.request, side: .client) { (signature, context) throws(TLSError) in
                        try pending.complete(signature: signature, context: &context)
                        return .traffic(traffic)
                    })
            }
            try pending.complete(signature: try certificate.key.sign(pending.request.message, scheme: scheme), context: &context)
            return .none

        case .server(var server):
            switch (server.progress, message.type) {
            case (.idle, .certificate):
                let certificate = try message.require(CertificateMessage.self)
                guard let request = server.outstanding.removeValue(forKey: certificate.requestContext) else {
                    throw .misbehaved(.sentUnexpectedMessage, "a Certificate for no outstanding CertificateRequest")
                }
                var transcript = pha.base
                transcript.append(request)
                transcript.append(message)
                if certificate.entries.isEmpty {
                    if server.policy == .required { throw .incompatible(.clientCertificateRequired, "no certificate in answer to the request") }
                    server.progress = .expectFinished(context: certificate.requestContext, transcript: transcript, proof: nil)
                    pha.side = .server(server)
                    postHandshakeAuth = pha
                    return .none
                }
                let verification = PeerVerificationRequest(chain: certificate.entries.map(\.data), role: .client, verifier: server.verifier)
                let requestContext = certificate.requestContext
                // The request is answered (each context is used once): kept before verifying.
                server.progress = .idle
                pha.side = .server(server)
                postHandshakeAuth = pha
                if !server.verifier.isSynchronous {
                    let traffic = self
                    return .pause(
                        .verification(verification, side: .server) { (peer, _) in
                            var traffic = traffic
                            traffic.acceptVerifiedClient(peer, requestContext: requestContext, transcript: transcript)
                            return .traffic(traffic)
                        })
                }
                let peer = try verifyPeerInPlace(verification)
                acceptVerifiedClient(peer, requestContext: requestContext, transcript: transcript)
                return .none
            case (.expectCertificateVerify(let requestContext, var transcript, let peer), .certificateVerify):
                let verify = try message.require(CertificateVerify.self)
                guard server.verifier.supportedSchemes.contains(verify.scheme) else { throw .misbehaved(.usedUnofferedSignatureScheme, "\(verify.scheme)") }
                let content = certificateVerifyContent(server: false, transcriptHash: transcript.hash(pha.hkdf))
                let proof = try PeerSignatureVerified(signature: verify.signature, scheme: verify.scheme, content: content, peer: peer, reading: .strict)
                transcript.append(message)
                server.progress = .expectFinished(context: requestContext, transcript: transcript, proof: proof)
                pha.side = .server(server)
                postHandshakeAuth = pha
                return .none
            case (.expectFinished(_, let transcript, let proof), .finished):
                let finished = try message.require(Finished.self)
                let expected = TLS13KeySchedule.finishedVerifyData(hkdf: pha.hkdf, baseSecret: secrets.client, transcriptHash: transcript.hash(pha.hkdf))
                let authenticated = PostHandshakeClientAuthenticated(
                    finished: try FinishedVerified(expected: expected, received: finished.verifyData),
                    signature: proof)
                server.progress = .idle
                pha.side = .server(server)
                postHandshakeAuth = pha
                postHandshakeClient = authenticated
                return .event(.clientAuthenticated(authenticated.identity))
            default:
                throw .misbehaved(.sentUnexpectedMessage, "\(message.type) during post-handshake authentication")
            }
        }
    }

    /// The client's chain verified: its CertificateVerify comes next.
    mutating func acceptVerifiedClient(_ peer: VerifiedPeer, requestContext: [UInt8], transcript: Transcript) {
        guard var pha = postHandshakeAuth, case .server(var server) = pha.side else { return }
        server.progress = .expectCertificateVerify(context: requestContext, transcript: transcript, peer: peer)
        pha.side = .server(server)
        postHandshakeAuth = pha
    }
}

/// The client's answer to a post-handshake CertificateRequest.
struct ClientPostHandshakeAnswer {
    let hkdf: HKDF
    let clientSecret: SecretBytes
    let requestContext: [UInt8]
    var transcript: Transcript

    /// An empty Certificate and Finished (no certificate fits the request).
    func send(certificate: Never?, context: inout HandshakeContext) throws(TLSError) {
        var answer = self
        try context.send(CertificateMessage(requestContext: requestContext, certificates: []), transcript: &answer.transcript)
        try answer.finish(context: &context)
    }

    func sendCertificate(_ certificate: CertifiedKey, scheme: SignatureScheme, context: inout HandshakeContext) throws(TLSError) -> ClientPostHandshakeSigning {
        var answer = self
        try context.send(CertificateMessage(requestContext: requestContext, certificates: certificate.chain), transcript: &answer.transcript)
        let content = certificateVerifyContent(server: false, transcriptHash: answer.transcript.hash(hkdf))
        return ClientPostHandshakeSigning(answer: answer, request: SignatureRequest(message: content, scheme: scheme, key: certificate.key))
    }

    func finish(context: inout HandshakeContext) throws(TLSError) {
        var transcript = self.transcript
        let verifyData = TLS13KeySchedule.finishedVerifyData(hkdf: hkdf, baseSecret: clientSecret, transcriptHash: transcript.hash(hkdf))
        try context.send(Finished(verifyData: verifyData), transcript: &transcript)
        try context.flush()
    }
}

/// The client's post-handshake Certificate is out; its CertificateVerify waits for a signature.
struct ClientPostHandshakeSigning {
    let answer: ClientPostHandshakeAnswer
    let request: SignatureRequest

    func complete(signature: [UInt8], context: inout HandshakeContext) throws(TLSError) {
        var answer = self.answer
        try context.send(CertificateVerify(scheme: request.scheme, signature: signature), transcript: &answer.transcript)
        try answer.finish(context: &context)
    }
}
