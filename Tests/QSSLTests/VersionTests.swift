import Foundation
import QSSL
import Testing

@Suite("Version")
struct VersionTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("QSSLVersion's dependency versions are Package.swift's lower bounds and what SwiftPM resolved")
    func dependencyVersionsAgree() throws {
        let manifest = try String(contentsOf: Self.packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let resolved = try? String(contentsOf: Self.packageRoot.appendingPathComponent("Package.resolved"), encoding: .utf8)
        for (package, version) in QSSLVersion.dependencies {
            #expect(manifest.contains("\(package).git\", from: \"\(version)\""), "Package.swift does not require \(package) from \(version)")
            if let resolved, let range = resolved.range(of: "/\(package)") {
                let rest = resolved[range.upperBound...]
                let v = try #require(rest.range(of: "\"version\" : \""))
                let end = try #require(rest[v.upperBound...].firstIndex(of: "\""))
                #expect(String(rest[v.upperBound..<end]) == version, "\(package) resolved to another version")
            }
        }
        #expect(QSSLVersion.summary.hasPrefix("qssl \(QSSLVersion.version) "))
        #expect(!QSSLVersion.version.isEmpty && QSSLVersion.version.split(separator: ".").count == 3)
    }
}
