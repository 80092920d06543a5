#ifndef CQSSL_CONSTANT_TIME_H
#define CQSSL_CONSTANT_TIME_H

#include <stdint.h>

/// Returns `x` unchanged, but hides its value from the optimiser (an empty asm statement that
/// claims to modify it). QSSLP384 passes every secret-derived mask through it, so LLVM cannot
/// prove a mask is 0 or all-ones and turn a masked select back into a branch on the secret (the
/// same idea as BoringSSL's value_barrier_w). Inlined into the Swift caller; costs nothing.
static inline __attribute__((always_inline)) uint64_t qssl_value_barrier(uint64_t x) {
    __asm__("" : "+r"(x) : /* no inputs */);
    return x;
}

#endif
