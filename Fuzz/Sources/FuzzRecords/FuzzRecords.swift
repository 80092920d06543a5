import FuzzSupport

// The record layer (deframing, CCS/alert handling, record size limits, the input buffer) and the
// TLS 1.3 / TLS 1.2 hello decoders behind it, reached through TLSConnection fed raw bytes.
// Byte 0: bits 0-3 configuration, bit 4 the client instead of the server, bits 5-7 how the rest
// is cut into receive calls.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var r = InputReader(input(data, size))
    let head = r.byte()
    let configs = FuzzConfigs.records
    let config = configs[Int(head & 0x0F) % configs.count]
    let victim: Side = head & 0x10 == 0 ? .server : .client
    var bytes = r.rest()
    let chunks = [0, 1, 5, 7, 64, 1000, 16389, 0]
    if head >> 5 == 7 {
        // Many copies at once: exercises the input buffer's compaction past 64 KiB.
        bytes = Array([[UInt8]](repeating: bytes, count: 64).joined())
    }
    PairScript.runRaw(config: config, victim: victim, chunk: chunks[Int(head >> 5)], bytes: bytes)
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    FuzzSetup.initialize()
    return 0
}
