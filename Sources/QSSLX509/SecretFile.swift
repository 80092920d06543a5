#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writing private keys: readable by the owner only from the first byte, complete or not at all.
extension CertificateFiles {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// Writes a private key (PEM) to `path` with mode 0600.
    public static func writePrivateKey(_ pem: String, toPath path: String) throws {
        try writeSecretFile(Array(pem.utf8), toPath: path)
    }

    /// Writes a secret (a private key, ticket keys, a saved TLS session) readable by its owner
    /// only, complete or not at all.
    ///
    /// Creates a temporary file next to `path` with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600,
    /// writes every byte (short writes and EINTR handled), fsyncs it and renames it over `path`.
    /// A symbolic link (or anything but a regular file) at `path` is refused, never followed.
    /// `created` sees the temporary file's path right after its creation (for tests).
    /// - Throws: `WriteError` saying what failed; nothing is left at `path` but the old file.
    public static func writeSecretFile(_ bytes: [UInt8], toPath path: String, created: (String) throws -> Void = { _ in }) throws {
        func failure(_ what: String, _ code: Int32 = errno) -> WriteError {
            WriteError(path: path, reason: "\(what): \(String(cString: strerror(code)))")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFLNK { throw WriteError(path: path, reason: "it is a symbolic link; refusing to follow it") }
            if info.st_mode & S_IFMT != S_IFREG { throw WriteError(path: path, reason: "it exists and is not a regular file") }
        } else if errno != ENOENT {
            throw failure("lstat")
        }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        var temporary = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            let suffix = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            temporary = directory + "/." + name + "." + suffix + ".tmp"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw failure("cannot create a temporary file in \(directory)") }
        var isOpen = true
        var renamed = false
        defer {
            if isOpen { _ = close(fd) }
            if !renamed { _ = unlink(temporary) }
        }
        try created(temporary)   // before fchmod: a test sees the mode open() gave the file
        // The umask can only have removed bits from 0600; make it exactly 0600.
        guard fchmod(fd, 0o600) == 0 else { throw failure("fchmod") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write")
            }
            guard n > 0 else { throw WriteError(path: path, reason: "write made no progress") }
            offset += n
        }
        while fsync(fd) != 0 {
            if errno != EINTR { throw failure("fsync") }
        }
        isOpen = false
        guard close(fd) == 0 else { throw failure("close") }
        guard rename(temporary, path) == 0 else { throw failure("rename") }
        renamed = true
        // Make the rename itself durable; the key is already in place, so this is best effort.
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            _ = fsync(dirfd)
            _ = close(dirfd)
        }
    }
}
