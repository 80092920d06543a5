import Foundation

/// Dedicated threads for blocking PKCS#11 calls: a token's C_Sign blocks its thread for as long
/// as the device takes, so it must never run on the event loop nor on Swift's cooperative pool
/// (a few slow tokens would starve every task in the process).
///
/// At most `threads` operations run at once and at most `queueLimit` wait; beyond that `run`
/// fails at once with `.signingQueueFull` — under overload a handshake fails fast with
/// internal_error instead of piling up behind the HSM.
final class SigningExecutor: @unchecked Sendable {
    let threads: Int
    let queueLimit: Int
    private let name: String
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var queueHead = 0
    private var running = 0
    private var started = false
    private var stopped = false
    private var counters = SigningStatistics()

    init(threads: Int, queueLimit: Int, name: String) {
        self.threads = max(1, threads)
        self.queueLimit = max(0, queueLimit)
        self.name = name
    }

    /// A unit of work and the one place its caller hears the outcome. The result's type is
    /// erased here (a signature's bytes, a key exchange's share and secret) and restored by `run`.
    final class Job: @unchecked Sendable {
        private let lock = NSLock()
        private var resume: ((Result<any Sendable, PKCS11Error>) -> Void)?
        let work: @Sendable () throws(PKCS11Error) -> any Sendable

        init(work: @escaping @Sendable () throws(PKCS11Error) -> any Sendable, resume: @escaping (Result<any Sendable, PKCS11Error>) -> Void) {
            self.work = work
            self.resume = resume
        }

        /// Delivers the first outcome (result, timeout or cancellation); later ones are dropped.
        /// Returns false if an outcome was delivered already.
        @discardableResult
        func finish(_ result: Result<any Sendable, PKCS11Error>) -> Bool {
            lock.lock()
            let r = resume
            resume = nil
            lock.unlock()
            r?(result)
            return r != nil
        }

        var isFinished: Bool { lock.withLock { resume == nil } }
    }

    /// Runs `work` on one of the executor's threads and returns its result; fails fast when the
    /// queue is full and gives up (the thread still finishes the call) after `timeout`.
    func run(timeout: Duration, _ work: @escaping @Sendable () throws(PKCS11Error) -> [UInt8]) async -> Result<[UInt8], PKCS11Error> {
        await runJob(timeout: timeout, work)
    }

    /// `run` for any result (a key exchange's share and secret).
    func run<T: Sendable>(timeout: Duration, _ work: @escaping @Sendable () throws(PKCS11Error) -> T) async -> Result<T, PKCS11Error> {
        await runJob(timeout: timeout, work)
    }

    private func runJob<T: Sendable>(timeout: Duration, _ work: @escaping @Sendable () throws(PKCS11Error) -> T) async -> Result<T, PKCS11Error> {
        let holder = JobHolder()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, PKCS11Error>, Never>) in
                // Every success is `work`'s own value, so the cast back cannot fail.
                let job = Job(work: { () throws(PKCS11Error) -> any Sendable in try work() }) { continuation.resume(returning: $0.map { $0 as! T }) }
                // A cancellation that came before the job existed is delivered now.
                guard holder.set(job) else {
                    job.finish(.failure(Self.cancelled))
                    return
                }
                if let refusal = submit(job) {
                    job.finish(.failure(refusal))
                    return
                }
                let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [weak job, name] in
                    guard let job, job.finish(.failure(PKCS11Error(.signingTimedOut, "no answer from the token within \(timeout) (\(name))"))) else {
                        return
                    }
                    self.condition.withLock { self.counters.timedOut += 1 }
                }
            }
        } onCancel: {
            holder.cancel()?.finish(.failure(Self.cancelled))
        }
    }

    private static var cancelled: PKCS11Error { PKCS11Error(.signingTimedOut, "signing cancelled: the connection went away") }

    /// Queues a job, or says why not.
    private func submit(_ job: Job) -> PKCS11Error? {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return PKCS11Error(.finalized, "the token was closed") }
        var waiting = queue.count - queueHead
        // Jobs whose callers gave up (timed out, cancelled) hold no place: a burst of clients
        // that leave while the token is slow must not fill the queue for the ones that stay.
        if waiting + running >= threads + queueLimit {
            queue.removeSubrange(..<queueHead)
            queueHead = 0
            queue.removeAll { $0.isFinished }
            waiting = queue.count
        }
        // Capacity: one job per thread running, plus queueLimit waiting.
        guard waiting + running < threads + queueLimit else {
            counters.rejected += 1
            return PKCS11Error(.signingQueueFull, "\(running) signing, \(waiting) waiting (limit \(threads) + \(queueLimit)) in \(name)")
        }
        if !started {
            started = true
            for i in 0..<threads {
                let thread = Thread { [self] in workerLoop() }
                thread.name = "\(name)-\(i)"
                thread.stackSize = 1 << 20
                thread.start()
            }
        }
        queue.append(job)
        counters.submitted += 1
        condition.signal()
        return nil
    }

    private func workerLoop() {
        while true {
            condition.lock()
            while queue.count == queueHead && !stopped { condition.wait() }
            if stopped && queue.count == queueHead {
                condition.unlock()
                return
            }
            let job = queue[queueHead]
            queueHead += 1
            if queueHead > 64 && queueHead * 2 > queue.count {
                queue.removeFirst(queueHead)
                queueHead = 0
            }
            running += 1
            condition.unlock()
            // A job whose caller gave up (timeout, cancellation) is not sent to the token.
            if !job.isFinished {
                let result: Result<any Sendable, PKCS11Error>
                do { result = .success(try job.work()) } catch { result = .failure(error) }
                job.finish(result)
            }
            condition.withLock {
                running -= 1
                counters.completed += 1
            }
        }
    }

    /// Stops the threads once the queue is drained; later jobs are refused.
    func shutdown() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    var statistics: SigningStatistics {
        condition.withLock {
            var s = counters
            s.running = running
            s.waiting = queue.count - queueHead
            return s
        }
    }
}

/// Counters of a token's signing threads.
public struct SigningStatistics: Sendable, CustomStringConvertible {
    public var submitted = 0
    public var completed = 0
    /// Refused because the queue was full.
    public var rejected = 0
    public var timedOut = 0
    public var running = 0
    public var waiting = 0
    public var description: String {
        "submitted \(submitted), completed \(completed), rejected (queue full) \(rejected), timed out \(timedOut), running \(running), waiting \(waiting)"
    }
}

/// Where the cancellation handler finds the job, which may not exist yet when it runs (the
/// task cancelled before its continuation's body ran): whichever comes second delivers it.
private final class JobHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var job: SigningExecutor.Job?
    private var cancelled = false

    /// Records the job; false if the task was cancelled already (the job must not run).
    func set(_ job: SigningExecutor.Job) -> Bool {
        lock.withLock {
            self.job = job
            return !cancelled
        }
    }

    /// Marks the task cancelled; returns the job to finish, if it exists yet.
    func cancel() -> SigningExecutor.Job? {
        lock.withLock {
            cancelled = true
            return job
        }
    }
}
