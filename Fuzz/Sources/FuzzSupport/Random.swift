/// The only source of randomness in the fuzz targets: SplitMix64 from fixed seeds, reset before
/// every input, so that the same input always makes the same handshake bytes (a crash
/// reproduces). Each side has its own stream, so a side draws the same values whether or not its
/// peer runs (a flight recorded from a pair replays against a lone client or server).
public enum FuzzRandom {
    private static var state: [UInt64] = [0, 0]

    public static func reset() { state = [0x5153_534C_4655_5A5A, 0x5345_5256_4552_2121] }

    public static func next(_ side: Side) -> UInt64 {
        state[side.rawValue] &+= 0x9E37_79B9_7F4A_7C15
        var z = state[side.rawValue]
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public static func bytes(_ count: Int, _ side: Side) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            let v = next(side)
            for i in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
        }
        return out
    }
}
