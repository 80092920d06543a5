#include "CPKCS11.h"
#include <dlfcn.h>
#include <string.h>

void *qssl_pkcs11_open_module(const char *path, char *error, size_t errorLength) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL && error != NULL && errorLength > 0) {
        const char *message = dlerror();
        strncpy(error, message != NULL ? message : "dlopen failed", errorLength - 1);
        error[errorLength - 1] = 0;
    }
    return handle;
}

void *qssl_pkcs11_symbol(void *module, const char *name) {
    return dlsym(module, name);
}
