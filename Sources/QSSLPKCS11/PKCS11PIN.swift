import Foundation
import QSSLX509

/// Where a token's user PIN comes from: a file or an environment variable, never the command
/// line. The PIN is read only when logging in, held no longer than C_Login, and never printed:
/// `description` names the source, not the value.
public struct PKCS11PIN: Sendable, CustomStringConvertible {
    enum Source: Sendable {
        case file(String)
        case environment(String)
        case value([UInt8])
    }
    let source: Source

    /// The first line of a file (a trailing newline is not part of the PIN).
    public static func file(_ path: String) -> PKCS11PIN { PKCS11PIN(source: .file(path)) }
    /// The value of an environment variable.
    public static func environment(_ name: String) -> PKCS11PIN { PKCS11PIN(source: .environment(name)) }
    /// A PIN the application already holds (from its own secret store).
    public static func value(_ pin: String) -> PKCS11PIN { PKCS11PIN(source: .value(Array(pin.utf8))) }

    public var description: String {
        switch source {
        case .file(let path): return "PIN from file \(path)"
        case .environment(let name): return "PIN from $\(name)"
        case .value: return "PIN given by the application"
        }
    }

    /// The most a PIN file may hold: PINs are short (PKCS#11 tokens take up to a few hundred bytes).
    static let maximumFileSize = 4096

    /// Reads the PIN. The caller zeroes the bytes after use.
    func read() throws(PKCS11Error) -> [UInt8] {
        var pin: [UInt8]
        switch source {
        case .file(let path):
            // Checked as the ticket key files are: a regular file (a FIFO is not read), this
            // user's or root's, mode 0600 or stricter, and small.
            do {
                (pin, _) = try CertificateFiles.readSecretFile(atPath: path, holding: "an HSM PIN", maximumSize: Self.maximumFileSize)
            } catch {
                throw PKCS11Error(.pinUnavailable, "cannot use the PIN file \(error)")
            }
            // Only the first line: `echo 1234 > pin` writes a newline.
            if let newline = pin.firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) { pin.removeSubrange(newline...) }
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw PKCS11Error(.pinUnavailable, "environment variable \(name) is not set")
            }
            pin = Array(value.utf8)
        case .value(let bytes):
            pin = bytes
        }
        guard !pin.isEmpty else { throw PKCS11Error(.pinUnavailable, "\(self) is empty") }
        return pin
    }
}
