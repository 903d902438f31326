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

/* exp(x) for x in [-80, 80]: x = k ln2 + r with |r| <= ln2/2, a degree-7 Taylor polynomial for e^r
   (error < 1 ulp) and 2^k from its bits. Results stay normal floats (no subnormals, whose handling
   can differ when a process sets flush-to-zero). */
static inline float exp_bounded(float x) {
    const float ln2_hi = 0.693145752f; /* 0x3f317200: ln 2 with 8 trailing zero bits */
    const float ln2_lo = 1.42860677e-6f;
    const float round_shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float k = (x * 1.44269504f + round_shift) - round_shift;
    const float r = fmaf(-k, ln2_lo, fmaf(-k, ln2_hi, x));
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return p * rv_float_from_bits((uint32_t)((int32_t)k + 127) << 23);
}

void rv_sigmoid_f32(float *values, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        float x = values[i];
        /* clamp (NaN -> -80): sigmoid(80) rounds to 1, sigmoid(-80) ~ 1.8e-35 */
        x = x > -80.0f ? x : -80.0f;
        x = x < 80.0f ? x : 80.0f;
        values[i] = 1.0f / (1.0f + exp_bounded(-x));
    }
}
