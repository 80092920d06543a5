// Reading a Redis password from a file with strict checks.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension RedisCredentials {
    /// The largest password file accepted.
    public static let maximumFileSize = 4096

    /// Reads the password from `path`: the whole file, less one trailing newline (LF or CRLF).
    ///
    /// The file (symbolic links are followed, as for mounted secrets) must be a regular file owned
    /// by the current user, neither group- nor world-readable (nor writable), non-empty and at most
    /// 4 KiB. It is opened once and checked on the open descriptor, so it cannot be swapped between
    /// the checks and the read.
    public static func fromFile(_ path: String, username: String? = nil) throws(RedisError) -> RedisCredentials {
        func fail(_ reason: String) -> RedisError { .credentialsFile(path: path, reason: reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw fail("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail("cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw fail("not a regular file") }
        guard info.st_uid == geteuid() else {
            throw fail("owned by uid \(info.st_uid), not by the current user (uid \(geteuid()))")
        }
        guard (info.st_mode & 0o077) == 0 else {
            throw fail("permissions \(String(info.st_mode & 0o777, radix: 8)) give the group or others access; use chmod 600")
        }
        guard info.st_size <= maximumFileSize else { throw fail("larger than \(maximumFileSize) bytes") }
        var bytes = [UInt8](repeating: 0, count: maximumFileSize + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumFileSize else { throw fail("larger than \(maximumFileSize) bytes") }
        bytes.removeSubrange(count...)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw fail("the password is empty") }
        guard !bytes.contains(UInt8(ascii: "\n")) else { throw fail("the password spans several lines") }
        guard let password = String(validating: bytes, as: UTF8.self) else { throw fail("the password is not UTF-8") }
        return RedisCredentials(username: username, password: password)
    }
}
