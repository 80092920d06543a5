// Which optional instructions this CPU has, read once when the library loads.
#include "CQSSLConstantTime.h"

int qssl_cpu_has_adx = 0;

#if defined(__x86_64__) && (defined(__ELF__) || defined(__APPLE__))
#include <cpuid.h>
#include <stdlib.h>

__attribute__((constructor)) static void qssl_read_cpu_features(void) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    // QSSL_P384_PORTABLE=1 keeps the portable Swift arithmetic (to compare or to debug).
    const char *portable = getenv("QSSL_P384_PORTABLE");
    if (portable != NULL && portable[0] == '1') return;
    // QSSL_P384_FORCE_ADX=1 uses the assembly without asking CPUID: for scripts/ct-check, since
    // valgrind hides ADX from the programs it runs (it executes the instructions all the same).
    // On a CPU without ADX the first multiplication then stops the process (invalid opcode).
    const char *force = getenv("QSSL_P384_FORCE_ADX");
    if (force != NULL && force[0] == '1') { qssl_cpu_has_adx = 1; return; }
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    // leaf 7, EBX bit 8: BMI2 (mulx); bit 19: ADX (adcx, adox)
    qssl_cpu_has_adx = ((ebx >> 8) & 1) && ((ebx >> 19) & 1);
}
#endif
