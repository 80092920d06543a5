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

#ifdef __cplusplus
}
#endif

#endif
