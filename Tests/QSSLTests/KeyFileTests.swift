import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLWire
import SwiftASN1
import Testing

@testable import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("X.509 hardening: private key files", .serialized)
struct KeyFileTests {
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-keyfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("under umask 000 the key is 0600 from creation on, also when replacing a world-readable file")
    func ownerOnly() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/server.key"
        let pem = try CertificateFiles.pkcs8PEM(try PKIBuilder.Algorithm.ecdsaP256.generateKey())
        let saved = umask(0)
        defer { umask(saved) }
        for round in 0..<2 {
            if round == 1 {
                // An old key left world-readable: the new one must not inherit its mode.
                #expect(chmod(path, 0o644) == 0)
            }
            var temporaryModes: [mode_t?] = []
            try CertificateFiles.writeSecretFile(Array(pem.utf8), toPath: path) { temporary in
                temporaryModes.append(Self.mode(temporary))
            }
            #expect(temporaryModes == [0o600], "the temporary file must be 0600 right after creation")
            #expect(Self.mode(path) == 0o600)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == pem)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["server.key"], "no temporary file left behind")
    }

    @Test("a symbolic link at the target is refused, not followed")
    func symlinkRefused() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/victim"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        #expect(symlink(victim, dir + "/ca.key") == 0)
        #expect(throws: (any Error).self) {
            try CertificateFiles.writeSecretFile(Array("secret".utf8), toPath: dir + "/ca.key")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        var info = stat()
        #expect(lstat(dir + "/ca.key", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK, "the link is left alone")
    }

    @Test("a write that cannot happen throws, even over an existing file")
    func failedWriteThrows() throws {
        // /proc/self/comm exists as a regular file, and no file can be created next to it, not even by root.
        #expect(throws: (any Error).self) {
            try CertificateFiles.writeSecretFile(Array("secret".utf8), toPath: "/proc/self/comm")
        }
        // A read-only directory with a key in it (only meaningful when not running as root).
        let dir = try Self.scratch()
        defer {
            _ = chmod(dir, 0o700)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try "old key".write(toFile: dir + "/ca.key", atomically: false, encoding: .utf8)
        #expect(chmod(dir, 0o500) == 0)
        if geteuid() != 0 {
            #expect(throws: (any Error).self) {
                try CertificateFiles.writeSecretFile(Array("secret".utf8), toPath: dir + "/ca.key")
            }
            #expect(try String(contentsOfFile: dir + "/ca.key", encoding: .utf8) == "old key")
        }
        // A missing directory.
        #expect(throws: (any Error).self) {
            try CertificateFiles.writeSecretFile(Array("secret".utf8), toPath: dir + "/missing/ca.key")
        }
    }
}
