/* float16-weight dense layer: each weight is expanded to float exactly once per pass (shared by the
 * whole block of inputs) and then used exactly as the float32 layer uses it, so a float16 model gives
 * the same bits as a float32 model holding the expanded weights. */
#include <math.h>

#include "rv_internal.h"

#define TILE 8 /* outputs per pass */

static inline void in_out_tile(const float *restrict x, size_t in, size_t nb, const uint16_t *restrict w,
                               size_t out, size_t j0, size_t width, float acc[RV_DECODE_BLOCK][TILE]) {
    size_t i, b, k;
    float wf[TILE];
    for (b = 0; b < nb; b++) {
        for (k = 0; k < TILE; k++) {
            acc[b][k] = 0.0f;
        }
    }
    for (i = 0; i < in; i++) {
        const uint16_t *restrict wi = w + i * out + j0;
        for (k = 0; k < width; k++) {
            wf[k] = rv_half_to_float(wi[k]);
        }
        for (b = 0; b < nb; b++) {
            const float xb = x[b * in + i];
            for (k = 0; k < width; k++) {
                acc[b][k] = fmaf(xb, wf[k], acc[b][k]);
            }
        }
    }
}

static inline void out_in_tile(const float *restrict x, size_t in, size_t nb, const uint16_t *restrict w,
                               size_t j0, size_t width, float acc[RV_DECODE_BLOCK][TILE]) {
    size_t i, b, k;
    float wf[TILE];
    for (b = 0; b < nb; b++) {
        for (k = 0; k < TILE; k++) {
            acc[b][k] = 0.0f;
        }
    }
    for (i = 0; i < in; i++) {
        for (k = 0; k < width; k++) {
            wf[k] = rv_half_to_float(w[(j0 + k) * in + i]);
        }
        for (b = 0; b < nb; b++) {
            const float xb = x[b * in + i];
            for (k = 0; k < width; k++) {
                acc[b][k] = fmaf(xb, wf[k], acc[b][k]);
            }
        }
    }
}

static void store_tile(const rv_layer *layer, size_t nb, size_t j0, size_t width,
                       float acc[RV_DECODE_BLOCK][TILE], float *y) {
    size_t b, k;
    for (k = 0; k < width; k++) {
        const float bias = rv_bias_f(layer, j0 + k);
        for (b = 0; b < nb; b++) {
            y[b * layer->out + j0 + k] = rv_finish(acc[b][k], bias, layer->activation);
        }
    }
}

static void dense_tile(const rv_layer *layer, const float *x, size_t nb, size_t j0, size_t width, float *y) {
    float acc[RV_DECODE_BLOCK][TILE];
    const uint16_t *w = (const uint16_t *)layer->weights;
    if (layer->layout == RV_LAYOUT_IN_OUT) {
        if (width == TILE && nb == 1) {
            in_out_tile(x, layer->in, 1, w, layer->out, j0, TILE, acc);
        } else if (width == TILE && nb == RV_DECODE_BLOCK) {
            in_out_tile(x, layer->in, RV_DECODE_BLOCK, w, layer->out, j0, TILE, acc);
        } else {
            in_out_tile(x, layer->in, nb, w, layer->out, j0, width, acc);
        }
    } else {
        if (width == TILE && nb == 1) {
            out_in_tile(x, layer->in, 1, w, j0, TILE, acc);
        } else {
            out_in_tile(x, layer->in, nb, w, j0, width, acc);
        }
    }
    store_tile(layer, nb, j0, width, acc, y);
}

void rv_dense_f16(const rv_layer *layer, const float *x, size_t b, float *y) {
    size_t j0;
    for (j0 = rv_dense_f16_x86(layer, x, b, y); j0 < layer->out; j0 += TILE) {
        dense_tile(layer, x, b, j0, RV_MIN((size_t)TILE, layer->out - j0), y);
    }
}
