/* rackvae core: declarations shared between the core's source files (not part of the public API). */
#ifndef RV_INTERNAL_H
#define RV_INTERNAL_H

#include "rackvae.h"

/* Orders the main loop's buffer writes before the volatile flag that publishes them. */
#if defined(__GNUC__) || defined(__clang__)
#define RV_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define RV_COMPILER_BARRIER() ((void)0)
#endif

#define RV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RV_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- dense layers on a block of b <= RV_DECODE_BLOCK inputs: x [b][in] -> y [b][out] ---- */

/* float32 / float16 weights: y = act(sum_i x_i * w_ij in input order with fmaf, then + bias). */
void rv_dense_f32(const rv_layer *layer, const float *x, size_t b, float *y);
void rv_dense_f16(const rv_layer *layer, const float *x, size_t b, float *y);

/* int8: TFLite reference FULLY_CONNECTED (per-tensor or per-channel requantisation).
   x16 is scratch for b * in int16 values. */
void rv_dense_s8(const rv_layer *layer, const int8_t *x, size_t b, int8_t *y, int16_t *x16);

/* IEEE half bits -> float, exact (integer arithmetic only). */
float rv_half_to_float(uint16_t h);

/* The logistic in place, from an exp built on exactly rounded operations only (bit-identical on
   every IEEE target, unlike libm's expf). */
void rv_sigmoid_f32(float *values, size_t n);

/* Bias j of a float layer (0 without bias). */
static inline float rv_bias_f(const rv_layer *layer, size_t j) {
    if (layer->bias == NULL) {
        return 0.0f;
    }
    return layer->bias_dtype == RV_F16 ? rv_half_to_float(((const uint16_t *)layer->bias)[j])
                                       : ((const float *)layer->bias)[j];
}

/* Bias added after the sum, then the fused activation (as TFLite's reference kernel orders it). */
static inline float rv_finish(float sum, float bias, uint8_t activation) {
    const float v = sum + bias;
    return (activation == RV_ACT_RELU && !(v > 0.0f)) ? 0.0f : v;
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding, as TFLite-Micro builds it). */
int32_t rv_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/* Largest output/input width of the hidden layers and of all layers. */
uint16_t rv_model_max_hidden(const rv_model *model);
uint16_t rv_model_max_width(const rv_model *model);

/* Checks metadata values against the limits and (rows * ticks, latent_dim) against the graph. */
rv_status rv_metadata_check(const rv_metadata *meta, uint16_t latent_dim, uint16_t output_size);

#endif
