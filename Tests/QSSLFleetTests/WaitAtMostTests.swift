import QSSLFleet
import Synchronization
import Testing

@Suite("waitAtMost: a bounded wait that does not wait for hung work")
struct WaitAtMostTests {
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        func hit() { value.add(1, ordering: .relaxed) }
        var count: Int { value.load(ordering: .relaxed) }
    }

    @Test("returns as soon as quick work is done, and at the limit when some work hangs, which goes on")
    func bounded() async throws {
        let clock = ContinuousClock()
        let finished = Counter()
        let quick: [Task<Void, Never>] = (0..<3).map { _ in Task { finished.hit() } }
        let fast = await clock.measure { await waitAtMost(.seconds(10), for: quick) }
        #expect(fast < .seconds(5))
        #expect(finished.count == 3)

        let hung = Task<Void, Never> { try? await Task.sleep(for: .seconds(30)) }
        let one = Task<Void, Never> { finished.hit() }
        let limited = await clock.measure { await waitAtMost(.milliseconds(200), for: [one, hung]) }
        #expect(limited >= .milliseconds(200))
        #expect(limited < .seconds(10), "waited for the hung task: \(limited)")
        #expect(!hung.isCancelled, "the unfinished work is left running")
        hung.cancel()
        await waitAtMost(.seconds(1), for: [])
    }
}
