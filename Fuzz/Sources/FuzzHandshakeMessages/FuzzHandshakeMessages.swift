import FuzzSupport

// Every handshake message decoder of QSSLWire; byte 0 picks it (MessageDecoders.names), the rest
// is the message body. What decodes is encoded again and must decode to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var r = InputReader(input(data, size))
    let selector = Int(r.byte())
    MessageDecoders.run(selector, r.rest())
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
