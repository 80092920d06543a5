import Foundation
import QSSL
import QSSLSwiftCrypto
import Testing

@testable import QSSLX509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Ticket key files", .serialized)
struct TicketKeyFileTests {
    static let primitives = CryptoProvider.swiftCrypto.primitives

    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qssl-ticketkeys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    static func fresh(_ count: Int, now: UInt64 = SessionSamples.epoch) -> [TicketKey] {
        (0..<count).map { TicketKey.generate(primitives: primitives, createdAt: now - UInt64($0) * 3_600_000) }
    }

    @Test("written keys are 0600 and load back into a set that does not rotate by itself")
    func writeAndLoad() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ticket.keys"
        let keys = Self.fresh(3)
        let saved = umask(0)
        try TicketKeyFile.writeKeys(keys, toPath: path)
        umask(saved)
        #expect(Self.mode(path) == 0o600)
        #expect(try TicketKeyFile.readKeys(atPath: path) == keys)
        let file = try TicketKeyFile(path: dir + "/ticket.keys", clock: FakeClock())
        #expect(!file.keySet.rotatesAutomatically)
        #expect(file.keySet.keys == keys)
    }

    @Test("a key file that group or others may access is refused with a message that says how to fix it", arguments: [0o640, 0o604, 0o660, 0o602] as [mode_t])
    func permissive(mode: mode_t) throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ticket.keys"
        try TicketKeyFile.writeKeys(Self.fresh(1), toPath: path)
        #expect(chmod(path, mode) == 0)
        do {
            _ = try TicketKeyFile(path: path)
            Issue.record("a mode \(String(mode, radix: 8)) file was loaded")
        } catch {
            #expect(error.description.contains("chmod 600"), "\(error)")
            #expect(error.description.contains("0\(String(mode, radix: 8))"), "\(error)")
        }
    }

    @Test("a missing file, a directory or a file that is not a key file is refused")
    func notAKeyFile() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TicketKeyFileError.self) { try TicketKeyFile.readKeys(atPath: dir + "/missing") }
        #expect(chmod(dir, 0o700) == 0)
        #expect(throws: TicketKeyFileError.self) { try TicketKeyFile.readKeys(atPath: dir) }
        try CertificateFiles.writeSecretFile(Array("not keys".utf8), toPath: dir + "/junk")
        #expect(throws: TicketKeyFileError.self) { try TicketKeyFile.readKeys(atPath: dir + "/junk") }
    }

    @Test("reloadIfChanged: nothing to do when unchanged, new keys when rewritten, old keys kept when the new file is bad")
    func reload() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ticket.keys"
        let first = Self.fresh(1)
        try TicketKeyFile.writeKeys(first, toPath: path)
        let clock = FakeClock()
        let file = try TicketKeyFile(path: path, primitives: Self.primitives, clock: clock)
        let ticket = try file.keySet.seal(SecretBytes([1, 2, 3]))
        #expect(try file.reloadIfChanged() == false)

        let rotated = TicketKeyFile.rotated(first, now: clock.nowMilliseconds() + 1000, keepSeconds: 36 * 3600, primitives: Self.primitives)
        try TicketKeyFile.writeKeys(rotated, toPath: path)
        #expect(try file.reloadIfChanged() == true)
        #expect(file.keySet.keys == rotated)
        #expect(file.keySet.open(ticket)?.byCurrentKey == false, "the old key still opens its tickets")
        #expect(try file.reloadIfChanged() == false)

        try CertificateFiles.writeSecretFile(Array("garbage".utf8), toPath: path)
        #expect(throws: TicketKeyFileError.self) { try file.reloadIfChanged() }
        #expect(file.keySet.keys == rotated, "a bad file leaves the keys in force")
        #expect(file.keySet.open(ticket) != nil)

        try TicketKeyFile.writeKeys(rotated, toPath: path)
        #expect(chmod(path, 0o644) == 0)
        #expect(throws: TicketKeyFileError.self) { try file.reloadIfChanged() }
        #expect(chmod(path, 0o600) == 0)
        #expect(try file.reloadIfChanged() == true, "fixing the mode is a change too")

        #expect(unlink(path) == 0)
        #expect(throws: TicketKeyFileError.self) { try file.reloadIfChanged() }
        #expect(file.keySet.keys == rotated)
    }

    @Test("an edit in place (same inode, new size) is seen")
    func inPlaceEdit() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ticket.keys"
        try TicketKeyFile.writeKeys(Self.fresh(1), toPath: path)
        let file = try TicketKeyFile(path: path, clock: FakeClock())
        let two = Self.fresh(2)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data(try TicketKeySet.encodeKeyFile(two)))
        try handle.close()
        #expect(try file.reloadIfChanged() == true)
        #expect(file.keySet.keys == two)
    }

    @Test("rotated: a new current key first, keys older than the keep time dropped, younger ones kept")
    func rotation() {
        let now = SessionSamples.epoch
        let keys = Self.fresh(5, now: now)  // 0, 1, 2, 3 and 4 hours old
        let rotated = TicketKeyFile.rotated(keys, now: now, keepSeconds: 3 * 3600, primitives: Self.primitives)
        #expect(rotated.count == 4)
        #expect(rotated[0].createdAt == now && !keys.contains(rotated[0]))
        #expect(Array(rotated.dropFirst()) == Array(keys.prefix(3)))
        #expect(TicketKeyFile.rotated([], now: now, keepSeconds: 0, primitives: Self.primitives).count == 1)
    }
}
