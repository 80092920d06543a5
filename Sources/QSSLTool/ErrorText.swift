import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOQSSL
import QSSL
import QSSLSwiftCrypto
import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// Every qssl failure as one line on stderr, `qssl: <what failed, on which file or address, why>`,
// and the documented exit code (QSSLCommand: 1 handshake or connection failed, 2 certificate
// verification failed, 64 usage error). `QSSLCommand.main` prints whatever a command throws
// through `describe`; commands that print their own failure line (connect) use `printFailure`.

// MARK: - One line for any error

/// One line saying what failed and why, without the error type's decoration (no
/// "Error Domain=…", "SingleConnectionFailure(…)", "SocketAddressError…").
/// - Parameter address: the HOST:PORT being connected to, when the caller knows it (a connect
///   timeout does not say which address it was).
func describe(_ error: Error, address: String? = nil) -> String {
    oneLine(describeUnflattened(error, address: address))
}

/// The exit code for an error that ends a command: `Failure.code`, `ExitCode`'s own, 2 for a
/// rejected certificate, 64 for a usage error, else 1.
func failureExitCode(for error: Error) -> Int32 {
    if let failure = error as? Failure { return failure.code }
    if let exit = error as? ExitCode { return exit.rawValue }
    if error is ValidationError { return ExitCode.validationFailure.rawValue }
    if isVerificationFailure(error) || (error as? TLSError)?.code.certificateRejection != nil { return 2 }
    return 1
}

/// Prints `qssl: <line>` to stderr.
/// Messages may quote what a server sent (a certificate's names): control characters and
/// bidirectional overrides are dropped, so none reaches the terminal.
func printFailure(_ line: String) {
    FileHandle.standardError.write(Data("qssl: \(sanitizeServerText(oneLine(line), limit: .max))\n".utf8))
}

/// Whether an error is a network failure before or outside TLS (DNS, refused, reset, timed out),
/// as opposed to a TLS error that carries an alert.
func isConnectionError(_ error: Error) -> Bool {
    error is NIOConnectionError || error is SocketAddressError.UnknownHost || error is SocketAddressError
        || error is ChannelError || error is IOError
}

private func describeUnflattened(_ error: Error, address: String?) -> String {
    switch error {
    case let e as Failure: return e.message
    case let e as CertificateFiles.FileError: return e.description
    case let e as NIOConnectionError: return connectionText(e)
    case let e as SocketAddressError.UnknownHost: return "cannot resolve host \(e.host)"
    case let e as SocketAddressError:
        switch e {
        case .failedToParseIPString(let s): return "bad IP address \(s)"
        case .unixDomainSocketPathTooLong: return "socket path too long"
        default: return "unsupported address\(address.map { " \($0)" } ?? "")"
        }
    case let e as ChannelError: return channelText(e, address: address)
    case let e as IOError: return address.map { "cannot connect to \($0): \(ioReason(e.errnoCode))" } ?? ioReason(e.errnoCode)
    case let e as NIOQSSLClient.IncompleteRead:
        return "connection failed after \(e.received.count) bytes: \(describe(e.underlying, address: address))"
    case let e as NIOQSSLError: return e.description
    case let e as TLSError: return e.description
    default: break
    }
    if let text = foundationFileText(error) { return text }
    return CertificateFiles.shortReason(error)
}

/// "cannot resolve host X", "cannot connect to HOST:PORT: connection refused".
private func connectionText(_ e: NIOConnectionError) -> String {
    let target = hostPort(e.host, e.port)
    if let dns = e.dnsAError ?? e.dnsAAAAError {
        if dns is SocketAddressError.UnknownHost { return "cannot resolve host \(e.host)" }
        return "cannot resolve host \(e.host): \(describe(dns))"
    }
    var reasons: [String] = []
    for failure in e.connectionErrors {
        let reason = (failure.error as? IOError).map { ioReason($0.errnoCode) } ?? describe(failure.error)
        if !reasons.contains(reason) { reasons.append(reason) }
    }
    if reasons.isEmpty { return "cannot connect to \(target)" }
    return "cannot connect to \(target): \(reasons.joined(separator: "; "))"
}

private func channelText(_ e: ChannelError, address: String?) -> String {
    let target = address.map { " to \($0)" } ?? ""
    switch e {
    case .connectTimeout(let t):
        // NIOQSSLClient reports a handshake that does not finish in time the same way.
        return "connection\(target) timed out after \(t.nanoseconds / 1_000_000_000) s (no TCP connection or no TLS handshake)"
    case .eof, .inputClosed: return "connection\(target) closed by the peer"
    case .ioOnClosedChannel, .alreadyClosed, .outputClosed: return "connection\(target) already closed"
    default: return "connection\(target) failed: \(e)"
    }
}

/// "connection refused", "timed out", … for a socket errno.
func ioReason(_ code: CInt) -> String {
    switch code {
    case ECONNREFUSED: return "connection refused"
    case ETIMEDOUT: return "timed out"
    case ECONNRESET: return "connection reset by peer"
    case ENETUNREACH: return "network unreachable"
    case EHOSTUNREACH: return "host unreachable"
    case EADDRINUSE: return "address already in use"
    case EADDRNOTAVAIL: return "address not available"
    case EACCES, EPERM: return "permission denied"
    case EPIPE: return "connection closed by the peer"
    default: return String(cString: strerror(code)).lowercased()
    }
}

func hostPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}

/// Foundation's file errors (`String(contentsOfFile:)`, `Data(contentsOf:)`, `write(toFile:)`,
/// `FileManager`): "cannot read /x: no such file", "cannot write /y: permission denied".
private func foundationFileText(_ error: Error, what: String? = nil) -> String? {
    guard let reason = fileErrorReason(error) else { return nil }
    let ns = error as NSError
    let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    // Cocoa's file error codes: 256… reading, 512… writing; others (4: no such file) either.
    let verb = ns.domain != NSCocoaErrorDomain ? "use" : (256..<512).contains(ns.code) ? "read" : (512...1023).contains(ns.code) ? "write" : "use"
    switch (what, path) {
    case (let what?, let path?): return "cannot \(verb) \(what) \(path): \(reason)"
    case (nil, let path?): return "cannot \(verb) \(path): \(reason)"
    case (let what?, nil): return "cannot \(verb) \(what): \(reason)"
    case (nil, nil): return reason
    }
}

/// The short reason of a Foundation or POSIX file error ("no such file", "permission denied",
/// "it is a directory"), or nil for other errors.
func fileErrorReason(_ error: Error) -> String? {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return nil }
    var posix: Int32?
    if ns.domain == NSPOSIXErrorDomain { posix = Int32(ns.code) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain { posix = Int32(underlying.code) }
    if let posix { return CertificateFiles.errnoReason(posix) }
    switch CocoaError.Code(rawValue: ns.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file"
    case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
    case .fileWriteFileExists: return "it already exists"
    case .fileWriteOutOfSpace: return "no space left on the device"
    case .fileWriteVolumeReadOnly: return "read-only file system"
    case .fileReadInapplicableStringEncoding, .fileReadCorruptFile: return "not a text file"
    case .fileReadTooLarge: return "too large"
    default: return ns.localizedDescription
    }
}

private func oneLine(_ text: String) -> String {
    CertificateFiles.undecorated(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; "))
}

// MARK: - Reading files with messages that name them

/// The text of a file, or a `Failure`-like error "cannot read <what> <path>: <reason>".
/// `what` says what the file is for: "certificate file", "private key", "CA file", "CRL file".
func readTextFile(_ path: String, what: String) throws -> String {
    try CertificateFiles.readTextFile(atPath: path, what: what)
}

/// Runs `body`, which reads the file at `path`; Foundation and POSIX errors it throws become
/// "cannot read <what> <path>: <reason>", and other errors "<what> <path>: <error>".
func reading<T>(_ path: String, what: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as CertificateFiles.FileError {
        throw error
    } catch let error as Failure {
        throw error
    } catch {
        if let text = foundationFileText(error, what: what) {
            throw Failure(message: text, code: 1)
        }
        throw Failure(message: "\(what) \(path): \(describe(error))", code: 1)
    }
}

/// The certificates of a PEM file ("cannot read certificate file /x: no such file", …).
func loadCertificates(_ path: String, what: String = "certificate file") throws -> [X509Certificate] {
    try CertificateFiles.certificates(atPath: path, what: what)
}

/// A private key from a PEM file ("cannot read private key /x.key: permission denied", …).
func loadPrivateKey(_ path: String, what: String = "private key") throws -> SwiftCryptoSigningKey {
    try CertificateFiles.privateKey(atPath: path, what: what)
}

/// A certificate chain and its key, checked to belong together; errors name the file at fault.
func loadCertifiedKey(chain chainPath: String, key keyPath: String) throws -> CertifiedKey {
    try CertificateFiles.certifiedKey(chainPath: chainPath, keyPath: keyPath)
}

/// A verifier trusting the roots of a PEM file (`--ca`, `--client-ca`).
func loadVerifier(roots path: String, what: String = "CA file") throws -> X509CertificateVerifier {
    X509CertificateVerifier(roots: try loadCertificates(path, what: what))
}

/// The message for a secret file (ticket keys, a saved session, a PIN) that was refused:
/// "cannot read ticket key file /x: no such file" when it could not be opened, else
/// "ticket key file /x: <reason>" (group-readable, not a regular file, …).
func secretFileMessage(_ path: String, what: String, reason: String) -> String {
    let prefix = "cannot open: "
    guard reason.hasPrefix(prefix) else { return "\(what) \(path): \(reason)" }
    var why = String(reason.dropFirst(prefix.count)).lowercased()
    if why == "no such file or directory" { why = "no such file" }
    return "cannot read \(what) \(path): \(why)"
}
