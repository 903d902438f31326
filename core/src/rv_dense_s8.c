/* int8 dense layer, TFLite's reference FULLY_CONNECTED: acc = sum_i w_ji * (x_i - input_zero_point)
 * + bias_j (int32, order-free), requantised with MultiplyByQuantizedMultiplier (per tensor or per
 * output channel), plus the output zero point, clamped to the activation range. Weights in TFLite's
 * OUT_IN layout: each output a dot product over a contiguous row. (Layers repacked for the Cortex-M7
 * DSP kernel run in rv_dense_s8_m7.c.) */
#include "rv_internal.h"

/* A weight times an offset input. rv_model_check keeps zero points in [-128, 127], so |x16| <= 255 and
   |product| <= 128 * 255 < 2^15: with a 16-bit int (AVR) the products are 16-bit multiplies instead of
   32-bit library calls; the sums stay int32 everywhere. */
#if defined(__AVR__)
typedef int rv_s8_product;
#else
typedef int32_t rv_s8_product;
#endif

/* Dot products of 4 weight rows with the same inputs (integer sums do not depend on their order,
   so any grouping gives TFLite's result). Each input loaded feeds 4 multiply-accumulates. */
static void dot4(const int8_t *restrict w, size_t in, const int16_t *restrict x, int32_t acc[4]) {
    const int8_t *restrict r0 = w, *restrict r1 = w + in, *restrict r2 = w + 2 * in, *restrict r3 = w + 3 * in;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i;
    for (i = 0; i < in; i++) {
        const rv_s8_product xi = x[i];
        a0 += RV_FLASH_S8(&r0[i]) * xi;
        a1 += RV_FLASH_S8(&r1[i]) * xi;
        a2 += RV_FLASH_S8(&r2[i]) * xi;
        a3 += RV_FLASH_S8(&r3[i]) * xi;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static int32_t dot1(const int8_t *restrict w, size_t in, const int16_t *restrict x) {
    int32_t acc = 0;
    size_t i;
    for (i = 0; i < in; i++) {
        acc += RV_FLASH_S8(&w[i]) * (rv_s8_product)x[i];
    }
    return acc;
}

void rv_dense_s8(const rv_layer *layer, const int8_t *x, size_t b, int8_t *y, int16_t *x16) {
    const size_t in = layer->in;
    const size_t out = layer->out;
    const int8_t *w = (const int8_t *)layer->weights;
    const int32_t input_offset = -layer->input_quant.zero_point;
    size_t j, k, r;
    /* the input offset is applied once per input value, not once per multiply */
    for (k = 0; k < b * in; k++) {
        x16[k] = (int16_t)(x[k] + input_offset);
    }
    /* where int8 layers run repacked (RV_REPACK_S8), these are the rare fallback: one row at a time
       keeps the flash small */
    for (j = rv_dense_s8_fast(layer, x16, b, y); !RV_REPACK_S8 && j + 4 <= out; j += 4) {
        for (k = 0; k < b; k++) {
            int32_t acc[4];
            dot4(w + j * in, in, x16 + k * in, acc);
            for (r = 0; r < 4; r++) {
                y[k * out + j + r] = rv_requantize(layer, j + r, acc[r]);
            }
        }
    }
    for (; j < out; j++) {
        for (k = 0; k < b; k++) {
            y[k * out + j] = rv_requantize(layer, j, dot1(w + j * in, in, x16 + k * in));
        }
    }
}
