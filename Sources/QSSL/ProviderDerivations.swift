/// The derivations of `CryptoPrimitives` over its `hmac`, for a provider that implements no
/// more than that: each MAC that is key material is taken over as a `SecretBytes` the moment it
/// is returned, and the output is assembled in one.
extension CryptoPrimitives {
    public func hkdfExtract(_ algorithm: HashAlgorithm, salt: SecretBytes?, inputKeyMaterial: SecretBytes) -> SecretBytes {
        let key = salt ?? SecretBytes(zeros: algorithm.digestLength)
        return SecretBytes(inputKeyMaterial.withArray { hmac(algorithm, key: key, data: $0) })
    }

    public func hkdfExpand(_ algorithm: HashAlgorithm, pseudoRandomKey: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        // RFC 5869 §2.3: L <= 255·HashLen (a one-byte block counter); the core asks for at most 48.
        precondition(length >= 0 && length <= 255 * algorithm.digestLength, "HKDF-Expand of \(length) bytes exceeds 255 blocks")
        // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i): each block is taken over as a secret as soon as
        // it is made, and so is each message that carries the previous one.
        var blocks: [SecretBytes] = []
        var previous = SecretBytes(zeros: 0)
        var made = 0
        while made < length {
            let message = SecretBytes(count: previous.count + info.count + 1) { out in
                previous.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[..<$0.count]).copyMemory(from: $0) }
                info.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[previous.count...]).copyMemory(from: $0) }
                out[out.count - 1] = UInt8(truncatingIfNeeded: blocks.count + 1)
            }
            previous = SecretBytes(message.withArray { hmac(algorithm, key: pseudoRandomKey, data: $0) })
            blocks.append(previous)
            made += previous.count
        }
        return SecretBytes.concatenating(blocks, prefix: length)
    }

    public func tls12PHash(_ algorithm: HashAlgorithm, secret: SecretBytes, labelAndSeed: [UInt8], length: Int) -> SecretBytes {
        // A(i) = HMAC(secret, A(i-1)) is a MAC of public data, no more secret than a Finished
        // MAC; the output blocks HMAC(secret, A(i) ‖ labelAndSeed) are taken over as secrets.
        var blocks: [SecretBytes] = []
        var a = labelAndSeed
        var made = 0
        while made < length {
            a = hmac(algorithm, key: secret, data: a)
            let block = SecretBytes(hmac(algorithm, key: secret, data: a + labelAndSeed))
            blocks.append(block)
            made += block.count
        }
        return SecretBytes.concatenating(blocks, prefix: length)
    }
}
