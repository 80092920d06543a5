#ifndef CQSSL_BORING_AEAD_H
#define CQSSL_BORING_AEAD_H

// Record-layer AEAD calls straight into the BoringSSL that swift-crypto builds and links into
// every program that uses it. swift-crypto keeps that BoringSSL module internal, and its public
// AES.GCM / ChaChaPoly API sets up a new key schedule and allocates a Data for the output (and
// the sealed box) on every call, which is most of the cost of a 16 KiB record beside the
// cipher itself. These wrappers keep one EVP_AEAD_CTX per key and seal into, and open from,
// the caller's buffers.
//
// swift-crypto prefixes its BoringSSL symbols with `CCryptoBoringSSL_` (its symbol-mangling
// step); cqssl_boring_aead.c declares the handful used here under those names. If a
// swift-crypto release renamed them, the link fails: nothing silently changes.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which AEAD a context uses.
typedef enum {
    CQSSL_AEAD_AES_128_GCM = 1,
    CQSSL_AEAD_AES_256_GCM = 2,
    CQSSL_AEAD_CHACHA20_POLY1305 = 3,
} cqssl_aead_algorithm;

/// The tag length of every AEAD above, and their nonce length.
enum { CQSSL_AEAD_TAG_LENGTH = 16, CQSSL_AEAD_NONCE_LENGTH = 12 };

typedef struct cqssl_aead_ctx cqssl_aead_ctx;

/// A context for `key` (16 or 32 bytes as the algorithm needs), or NULL on a wrong key length.
/// Free it with cqssl_aead_free, which wipes the key schedule.
cqssl_aead_ctx *cqssl_aead_new(cqssl_aead_algorithm algorithm, const uint8_t *key, size_t key_len);
void cqssl_aead_free(cqssl_aead_ctx *ctx);

/// Encrypts `in_len` bytes of `in` and writes ciphertext ‖ tag (`in_len + 16` bytes) to `out`.
/// `in` and `out` are disjoint or equal (sealing in place). Returns 1, or 0 on failure.
int cqssl_aead_seal(const cqssl_aead_ctx *ctx, uint8_t *out, const uint8_t nonce[12], const uint8_t *in,
                    size_t in_len, const uint8_t *ad, size_t ad_len);

/// Authenticates ciphertext ‖ tag (`in_len` bytes, at least 16) and only then reports success;
/// the plaintext (`in_len - 16` bytes) is written to `out`, which is disjoint from `in` or equal
/// to it. On failure (0) `out` is zeroed: no unauthenticated plaintext is left behind.
int cqssl_aead_open(const cqssl_aead_ctx *ctx, uint8_t *out, const uint8_t nonce[12], const uint8_t *in,
                    size_t in_len, const uint8_t *ad, size_t ad_len);

/// `len` random bytes from BoringSSL's RAND_bytes (a per-thread DRBG seeded from the kernel,
/// reseeded and fork-safe). It cannot fail: BoringSSL aborts rather than return bad randomness.
void cqssl_random_bytes(uint8_t *out, size_t len);

// HMAC, HKDF and the TLS 1.2 P_hash on BoringSSL's HMAC and HKDF: swift-crypto's HMAC<H> is a
// generic value over a copy-on-write digest, and keying it, copying it and finalizing it
// allocated and copied several times for each block of a key schedule. `sha384` selects
// SHA-384, else SHA-256. Each returns 1, or 0 on failure (out then zeroed). The P_hash
// intermediates (A(i), each block) are wiped here; BoringSSL's HMAC and HKDF do not wipe their
// own stack copies of the padded key and last block, no more than swift-crypto's HMAC did.

/// HMAC(key, data) into `out` (32 or 48 bytes).
int cqssl_hmac(int sha384, const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t *out);

/// RFC 5869 HKDF-Extract(salt, ikm) into `out` (32 or 48 bytes); an empty salt is HashLen zeros.
int cqssl_hkdf_extract(int sha384, const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len, uint8_t *out);

/// RFC 5869 HKDF-Expand(prk, info, out_len): at most 255 blocks.
int cqssl_hkdf_expand(int sha384, const uint8_t *prk, size_t prk_len, const uint8_t *info, size_t info_len, uint8_t *out,
                      size_t out_len);

/// RFC 5246 §5 P_hash(secret, seed) of `out_len` bytes (the seed is the label and seed together).
int cqssl_tls12_p_hash(int sha384, const uint8_t *secret, size_t secret_len, const uint8_t *seed, size_t seed_len,
                       uint8_t *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
