import Foundation
import QSSL
import QSSLWire
import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A session saved by `qssl connect --session-out` and read back by `--session-in`: the bytes of
/// `TLSSession.encoded()` (magic "QSSLSESS"), which hold the session's secret, so the file is
/// written 0600 and never through a symbolic link.
enum SessionFile {
    /// The most a session file may hold: a ticket of 64 KiB, the state and a peer chain.
    static let maximumSize = 1 << 20

    /// Writes `session` to `path` (0600, atomically, a symbolic link refused).
    static func write(_ session: TLSSession, to path: String) throws {
        var bytes: [UInt8]
        do { bytes = try session.encoded() } catch { throw Failure(message: "cannot encode the session for \(path): \(error)", code: 1) }
        defer { SecretBytes.wipe(&bytes) }
        do { try CertificateFiles.writeSecretFile(bytes, toPath: path) } catch {
            throw Failure(message: "\(error) (session not written)", code: 1)
        }
    }

    /// Reads the session at `path`; fails with a message saying what is wrong when the file is
    /// not a session file, is damaged or the session has expired at `now` (ms since the epoch).
    ///
    /// The file is a bearer credential: whoever holds it resumes as the client did, and the
    /// client trusts the server identity it records (the server proves only that it holds the
    /// session's key). So it is read only when it is a regular file owned by this user (or
    /// root) that group and others cannot access, like the ticket key files.
    static func read(_ path: String, now: UInt64) throws -> TLSSession {
        var bytes: [UInt8]
        do {
            (bytes, _) = try CertificateFiles.readSecretFile(atPath: path, holding: "a session secret", maximumSize: maximumSize)
        } catch {
            throw Failure(message: secretFileMessage(path, what: "session file", reason: error.reason), code: 1)
        }
        defer { SecretBytes.wipe(&bytes) }
        let session: TLSSession
        do { session = try TLSSession(decoding: bytes) } catch {
            let what =
                bytes.starts(with: TLSSession.magic)
                ? "a damaged or unsupported Q-SSL session file" : "not a Q-SSL session file (written by `qssl connect --session-out`)"
            throw Failure(message: "\(path) is \(what): \(error)", code: 1)
        }
        let state = session.state
        guard state.isValid(at: now) else {
            let expiry = state.createdAt &+ UInt64(state.lifetimeSeconds) * 1000
            throw Failure(
                message: "the session in \(path) has expired (at \(isoDate(expiry)), \(state.lifetimeSeconds) s after the handshake "
                    + "that created it at \(isoDate(state.createdAt))); connect without --session-in for a new one", code: 1)
        }
        return session
    }

    /// Why the core would not offer `session` with this configuration (it would run a full
    /// handshake), or nil when it will be offered.
    static func mismatch(_ session: TLSSession, serverName: String, versions: [ProtocolVersion], requirePostQuantum: Bool) -> String? {
        let state = session.state
        if !versions.contains(state.version) { return "it is a \(state.version) session and --tls-versions does not offer \(state.version)" }
        if state.version == .tls13, session.ticket?.isEmpty ?? true { return "it has no ticket" }
        if state.version == .tls12, session.sessionID.isEmpty, session.ticket?.isEmpty ?? true { return "it has neither a session ID nor a ticket" }
        if state.serverName != serverName { return "it was made for server name \(state.serverName ?? "(none)"), not \(serverName)" }
        if requirePostQuantum && !state.usedPostQuantumKeyExchange {
            return "its key exchange (\(state.group)) had no ML-KEM part and --pq-required is set"
        }
        return nil
    }

    static func isoDate(_ milliseconds: UInt64) -> String {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
    }
}
