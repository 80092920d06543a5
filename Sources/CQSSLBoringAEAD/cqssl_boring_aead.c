#include "CQSSLBoringAEAD.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// BoringSSL's EVP_AEAD API (include/openssl/aead.h), as swift-crypto links it.
struct evp_aead_st;
struct evp_aead_ctx_st;
const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_aes_128_gcm(void);
const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void);
const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void);
struct evp_aead_ctx_st *CCryptoBoringSSL_EVP_AEAD_CTX_new(const struct evp_aead_st *aead, const uint8_t *key,
                                                          size_t key_len, size_t tag_len);
void CCryptoBoringSSL_EVP_AEAD_CTX_free(struct evp_aead_ctx_st *ctx);
int CCryptoBoringSSL_EVP_AEAD_CTX_seal(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                       size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                       const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);
int CCryptoBoringSSL_EVP_AEAD_CTX_open(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                       size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                       const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);
void CCryptoBoringSSL_ERR_clear_error(void);

cqssl_aead_ctx *cqssl_aead_new(cqssl_aead_algorithm algorithm, const uint8_t *key, size_t key_len) {
    const struct evp_aead_st *aead;
    switch (algorithm) {
    case CQSSL_AEAD_AES_128_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_128_gcm(); break;
    case CQSSL_AEAD_AES_256_GCM: aead = CCryptoBoringSSL_EVP_aead_aes_256_gcm(); break;
    case CQSSL_AEAD_CHACHA20_POLY1305: aead = CCryptoBoringSSL_EVP_aead_chacha20_poly1305(); break;
    default: return NULL;
    }
    struct evp_aead_ctx_st *ctx = CCryptoBoringSSL_EVP_AEAD_CTX_new(aead, key, key_len, CQSSL_AEAD_TAG_LENGTH);
    if (ctx == NULL) CCryptoBoringSSL_ERR_clear_error();
    return (cqssl_aead_ctx *)ctx;
}

void cqssl_aead_free(cqssl_aead_ctx *ctx) {
    // EVP_AEAD_CTX_free ends in OPENSSL_free, which wipes the context (key schedule) before freeing.
    CCryptoBoringSSL_EVP_AEAD_CTX_free((struct evp_aead_ctx_st *)ctx);
}

int cqssl_aead_seal(const cqssl_aead_ctx *ctx, uint8_t *out, const uint8_t nonce[12], const uint8_t *in,
                    size_t in_len, const uint8_t *ad, size_t ad_len) {
    size_t written = 0;
    size_t out_len = in_len + CQSSL_AEAD_TAG_LENGTH;
    if (out_len < in_len) return 0;
    if (!CCryptoBoringSSL_EVP_AEAD_CTX_seal((const struct evp_aead_ctx_st *)ctx, out, &written, out_len, nonce,
                                            CQSSL_AEAD_NONCE_LENGTH, in, in_len, ad, ad_len)) {
        CCryptoBoringSSL_ERR_clear_error();
        return 0;
    }
    return written == out_len;
}

int cqssl_aead_open(const cqssl_aead_ctx *ctx, uint8_t *out, const uint8_t nonce[12], const uint8_t *in,
                    size_t in_len, const uint8_t *ad, size_t ad_len) {
    size_t written = 0;
    if (in_len < CQSSL_AEAD_TAG_LENGTH) return 0;
    size_t out_len = in_len - CQSSL_AEAD_TAG_LENGTH;
    // EVP_AEAD_CTX_open checks the tag before it returns 1 and zeroes `out` on any failure.
    if (!CCryptoBoringSSL_EVP_AEAD_CTX_open((const struct evp_aead_ctx_st *)ctx, out, &written, out_len, nonce,
                                            CQSSL_AEAD_NONCE_LENGTH, in, in_len, ad, ad_len)) {
        CCryptoBoringSSL_ERR_clear_error();
        return 0;
    }
    if (written != out_len) {
        if (out_len > 0) memset(out, 0, out_len);
        return 0;
    }
    return 1;
}

// BoringSSL's RAND_bytes (include/openssl/rand.h): always returns one.
int CCryptoBoringSSL_RAND_bytes(uint8_t *buf, size_t len);

void cqssl_random_bytes(uint8_t *out, size_t len) {
    (void)CCryptoBoringSSL_RAND_bytes(out, len);
}

// BoringSSL's digests, HMAC and HKDF (include/openssl/{digest,hmac,hkdf,mem}.h).
const struct env_md_st *CCryptoBoringSSL_EVP_sha256(void);
const struct env_md_st *CCryptoBoringSSL_EVP_sha384(void);
uint8_t *CCryptoBoringSSL_HMAC(const struct env_md_st *evp_md, const void *key, size_t key_len, const uint8_t *data,
                               size_t data_len, uint8_t *out, unsigned int *out_len);
int CCryptoBoringSSL_HKDF_extract(uint8_t *out_key, size_t *out_len, const struct env_md_st *digest,
                                  const uint8_t *secret, size_t secret_len, const uint8_t *salt, size_t salt_len);
int CCryptoBoringSSL_HKDF_expand(uint8_t *out_key, size_t out_len, const struct env_md_st *digest, const uint8_t *prk,
                                 size_t prk_len, const uint8_t *info, size_t info_len);
void CCryptoBoringSSL_OPENSSL_cleanse(void *ptr, size_t len);

static const struct env_md_st *cqssl_digest(int sha384) {
    return sha384 ? CCryptoBoringSSL_EVP_sha384() : CCryptoBoringSSL_EVP_sha256();
}

static size_t cqssl_digest_length(int sha384) { return sha384 ? 48 : 32; }

int cqssl_hmac(int sha384, const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t *out) {
    unsigned int written = 0;
    if (CCryptoBoringSSL_HMAC(cqssl_digest(sha384), key, key_len, data, data_len, out, &written) == NULL ||
        written != cqssl_digest_length(sha384)) {
        CCryptoBoringSSL_ERR_clear_error();
        memset(out, 0, cqssl_digest_length(sha384));
        return 0;
    }
    return 1;
}

int cqssl_hkdf_extract(int sha384, const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len, uint8_t *out) {
    size_t written = 0;
    if (!CCryptoBoringSSL_HKDF_extract(out, &written, cqssl_digest(sha384), ikm, ikm_len, salt, salt_len) ||
        written != cqssl_digest_length(sha384)) {
        CCryptoBoringSSL_ERR_clear_error();
        memset(out, 0, cqssl_digest_length(sha384));
        return 0;
    }
    return 1;
}

int cqssl_hkdf_expand(int sha384, const uint8_t *prk, size_t prk_len, const uint8_t *info, size_t info_len, uint8_t *out,
                      size_t out_len) {
    if (out_len == 0) return 1;
    if (!CCryptoBoringSSL_HKDF_expand(out, out_len, cqssl_digest(sha384), prk, prk_len, info, info_len)) {
        CCryptoBoringSSL_ERR_clear_error();
        memset(out, 0, out_len);
        return 0;
    }
    return 1;
}

// BoringSSL's HMAC_CTX (include/openssl/hmac.h), opaque here. HMAC_Init_ex with a NULL key and
// the same hash reuses the key's padded blocks: P_hash hashes them once, not once per HMAC.
struct hmac_ctx_st;
struct hmac_ctx_st *CCryptoBoringSSL_HMAC_CTX_new(void);
void CCryptoBoringSSL_HMAC_CTX_free(struct hmac_ctx_st *ctx);
int CCryptoBoringSSL_HMAC_Init_ex(struct hmac_ctx_st *ctx, const void *key, size_t key_len, const struct env_md_st *md,
                                  void *impl);
int CCryptoBoringSSL_HMAC_Update(struct hmac_ctx_st *ctx, const uint8_t *data, size_t data_len);
int CCryptoBoringSSL_HMAC_Final(struct hmac_ctx_st *ctx, uint8_t *out, unsigned int *out_len);

// RFC 5246 §5: P_hash(secret, seed) = HMAC(secret, A(1) ‖ seed) ‖ HMAC(secret, A(2) ‖ seed) ‖ …
// with A(0) = seed, A(i) = HMAC(secret, A(i-1)). One HMAC context keyed once (HMAC_CTX_free
// cleanses it); A(i) and each block are on the stack and wiped.
int cqssl_tls12_p_hash(int sha384, const uint8_t *secret, size_t secret_len, const uint8_t *seed, size_t seed_len,
                       uint8_t *out, size_t out_len) {
    const struct env_md_st *md = cqssl_digest(sha384);
    const size_t hash_len = cqssl_digest_length(sha384);
    struct hmac_ctx_st *ctx = CCryptoBoringSSL_HMAC_CTX_new();
    uint8_t a[48];
    uint8_t block[48];
    unsigned int written = 0;
    // A(1) = HMAC(secret, seed)
    int ok = ctx != NULL && CCryptoBoringSSL_HMAC_Init_ex(ctx, secret, secret_len, md, NULL) &&
             CCryptoBoringSSL_HMAC_Update(ctx, seed, seed_len) && CCryptoBoringSSL_HMAC_Final(ctx, a, &written) &&
             written == hash_len;
    size_t offset = 0;
    while (ok && offset < out_len) {
        // The block: HMAC(secret, A(i) ‖ seed)
        ok = CCryptoBoringSSL_HMAC_Init_ex(ctx, NULL, 0, NULL, NULL) && CCryptoBoringSSL_HMAC_Update(ctx, a, hash_len) &&
             CCryptoBoringSSL_HMAC_Update(ctx, seed, seed_len) && CCryptoBoringSSL_HMAC_Final(ctx, block, &written) &&
             written == hash_len;
        if (!ok) break;
        size_t n = out_len - offset < hash_len ? out_len - offset : hash_len;
        memcpy(out + offset, block, n);
        offset += n;
        // A(i+1) = HMAC(secret, A(i))
        if (offset < out_len) {
            ok = CCryptoBoringSSL_HMAC_Init_ex(ctx, NULL, 0, NULL, NULL) && CCryptoBoringSSL_HMAC_Update(ctx, a, hash_len) &&
                 CCryptoBoringSSL_HMAC_Final(ctx, a, &written) && written == hash_len;
        }
    }
    if (ctx != NULL) CCryptoBoringSSL_HMAC_CTX_free(ctx);
    CCryptoBoringSSL_OPENSSL_cleanse(a, sizeof a);
    CCryptoBoringSSL_OPENSSL_cleanse(block, sizeof block);
    if (!ok) {
        CCryptoBoringSSL_ERR_clear_error();
        memset(out, 0, out_len);
    }
    return ok;
}
