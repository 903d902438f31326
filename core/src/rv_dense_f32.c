/* float32 dense layer. Every output is summed in input order with fmaf, then the bias is added, then
 * the activation: the same arithmetic for both weight layouts, for any number of inputs, and in the
 * x86 fast path (rv_dense_x86.c) which takes the outputs it can first. The portable kernels keep
 * their accumulators in named variables (compilers keep those in registers, not arrays) and run
 * several outputs per pass so each input value loaded feeds several multiply-adds. */
#include <math.h>

#include "rv_internal.h"

/* IN_OUT layout (w[i * out + j]): outputs j..j+8, one input vector. */
static void in_out_8(const rv_layer *layer, const float *restrict x, size_t j, float *restrict y) {
    const size_t in = layer->in, out = layer->out;
    const float *restrict w = (const float *)layer->weights + j;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    size_t i;
    for (i = 0; i < in; i++, w += out) {
        const float xi = x[i];
        a0 = fmaf(xi, RV_FLASH_F32(&w[0]), a0);
        a1 = fmaf(xi, RV_FLASH_F32(&w[1]), a1);
        a2 = fmaf(xi, RV_FLASH_F32(&w[2]), a2);
        a3 = fmaf(xi, RV_FLASH_F32(&w[3]), a3);
        a4 = fmaf(xi, RV_FLASH_F32(&w[4]), a4);
        a5 = fmaf(xi, RV_FLASH_F32(&w[5]), a5);
        a6 = fmaf(xi, RV_FLASH_F32(&w[6]), a6);
        a7 = fmaf(xi, RV_FLASH_F32(&w[7]), a7);
    }
    {
        const float acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        rv_store_outputs(layer, j, acc, 8, y);
    }
}

/* OUT_IN layout (w[j * in + i], TFLite's): outputs j..j+4, one weight row each. */
static void out_in_4(const rv_layer *layer, const float *restrict x, size_t j, float *restrict y) {
    const size_t in = layer->in;
    const float *restrict r0 = (const float *)layer->weights + j * in;
    const float *restrict r1 = r0 + in, *restrict r2 = r1 + in, *restrict r3 = r2 + in;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    size_t i;
    for (i = 0; i < in; i++) {
        const float xi = x[i];
        a0 = fmaf(xi, RV_FLASH_F32(&r0[i]), a0);
        a1 = fmaf(xi, RV_FLASH_F32(&r1[i]), a1);
        a2 = fmaf(xi, RV_FLASH_F32(&r2[i]), a2);
        a3 = fmaf(xi, RV_FLASH_F32(&r3[i]), a3);
    }
    {
        const float acc[4] = {a0, a1, a2, a3};
        rv_store_outputs(layer, j, acc, 4, y);
    }
}

/* One output, either layout. */
static void one_output(const rv_layer *layer, const float *restrict x, size_t j, float *restrict y) {
    const size_t in = layer->in;
    const size_t step = layer->layout == RV_LAYOUT_IN_OUT ? layer->out : 1;
    const float *restrict w = (const float *)layer->weights + (layer->layout == RV_LAYOUT_IN_OUT ? j : j * in);
    float a = 0.0f;
    size_t i;
    for (i = 0; i < in; i++) {
        a = fmaf(x[i], RV_FLASH_F32(&w[i * step]), a);
    }
    rv_store_outputs(layer, j, &a, 1, y);
}

void rv_dense_f32(const rv_layer *layer, const float *x, size_t b, float *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t first = rv_dense_f32_fast(layer, x, b, y);
    size_t k, j;
    for (k = 0; k < b; k++, x += in, y += out) {
        j = first;
        if (layer->layout == RV_LAYOUT_OUT_IN) {
            for (; j + 4 <= out; j += 4) {
                out_in_4(layer, x, j, y);
            }
        } else if (!RV_FAST_IN_OUT_8) {
            for (; j + 8 <= out; j += 8) {
                in_out_8(layer, x, j, y);
            }
        }
        for (; j < out; j++) {
            one_output(layer, x, j, y);
        }
    }
}
