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

/* The logistic as 1 / (1 + 2^y), y = -x log2(e) with x clamped to [-80, 80] (fmaxf/fminf first, so
   NaN -> -80; sigmoid(80) rounds to 1, sigmoid(-80) ~ 1.8e-35). y = n + f with n = round(y) from the
   (1.5 * 2^23 + 127) shift (a's low bits then hold n + 127, 2^n's biased exponent) and f = y - n in
   [-0.5, 0.5] by one fmaf from x, so small probabilities keep their relative accuracy; 2^f from a
   degree-5 polynomial (relative error 1.1e-7, fitted with 2^0 = 1 exactly) by Estrin's scheme (fewer
   dependent steps and register copies than Horner on the M7's accumulating vfma), 2^n from its
   exponent bits. Every 2^y stays a normal float (no subnormals, whose handling can differ
   when a process sets flush-to-zero). */
static inline float clamp_logit(float x) {
#if defined(__arm__)
    return fminf(fmaxf(x, -80.0f), 80.0f); /* vmaxnm + vminnm on the Cortex-M7's FPv5 */
#else
    /* The same values (NaN -> -80) as compare-and-select, which x86 compilers vectorise; fmaxf is
       not, since maxps is not IEEE maxNum. */
    const float low = x > -80.0f ? x : -80.0f;
    return low < 80.0f ? low : 80.0f;
#endif
}

static inline float logistic(float x) {
    const float round_shift = 12583039.0f; /* 1.5 * 2^23 + 127: the low bits hold n + 127 */
    const float clamped = clamp_logit(x);
    const float a = clamped * -1.44269504f + round_shift;
    const float f = fmaf(clamped, -1.44269504f, -(a - round_shift)); /* unrounded y - n: no 2^-24 |y| error */
    const float f2 = f * f;
    const float low = fmaf(0.693147004f, f, 1.0f);
    float mid = fmaf(0.0555073358f, f, 0.240222424f);
    const float high = fmaf(0.00132647087f, f, 0.00967150927f);
    uint32_t a_bits;
    float two_f;
    memcpy(&a_bits, &a, sizeof a_bits);
    mid = fmaf(high, f2, mid);
    two_f = fmaf(mid, f2, low);
    return 1.0f / (1.0f + two_f * rv_float_from_bits(a_bits << 23));
}

void rv_sigmoid_f32(float *values, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        values[i] = logistic(values[i]);
    }
}
