/* Running the decoder: blocks of up to RV_DECODE_BLOCK latents (8 on x86-64, else 1) go
 * through the dense layers together (each weight loaded once per block), ping-ponging between two
 * scratch buffers; the last layer writes straight into the caller's outputs (a groove model's channels
 * are one vector), where the logistic is applied. int8 models repacked for the Cortex-M7 DSP kernel go
 * through it a latent at a time, its last layer looking the probabilities up in a table
 * (rv_s8_rows4_decode). */
#include <math.h>
#include <string.h>

#include "rv_internal.h"

/* float models: two activation buffers [block][max hidden width] */
static size_t float_scratch(const rv_model *model) {
    return 2u * RV_DECODE_BLOCK * rv_model_max_hidden(model) * sizeof(float);
}

/* int8 models: the max width padded to a multiple of 4, the unit of their scratch */
static size_t s8_width(const rv_model *model) { return ((size_t)rv_model_max_width(model) + 3u) & ~(size_t)3u; }

/* int8 models: int16 offset inputs, two int8 activation buffers and the int8 output (for rv_decode),
   all [block][width]; repacked for the M7's DSP kernel, two int16 buffers [width] */
static size_t s8_scratch(const rv_model *model) {
    return RV_DECODE_BLOCK * s8_width(model) * (sizeof(int16_t) + 3u);
}

/* int8 layers repacked for the Cortex-M7 DSP kernel (RV_LAYOUT_S8_ROWS4: all of them or none) */
static int s8_streams(const rv_model *model) {
    return RV_REPACK_S8 && model->layers[0].layout == RV_LAYOUT_S8_ROWS4;
}

static size_t scratch_size(const rv_model *model) {
    return model->dtype == RV_S8 ? s8_scratch(model) : float_scratch(model);
}

size_t rv_scratch_size(const rv_model *model) {
    return rv_model_ready(model) == RV_OK ? scratch_size(model) : 0;
}

static rv_status check_call(const rv_model *model, const void *latents, size_t n, const void *out,
                            const void *scratch, size_t scratch_len) {
    const rv_status status = rv_model_ready(model);
    size_t needed;
    if (status != RV_OK) {
        return status;
    }
    if ((n > 0 && (latents == NULL || out == NULL)) || ((uintptr_t)scratch % 4) != 0) {
        return RV_ERR_ARGUMENT;
    }
    needed = scratch_size(model);
    if (scratch_len < needed || (scratch == NULL && needed > 0)) {
        return RV_ERR_BUFFER_TOO_SMALL;
    }
    return RV_OK;
}

static void dense_float(const rv_layer *layer, const float *x, size_t b, float *y) {
    if (layer->dtype == RV_F16) {
        rv_dense_f16(layer, x, b, y);
    } else {
        rv_dense_f32(layer, x, b, y);
    }
}

static rv_status decode_float(const rv_model *model, const float *latents, size_t n, float *outputs,
                              void *scratch) {
    const size_t latent_dim = rv_model_latent_dim(model);
    const size_t output_size = rv_model_output_size(model);
    const size_t hidden = rv_model_max_hidden(model);
    float *buffers[2];
    size_t start;
    buffers[0] = (float *)scratch;
    buffers[1] = buffers[0] + RV_DECODE_BLOCK * hidden;
    for (start = 0; start < n; start += RV_DECODE_BLOCK) {
        const size_t b = RV_MIN((size_t)RV_DECODE_BLOCK, n - start);
        const float *x = latents + start * latent_dim;
        float *out = outputs + start * output_size;
        unsigned l;
        for (l = 0; l < model->n_layers; l++) {
            float *y = (l + 1u == model->n_layers) ? out : buffers[l % 2u];
            dense_float(&model->layers[l], x, b, y);
            x = y;
        }
        rv_sigmoid_f32(out, b * output_size);
    }
    return RV_OK;
}

/* The dense layers of the integer graph for one block: x [b][latent_dim] int8 -> y [b][output_size]
   int8, the LOGISTIC's input (the callers apply it as they store the outputs). */
static void decode_s8_block(const rv_model *model, const int8_t *x, size_t b, int8_t *y, void *scratch) {
    const size_t width = s8_width(model);
    int16_t *x16 = (int16_t *)scratch;
    int8_t *buffers[2];
    unsigned l;
    if (s8_streams(model)) {
        const size_t latent_dim = rv_model_latent_dim(model), output_size = rv_model_output_size(model);
        size_t k, j;
        for (k = 0; k < b; k++) {
            const int16_t *q = rv_s8_rows4_decode(model, x + k * latent_dim, x16, width, NULL);
            for (j = 0; j < output_size; j++) {
                y[k * output_size + j] = (int8_t)q[j];
            }
        }
        return;
    }
    buffers[0] = (int8_t *)(x16 + RV_DECODE_BLOCK * width);
    buffers[1] = buffers[0] + RV_DECODE_BLOCK * width;
    for (l = 0; l < model->n_layers; l++) {
        int8_t *out = (l + 1u == model->n_layers) ? y : buffers[l % 2u];
        rv_dense_s8(&model->layers[l], x, b, out, x16);
        x = out;
    }
}

rv_status rv_decode_s8(const rv_model *model, const int8_t *latents, size_t n, int8_t *outputs,
                       void *scratch, size_t scratch_len) {
    const rv_status status = check_call(model, latents, n, outputs, scratch, scratch_len);
    size_t start;
    if (status != RV_OK) {
        return status;
    }
    if (model->dtype != RV_S8) {
        return RV_ERR_DTYPE;
    }
    for (start = 0; start < n; start += RV_DECODE_BLOCK) {
        const size_t b = RV_MIN((size_t)RV_DECODE_BLOCK, n - start);
        int8_t *out = outputs + start * rv_model_output_size(model);
        const int8_t *table = model->logistic_table;
        size_t k;
        decode_s8_block(model, latents + start * rv_model_latent_dim(model), b, out, scratch);
        for (k = 0; k < b * rv_model_output_size(model); k++) {
            out[k] = RV_FLASH_S8(&table[(uint8_t)(out[k] + 128)]);
        }
    }
    return RV_OK;
}

/* TFLite's QUANTIZE: round(x / scale) + zero_point, clamped to int8. */
static int8_t quantize(float x, rv_quant q) {
    float r = roundf(x / q.scale);
    int32_t v;
    r = r < 1000.0f ? r : 1000.0f; /* also maps NaN away from the int conversion */
    r = r > -1000.0f ? r : -1000.0f;
    v = (int32_t)r + q.zero_point;
    return (int8_t)RV_MIN(RV_MAX(v, -128), 127);
}

static rv_status decode_s8_float(const rv_model *model, const float *latents, size_t n, float *outputs,
                                 void *scratch) {
    const size_t latent_dim = rv_model_latent_dim(model);
    const size_t output_size = rv_model_output_size(model);
    const size_t width = s8_width(model);
    int8_t *block_out = (int8_t *)((int16_t *)scratch + RV_DECODE_BLOCK * width) + 2u * RV_DECODE_BLOCK * width;
    const int8_t *logistic = model->logistic_table + 128; /* indexed by the int8 input */
    const int32_t zero_point = model->output_quant.zero_point;
    const float scale = model->output_quant.scale;
    int8_t q_in[RV_DECODE_BLOCK * RV_MAX_LATENT];
    size_t start, k;
    for (start = 0; start < n; start += RV_DECODE_BLOCK) {
        const size_t b = RV_MIN((size_t)RV_DECODE_BLOCK, n - start);
        float *out = outputs + start * output_size;
        for (k = 0; k < b * latent_dim; k++) {
            q_in[k] = quantize(latents[start * latent_dim + k], model->input_quant);
        }
        if (s8_streams(model)) { /* the kernel applies LOGISTIC and DEQUANTIZE (its table) */
            for (k = 0; k < b; k++) {
                rv_s8_rows4_decode(model, q_in + k * latent_dim, (int16_t *)scratch, width, out + k * output_size);
            }
            continue;
        }
        decode_s8_block(model, q_in, b, block_out, scratch);
        /* LOGISTIC, then DEQUANTIZE (an x86 fast path may take them) */
        for (k = rv_logistic_dequantize_fast(model, block_out, b * output_size, out); k < b * output_size; k++) {
            out[k] = (float)(RV_FLASH_S8(&logistic[block_out[k]]) - zero_point) * scale;
        }
    }
    return RV_OK;
}

rv_status rv_decode(const rv_model *model, const float *latents, size_t n, float *outputs, void *scratch,
                    size_t scratch_len) {
    const rv_status status = check_call(model, latents, n, outputs, scratch, scratch_len);
    if (status != RV_OK) {
        return status;
    }
    return model->dtype == RV_S8 ? decode_s8_float(model, latents, n, outputs, scratch)
                                 : decode_float(model, latents, n, outputs, scratch);
}
