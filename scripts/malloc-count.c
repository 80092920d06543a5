// A malloc counter for `scripts/bench --allocations`: preloaded (LD_PRELOAD) into qssl-bench, it
// counts every allocation call (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign)
// and exports the count as qssl_malloc_count(), which the benchmark reads around its loops.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static _Atomic uint64_t count;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void (*real_free)(void *);

// dlsym may allocate (calloc) before the real functions are known: served from here, never freed.
static char bootstrap[4096];
static size_t bootstrap_used;
static int resolving;

static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_free = dlsym(RTLD_NEXT, "free");
    resolving = 0;
}

uint64_t qssl_malloc_count(void) { return atomic_load(&count); }

void *malloc(size_t n) {
    resolve();
    atomic_fetch_add(&count, 1);
    return real_malloc(n);
}

void *calloc(size_t n, size_t size) {
    if (!real_calloc) {
        if (resolving) {
            size_t total = (n * size + 15) & ~(size_t)15;
            if (bootstrap_used + total > sizeof bootstrap) return NULL;
            void *p = bootstrap + bootstrap_used;
            bootstrap_used += total;
            memset(p, 0, total);
            return p;
        }
        resolve();
    }
    atomic_fetch_add(&count, 1);
    return real_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    resolve();
    atomic_fetch_add(&count, 1);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t alignment, size_t n) {
    resolve();
    atomic_fetch_add(&count, 1);
    return real_posix_memalign(out, alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) {
    resolve();
    atomic_fetch_add(&count, 1);
    return real_aligned_alloc(alignment, n);
}

void *memalign(size_t alignment, size_t n) {
    resolve();
    atomic_fetch_add(&count, 1);
    return real_memalign(alignment, n);
}

void free(void *p) {
    if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap) return;
    resolve();
    if (real_free) real_free(p);
}
