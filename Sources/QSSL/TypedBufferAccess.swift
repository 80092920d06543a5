/// `Array.withUnsafeBytes` rethrows untyped errors; these keep the core's `throws(TLSError)`.
extension Array where Element == UInt8 {
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(TLSError) -> R) throws(TLSError) -> R {
        try withUnsafeBytes { buffer in Result { () throws(TLSError) in try body(buffer) } }.get()
    }

    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(TLSError) -> R) throws(TLSError) -> R {
        try withUnsafeMutableBytes { buffer in Result { () throws(TLSError) in try body(buffer) } }.get()
    }
}

extension ArraySlice where Element == UInt8 {
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(TLSError) -> R) throws(TLSError) -> R {
        try withUnsafeBytes { buffer in Result { () throws(TLSError) in try body(buffer) } }.get()
    }
}
