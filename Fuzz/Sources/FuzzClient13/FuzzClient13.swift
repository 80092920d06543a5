import FuzzSupport

// The client state machine (TLS 1.3) driven through TLSConnection against a real in-process peer:
// the input is a script of deliveries, mutations and API calls (PairScript), or raw bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    PairScript.run(input(data, size), configs: FuzzConfigs.tls13, victim: .client)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
