import FuzzSupport

// QSSLX509: certificate parsing, chain verification against the fixed root, server name
// matching, PEM certificates and private keys (PKCS#8, SEC1, PKCS#1). Byte 0 picks the mode
// (X509Modes.names).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var r = InputReader(input(data, size))
    let mode = Int(r.byte())
    X509Modes.run(mode, r.rest())
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
