import FuzzSupport

// The resumption codecs: SessionState and TLSSession encodings, the ticket key file, and
// tickets opened with the fuzz servers' fixed keys. Byte 0 picks the mode (SessionModes.names).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var r = InputReader(input(data, size))
    let selector = Int(r.byte())
    SessionModes.run(selector, r.rest())
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
