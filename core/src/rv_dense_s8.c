/* int8 dense layer, TFLite's reference FULLY_CONNECTED: acc = sum_i w_ji * (x_i - input_zero_point)
 * + bias_j (int32, order-free), requantised with MultiplyByQuantizedMultiplier (per tensor or per
 * output channel), plus the output zero point, clamped to the activation range. Weights stay in
 * TFLite's OUT_IN layout: each output is a dot product over a contiguous row. */
#include "rv_internal.h"

static int32_t dot_s8_s16(const int8_t *restrict w, const int16_t *restrict x, size_t n) {
    int32_t acc = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        acc += (int32_t)w[i] * (int32_t)x[i];
    }
    return acc;
}

void rv_dense_s8(const rv_layer *layer, const int8_t *x, size_t b, int8_t *y, int16_t *x16) {
    const size_t in = layer->in;
    const size_t out = layer->out;
    const int8_t *w = (const int8_t *)layer->weights;
    const int32_t *bias = (const int32_t *)layer->bias;
    const int32_t input_offset = -layer->input_quant.zero_point;
    const int32_t output_offset = layer->output_quant.zero_point;
    const int per_channel = layer->n_multipliers > 1;
    size_t j, k;
    /* the input offset is applied once per input value, not once per multiply */
    for (k = 0; k < b * in; k++) {
        x16[k] = (int16_t)(x[k] + input_offset);
    }
    for (j = 0; j < out; j++) {
        const int8_t *row = w + j * in;
        const int32_t multiplier = layer->multipliers[per_channel ? j : 0];
        const int32_t shift = layer->shifts[per_channel ? j : 0];
        const uint32_t bias_j = bias != NULL ? (uint32_t)bias[j] : 0u;
        for (k = 0; k < b; k++) {
            /* bias added modulo 2^32 so a hostile file cannot cause signed overflow */
            const int32_t acc = (int32_t)((uint32_t)dot_s8_s16(row, x16 + k * in, in) + bias_j);
            int64_t v = (int64_t)rv_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset;
            v = RV_MAX(v, (int64_t)layer->activation_min);
            v = RV_MIN(v, (int64_t)layer->activation_max);
            y[k * out + j] = (int8_t)v;
        }
    }
}
