#include "CQSSLBoringAEAD.h"

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
