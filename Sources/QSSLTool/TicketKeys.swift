import ArgumentParser
import Foundation
import QSSL
import QSSLSwiftCrypto
import QSSLX509

/// `qssl ticket-keys`: the session-ticket key file that several servers share (PROTOCOL.md §4).
/// One job owns the file and runs `rotate` on a schedule (every 12 h with the defaults); the
/// servers load it and reload it when it changes.
struct TicketKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ticket-keys",
        abstract: "Make, rotate and inspect a shared session-ticket key file (0600).",
        discussion: """
            The file holds the keys that seal session tickets: anyone who reads it can decrypt \
            every ticket and resume the sessions inside. It is written readable by the owner only, \
            and servers refuse to load it when group or others may access it.
            """,
        subcommands: [Generate.self, Rotate.self, Show.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new key file with one fresh key.")

        @Option(help: "The key file to write.")
        var out: String

        @Flag(help: "Replace an existing file (every ticket sealed with its keys stops opening).")
        var force = false

        func run() throws {
            if !force, FileManager.default.fileExists(atPath: out) || isSymbolicLink(out) {
                throw Failure(message: "\(out) exists; pass --force to replace it (its tickets will stop opening)", code: 1)
            }
            let key = TicketKey.generate(primitives: SwiftCryptoPrimitives(), createdAt: SystemClock().nowMilliseconds())
            try write([key], to: out)
            print("wrote \(out) with 1 key (\(hex(key.name)))")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new current key and drop keys older than --keep-hours; rewrites the file atomically (0600). "
                + "With --session-store: create the fleet's current and next keys in Redis if missing (--replace-next: replace the next one).")

        @Argument(help: "The key file to rotate.")
        var file: String?

        @Option(help: "Keep older keys (to open outstanding tickets) for this many hours after they were made.")
        var keepHours: UInt32 = 36

        @OptionGroup(title: "A fleet's keys in Redis (instead of a file)")
        var fleet: FleetStoreOptions

        @Option(help: ArgumentHelp("With --session-store: the longest ticket lifetime in seconds (the servers' --session-timeout).", valueName: "SECONDS"))
        var ticketLifetime: UInt32 = 3600

        @Flag(help: "With --session-store: replace the next epoch's key (not yet sealing anywhere) with a fresh one.")
        var replaceNext = false

        func validate() throws {
            if (file == nil) == (fleet.sessionStore == nil) { throw ValidationError("name the key file, or give --session-store URL --fleet-key FILE") }
            try fleet.validateFleet(fromFile: false)
        }

        func run() async throws {
            if fleet.sessionStore != nil {
                try await FleetTicketKeysAdmin.rotate(fleet, lifetime: ticketLifetime, replaceNext: replaceNext)
                return
            }
            guard let file else { return }
            let keys = try read(file)
            let now = SystemClock().nowMilliseconds()
            let rotated = TicketKeyFile.rotated(keys, now: now, keepSeconds: UInt64(keepHours) * 3600, primitives: SwiftCryptoPrimitives())
            try write(rotated, to: file)
            let dropped = keys.count - (rotated.count - 1)
            print("rotated \(file): new current key \(hex(rotated[0].name)), \(rotated.count - 1) older kept, \(dropped) dropped")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys by name and age (never the key bytes), from a file or a fleet's Redis.")

        @Argument(help: "The key file to show.")
        var file: String?

        @OptionGroup(title: "A fleet's keys in Redis (instead of a file)")
        var fleet: FleetStoreOptions

        @Option(help: ArgumentHelp("With --session-store: the longest ticket lifetime in seconds (the servers' --session-timeout).", valueName: "SECONDS"))
        var ticketLifetime: UInt32 = 3600

        @Flag(help: "With --session-store: print a JSON object.")
        var json = false

        func validate() throws {
            if (file == nil) == (fleet.sessionStore == nil) { throw ValidationError("name the key file, or give --session-store URL --fleet-key FILE") }
            try fleet.validateFleet(fromFile: false)
        }

        func run() async throws {
            if fleet.sessionStore != nil {
                try await FleetTicketKeysAdmin.show(fleet, lifetime: ticketLifetime, json: json)
                return
            }
            guard let file else { return }
            let keys = try read(file)
            let now = SystemClock().nowMilliseconds()
            let current = keys.enumerated().max { a, b in
                a.element.createdAt != b.element.createdAt ? a.element.createdAt < b.element.createdAt : a.offset > b.offset
            }?.offset
            print("\(file): \(keys.count) key\(keys.count == 1 ? "" : "s")")
            for (i, key) in keys.enumerated() {
                let created = Date(timeIntervalSince1970: Double(key.createdAt) / 1000)
                let role = i == current ? "current (seals)" : "older (opens only)"
                print("  \(hex(key.name))  created \(created.formatted(.iso8601))  age \(age(now, key.createdAt))  \(role)")
            }
        }
    }
}

private func read(_ path: String) throws -> [TicketKey] {
    do { return try TicketKeyFile.readKeys(atPath: path) } catch {
        throw Failure(message: secretFileMessage(path, what: "ticket key file", reason: error.reason), code: 1)
    }
}

private func write(_ keys: [TicketKey], to path: String) throws {
    do { try TicketKeyFile.writeKeys(keys, toPath: path) } catch { throw Failure(message: "\(error) (nothing written)", code: 1) }
}

private func isSymbolicLink(_ path: String) -> Bool {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// "3d 4h", "4h 12m", "12m", or "in the future" for a key from a clock that runs ahead.
private func age(_ now: UInt64, _ createdAt: UInt64) -> String {
    guard now >= createdAt else { return "in the future" }
    let minutes = (now - createdAt) / 60_000
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60)
    if days > 0 { return "\(days)d \(hours)h" }
    if hours > 0 { return "\(hours)h \(mins)m" }
    return "\(mins)m"
}
