/// SplitMix64: a one-word generator; carving seeds its k-means with it, and it expands seeds
/// for `RandomGenerator`.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// xoshiro256** seeded through SplitMix64: small, fast, and the same sequence on every platform,
/// so sampling and training rollouts are reproducible for a fixed seed. Its state can be saved
/// and restored (training checkpoints).
public struct RandomGenerator: Sendable, Equatable {
    public private(set) var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s = (sm.next(), sm.next(), sm.next(), sm.next())
    }

    /// Restores a state saved with `state` (exactly four words, checked by the caller).
    public init(state: [UInt64]) {
        precondition(state.count == 4)
        s = (state[0], state[1], state[2], state[3])
    }

    public var state: [UInt64] { [s.0, s.1, s.2, s.3] }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
    public mutating func uniform() -> Double { nextDouble() }

    /// Uniform integer in 0..<n (n ≥ 1), by Lemire's multiply-shift (bias < 2⁻⁶⁴·n: negligible).
    public mutating func below(_ n: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(n)).high)
    }

    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool { a.state == b.state }
}

/// The generator of training rollouts and PPO minibatches.
public typealias TrainingRNG = RandomGenerator
