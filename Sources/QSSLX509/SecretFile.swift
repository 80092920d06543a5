import Foundation
import QSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

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
        try created(temporary)  // before fchmod: a test sees the mode open() gave the file
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

/// Why a file that holds a secret was not read.
public struct SecretFileError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Reading secrets (ticket keys, a saved session, an HSM PIN): only from a regular file that its
/// reader (or root) owns and that nobody else may read or write, and only up to a bound.
extension CertificateFiles {
    /// Reads the whole of the secret file at `path`.
    ///
    /// Refused, with a reason that says what to do: a file that is not a regular file (a FIFO,
    /// opened without blocking so that it cannot hang the caller, a device, a directory); one
    /// owned by another user than the effective user or root (another user could replace its
    /// contents); one whose mode lets group or others in; one larger than `maximumSize`.
    /// - Parameter what: what the file holds, for messages ("ticket keys", "an HSM PIN").
    /// - Returns: the bytes (the caller wipes them) and the `stat` the checks were made on.
    public static func readSecretFile(atPath path: String, holding what: String, maximumSize: Int) throws(SecretFileError) -> (bytes: [UInt8], info: stat) {
        func failure(_ call: String, _ code: Int32 = errno) -> SecretFileError {
            SecretFileError(path: path, reason: "\(call): \(String(cString: strerror(code)))")
        }
        // The type first, without opening (opening a device can act), then the same file again
        // through the descriptor (a symbolic link, as Kubernetes mounts secrets, is followed).
        var before = stat()
        guard stat(path, &before) == 0 else { throw failure("cannot open") }
        guard before.st_mode & S_IFMT == S_IFREG else { throw SecretFileError(path: path, reason: "not a regular file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure("cannot open") }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("fstat") }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_dev == before.st_dev, info.st_ino == before.st_ino else {
            throw SecretFileError(path: path, reason: "the file changed while it was opened")
        }
        let user = geteuid()
        guard info.st_uid == user || info.st_uid == 0 else {
            throw SecretFileError(
                path: path,
                reason: "it holds \(what) but is owned by user \(info.st_uid), not by this user (\(user)) or root; "
                    + "another user could have written it")
        }
        let permissions = info.st_mode & 0o777
        guard permissions & 0o077 == 0 else {
            throw SecretFileError(
                path: path,
                reason: "it holds \(what) but group or others may access it (mode 0\(String(permissions, radix: 8))); "
                    + "run `chmod 600 \(path)`")
        }
        guard info.st_size > 0 else { throw SecretFileError(path: path, reason: "it is empty") }
        guard Int(info.st_size) <= maximumSize else {
            throw SecretFileError(path: path, reason: "\(info.st_size) bytes is too large for a file of \(what) (at most \(maximumSize))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer in read(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                let error = failure("read")
                SecretBytes.wipe(&bytes)
                throw error
            }
            guard n > 0 else {
                SecretBytes.wipe(&bytes)
                throw SecretFileError(path: path, reason: "the file shrank while it was read")
            }
            offset += n
        }
        return (bytes, info)
    }
}
