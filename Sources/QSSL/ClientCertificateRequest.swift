import QSSLWire

// What a server's CertificateRequest asks of a client (TLS 1.3, TLS 1.2 and post-handshake), and the certificate chosen for it.

/// What a server's CertificateRequest asks of the client (TLS 1.3 or TLS 1.2).
struct ClientCertificateRequest {
    let context: [UInt8]
    let schemes: [SignatureScheme]
    let authorities: [[UInt8]]

    init(_ request: CertificateRequest) throws(TLSError) {
        // RFC 8446 §4.3.2: signature_algorithms MUST be present.
        guard let sigData = request.extensions[.signatureAlgorithms] else { throw .misbehaved(.sentMissingSignatureAlgorithms) }
        context = request.requestContext
        schemes = try decodeExtension { () throws(DecodeError) in try ExtensionBody.signatureAlgorithms(sigData) }
        authorities =
            try request.extensions[.certificateAuthorities].map { (d) throws(TLSError) in
                try decodeExtension { () throws(DecodeError) in try ExtensionBody.certificateAuthorities(d) }
            } ?? []
    }

    init(_ request: TLS12CertificateRequest) {
        context = []
        schemes = request.schemes
        authorities = request.authorities
    }
}

/// The first certificate whose key signs with a scheme the server listed and whose chain
/// reaches a listed CA (when the server listed CAs and the chain's issuers are known).
func chooseClientCertificate(
    _ candidates: [CertifiedKey], request: ClientCertificateRequest,
    permits: (SignatureScheme) -> Bool = { _ in true }
) -> (CertifiedKey, SignatureScheme)? {
    for candidate in candidates {
        guard let scheme = candidate.key.supportedSchemes.first(where: { request.schemes.contains($0) && permits($0) }) else { continue }
        if !request.authorities.isEmpty, let issuers = candidate.issuerNames, !issuers.contains(where: request.authorities.contains) { continue }
        return (candidate, scheme)
    }
    return nil
}
