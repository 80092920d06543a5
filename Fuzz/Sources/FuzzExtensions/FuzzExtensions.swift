import FuzzSupport

// Every extension body decoder of QSSLWire; byte 0 picks it (ExtensionDecoders.names), the rest
// is the extension body. Round trips are checked where an encoder exists.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var r = InputReader(input(data, size))
    let selector = Int(r.byte())
    ExtensionDecoders.run(selector, r.rest())
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
