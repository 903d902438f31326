/* float32 dense layer on a block of inputs. Every output is summed in input order with fmaf, then the
 * bias is added: the same arithmetic for both weight layouts, any block size and any target. Speed
 * comes from doing several outputs (and several inputs of the block) per pass over the weights, so
 * each weight loaded feeds up to RV_DECODE_BLOCK multiply-adds and vector units can take 8 outputs. */
#include <math.h>

#include "rv_internal.h"

#define TILE 8 /* outputs per pass */

/* IN_OUT layout (w[i * out + j]): outputs j0..j0+width for nb inputs. Inlined with constant nb and
   width, the accumulators stay in registers. */
static inline void in_out_tile(const float *restrict x, size_t in, size_t nb, const float *restrict w,
                               size_t out, size_t j0, size_t width, float acc[RV_DECODE_BLOCK][TILE]) {
    size_t i, b, k;
    for (b = 0; b < nb; b++) {
        for (k = 0; k < TILE; k++) {
            acc[b][k] = 0.0f;
        }
    }
    for (i = 0; i < in; i++) {
        const float *restrict wi = w + i * out + j0;
        for (b = 0; b < nb; b++) {
            const float xb = x[b * in + i];
            for (k = 0; k < width; k++) {
                acc[b][k] = fmaf(xb, wi[k], acc[b][k]);
            }
        }
    }
}

/* OUT_IN layout (w[j * in + i], TFLite's): the same sums, one weight row per output. */
static inline void out_in_tile(const float *restrict x, size_t in, size_t nb, const float *restrict w,
                               size_t j0, size_t width, float acc[RV_DECODE_BLOCK][TILE]) {
    size_t i, b, k;
    for (b = 0; b < nb; b++) {
        for (k = 0; k < TILE; k++) {
            acc[b][k] = 0.0f;
        }
    }
    for (i = 0; i < in; i++) {
        for (b = 0; b < nb; b++) {
            const float xb = x[b * in + i];
            for (k = 0; k < width; k++) {
                acc[b][k] = fmaf(xb, w[(j0 + k) * in + i], acc[b][k]);
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

/* One tile of nb inputs; the switch hands the tile functions compile-time block sizes. */
static void dense_tile(const rv_layer *layer, const float *x, size_t nb, size_t j0, size_t width, float *y) {
    float acc[RV_DECODE_BLOCK][TILE];
    const float *w = (const float *)layer->weights;
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

void rv_dense_f32(const rv_layer *layer, const float *x, size_t b, float *y) {
    size_t j0;
    for (j0 = rv_dense_f32_x86(layer, x, b, y); j0 < layer->out; j0 += TILE) {
        dense_tile(layer, x, b, j0, RV_MIN((size_t)TILE, layer->out - j0), y);
    }
}
