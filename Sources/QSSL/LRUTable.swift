/// A dictionary that remembers the order of use, for the bounded in-memory session stores.
///
/// Every operation is O(1): the dictionary maps a key to a slot of `slots`, and the slots form
/// a doubly linked list by index (most recently used at `head`, least at `tail`). Indices rather
/// than class nodes keep the table one value with no reference cycles, and freed slots are
/// reused through `free`, so a full cache allocates nothing per save. A removed value is
/// released at once (its slot is cleared), so a session's secret does not linger in a free slot.
///
/// Not thread-safe by itself: the stores keep it inside a `Mutex`.
struct LRUTable<Key: Hashable, Value> {
    private struct Slot {
        var key: Key?
        var value: Value?
        var previous: Int  // towards head (more recent); -1 at head
        var next: Int  // towards tail (less recent); -1 at tail
    }

    private var index: [Key: Int] = [:]
    private var slots: [Slot] = []
    private var free: [Int] = []
    private var head = -1
    private var tail = -1

    init() {}

    var count: Int { index.count }
    var isEmpty: Bool { index.isEmpty }

    /// The value for `key`, marking it most recently used.
    mutating func value(for key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        moveToHead(i)
        return slots[i].value
    }

    /// The value for `key` without changing the order.
    func peek(_ key: Key) -> Value? {
        index[key].flatMap { slots[$0].value }
    }

    /// Inserts or replaces the value for `key` and marks it most recently used. Returns the value
    /// it replaced.
    @discardableResult
    mutating func set(_ value: Value, for key: Key) -> Value? {
        if let i = index[key] {
            let old = slots[i].value
            slots[i].value = value
            moveToHead(i)
            return old
        }
        let slot = Slot(key: key, value: value, previous: -1, next: head)
        let i: Int
        if let reused = free.popLast() {
            i = reused
            slots[i] = slot
        } else {
            i = slots.count
            slots.append(slot)
        }
        if head >= 0 { slots[head].previous = i }
        head = i
        if tail < 0 { tail = i }
        index[key] = i
        return nil
    }

    /// Removes `key` and returns its value.
    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        return release(i)
    }

    /// Removes the least recently used entry.
    mutating func removeLeastRecentlyUsed() -> (key: Key, value: Value)? {
        guard tail >= 0, let key = slots[tail].key else { return nil }
        index.removeValue(forKey: key)
        let i = tail
        guard let value = release(i) else { return nil }
        return (key, value)
    }

    /// Every key, most recently used first (O(n); for sweeps and tests).
    var keysByRecency: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var i = head
        while i >= 0 {
            if let key = slots[i].key { keys.append(key) }
            i = slots[i].next
        }
        return keys
    }

    private mutating func moveToHead(_ i: Int) {
        guard i != head else { return }
        unlink(i)
        slots[i].previous = -1
        slots[i].next = head
        if head >= 0 { slots[head].previous = i }
        head = i
        if tail < 0 { tail = i }
    }

    private mutating func unlink(_ i: Int) {
        let previous = slots[i].previous
        let next = slots[i].next
        if previous >= 0 { slots[previous].next = next } else { head = next }
        if next >= 0 { slots[next].previous = previous } else { tail = previous }
    }

    private mutating func release(_ i: Int) -> Value? {
        unlink(i)
        let value = slots[i].value
        slots[i] = Slot(key: nil, value: nil, previous: -1, next: -1)
        free.append(i)
        return value
    }
}
