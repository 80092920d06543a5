import Foundation
import QSSL
import QSSLX509
import Testing

@Suite("Secret files (ticket keys, sessions, PINs) are read only when private, regular and small")
struct SecretFileTests {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "qssl-secret-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t) throws {
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        #expect(chmod(path, mode) == 0)
    }

    @Test("a 0600 regular file of this user is read whole")
    func reads() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/ok", [1, 2, 3], mode: 0o600)
        let (bytes, info) = try CertificateFiles.readSecretFile(atPath: dir + "/ok", holding: "a test secret", maximumSize: 16)
        #expect(bytes == [1, 2, 3] && info.st_size == 3)
    }

    @Test("group or other access is refused, whichever bit", arguments: [0o640, 0o604, 0o620, 0o602, 0o610, 0o601] as [mode_t])
    func modes(mode: mode_t) throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/open", [1], mode: mode)
        #expect { try CertificateFiles.readSecretFile(atPath: dir + "/open", holding: "a test secret", maximumSize: 16) } throws: { error in
            "\(error)".contains("group or others may access it (mode 0\(String(mode, radix: 8)))") && "\(error)".contains("chmod 600")
        }
    }

    @Test("a FIFO is refused at once (never read, never waited on); so are directories and oversized files")
    func notRegular() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        let started = Date()
        #expect { try CertificateFiles.readSecretFile(atPath: dir + "/fifo", holding: "a test secret", maximumSize: 16) } throws: {
            "\($0)".contains("not a regular file")
        }
        #expect(Date().timeIntervalSince(started) < 30, "no blocking open")
        #expect { try CertificateFiles.readSecretFile(atPath: dir, holding: "a test secret", maximumSize: 16) } throws: {
            "\($0)".contains("not a regular file")
        }
        try Self.write(dir + "/big", [UInt8](repeating: 7, count: 17), mode: 0o600)
        #expect { try CertificateFiles.readSecretFile(atPath: dir + "/big", holding: "a test secret", maximumSize: 16) } throws: {
            "\($0)".contains("too large")
        }
    }

    @Test("a file owned by another user is refused (checked as root: CI runs the tests as root)")
    func otherOwner() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir + "/theirs", [1], mode: 0o600)
        guard geteuid() == 0 else {
            // Without root no file of another user can be made here; the check is exercised in CI.
            return
        }
        #expect(chown(dir + "/theirs", 65534, 65534) == 0)
        #expect { try CertificateFiles.readSecretFile(atPath: dir + "/theirs", holding: "a test secret", maximumSize: 16) } throws: {
            "\($0)".contains("owned by user 65534")
        }
    }
}
