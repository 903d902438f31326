/* Float activations: bias + ReLU of a layer's sums, and the logistic from exactly rounded IEEE
 * operations only, so every target computes the same bits (libm's expf differs between glibc and
 * newlib in the last place). */
#include <math.h>

#include "rv_internal.h"

void rv_store_outputs(const rv_layer *layer, size_t j, const float *sums, size_t n, float *y) {
    size_t k;
    for (k = 0; k < n; k++) {
        y[j + k] = rv_finish(sums[k], rv_bias_f(layer, j + k), layer->activation);
    }
}

#if defined(RV_TARGET_M7)
/* The operations of rv_logistic() (rv_internal.h) in the same order, with every constant
   held in a register for the whole loop (GCC reloads 1.0 and copies constants for its accumulating
   vfma) and two outputs per pass: 23 instructions per output instead of 27. Constants: s6 -80,
   s7 80, s8 -log2(e), s9 the rounding shift, s10 1, s11-s15 the polynomial's c1..c5. One output's
   registers: x (in, then the result), a (then high), f, f2, low, mid and a core register. */
#define RV_LOGISTIC(x, a, f, f2, low, mid, r)                                                              \
    "vmaxnm.f32 " x ", " x ", s6\n\t" /* clamp_logit */                                                    \
    "vminnm.f32 " x ", " x ", s7\n\t"                                                                      \
    "vmul.f32 " a ", " x ", s8\n\t"                                                                        \
    "vadd.f32 " a ", " a ", s9\n\t" /* a */                                                                \
    "vsub.f32 " f ", " a ", s9\n\t" /* n */                                                                \
    "vmov " r ", " a "\n\t"                                                                                \
    "vfnms.f32 " f ", " x ", s8\n\t" /* f = x * -log2(e) - n, one rounding */                              \
    "lsls " r ", " r ", #23\n\t"     /* 2^n */                                                             \
    "vmul.f32 " f2 ", " f ", " f "\n\t"                                                                    \
    "vmov.f32 " low ", s10\n\t"                                                                            \
    "vfma.f32 " low ", " f ", s11\n\t"                                                                     \
    "vmov.f32 " mid ", s12\n\t"                                                                            \
    "vfma.f32 " mid ", " f ", s13\n\t"                                                                     \
    "vmov.f32 " a ", s14\n\t"                                                                              \
    "vfma.f32 " a ", " f ", s15\n\t"   /* high */                                                          \
    "vfma.f32 " mid ", " a ", " f2 "\n\t"                                                                  \
    "vfma.f32 " low ", " mid ", " f2 "\n\t" /* two_f */                                                    \
    "vmov " x ", " r "\n\t"                                                                                \
    "vmul.f32 " x ", " low ", " x "\n\t"                                                                   \
    "vadd.f32 " x ", " x ", s10\n\t"                                                                       \
    "vdiv.f32 " x ", s10, " x "\n\t"
#define RV_LOGISTIC_FIRST RV_LOGISTIC("s0", "s2", "s3", "s4", "s5", "s16", "r2")
#define RV_LOGISTIC_SECOND RV_LOGISTIC("s1", "s17", "s18", "s19", "s20", "s21", "r3")

static const float logistic_constants[10] = {-RV_LOGIT_LIMIT, RV_LOGIT_LIMIT, RV_NEG_LOG2E, RV_ROUND_SHIFT,
                                             1.0f,            RV_EXP2_C1,     RV_EXP2_C2,   RV_EXP2_C3,
                                             RV_EXP2_C4,      RV_EXP2_C5};

void rv_sigmoid_f32(float *values, size_t n) {
    size_t pairs = n / 2;
    __asm__ volatile("vldmia %[k], {s6-s15}\n\t"
                     "cmp %[pairs], #0\n\t"
                     "beq 2f\n"
                     "1:\n\t"
                     "vldmia %[v], {s0-s1}\n\t" RV_LOGISTIC_FIRST RV_LOGISTIC_SECOND
                     "vstmia %[v]!, {s0-s1}\n\t"
                     "subs %[pairs], %[pairs], #1\n\t"
                     "bne 1b\n"
                     "2:\n\t"
                     "tst %[n], #1\n\t"
                     "beq 3f\n\t"
                     "vldr s0, [%[v]]\n\t" RV_LOGISTIC_FIRST
                     "vstr s0, [%[v]]\n"
                     "3:\n\t"
                     : [v] "+r"(values), [pairs] "+r"(pairs)
                     : [k] "r"(logistic_constants), [n] "r"(n)
                     : "r2", "r3", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
                       "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "cc", "memory");
}
#else
void rv_sigmoid_f32(float *values, size_t n) {
    size_t i;
    for (i = rv_sigmoid_f32_fast(values, n); i < n; i++) { /* what an x86 fast path left */
        values[i] = rv_logistic(values[i]);
    }
}
#endif
