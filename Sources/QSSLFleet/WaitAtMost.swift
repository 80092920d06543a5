import Synchronization

/// Returns when every task in `work` has finished or `limit` has passed, whichever is first;
/// unfinished work goes on in the background. (A task group would wait for all its children,
/// however long one hangs.) `qssl serve` reads the fleet's ticket keys at start this way.
public func waitAtMost(_ limit: Duration, for work: [Task<Void, Never>]) async {
    guard !work.isEmpty else { return }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumed = Mutex(false)
        let finish: @Sendable () -> Void = {
            if resumed.withLock({ done in
                defer { done = true }
                return !done
            }) {
                continuation.resume()
            }
        }
        Task {
            for task in work { await task.value }
            finish()
        }
        Task {
            try? await Task.sleep(for: limit)
            finish()
        }
    }
}
