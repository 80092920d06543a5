import QSSLSwiftCrypto
// The pair driver, the deterministic generator and the test PKI are in QSSLTestSupport.
@_exported import QSSLTestSupport
import QSSLWire
import QSSLX509
import Testing

@testable import QSSL

/// Shared PKI: key generation is slow enough to do once.
var sharedPKI: DemoPKI { TestPKI.shared }

func serverConfig(_ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
    try TestPKI.serverConfiguration(configure)
}

func clientConfig(_ configure: (inout ClientConfiguration) -> Void = { _ in }) -> ClientConfiguration {
    TestPKI.clientConfiguration(configure)
}

extension TLSError {
    /// The alert this error sent, or the one it received.
    var alertSentOrReceived: AlertDescription? {
        if let a = code.receivedAlert { return a }
        return alert
    }
}
