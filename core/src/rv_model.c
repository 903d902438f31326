/* The model descriptor: derived sizes, the consistency check every entry point relies on, and the
 * repacking of float weights into the IN_OUT layout (int8 into RV_LAYOUT_S8_ROWS4 where it pays). */
#include <string.h>

#include "rv_internal.h"

uint16_t rv_model_latent_dim(const rv_model *model) {
    return (model != NULL && model->n_layers > 0) ? model->layers[0].in : 0;
}

uint16_t rv_model_output_size(const rv_model *model) {
    return (model != NULL && model->n_layers > 0) ? model->layers[model->n_layers - 1].out : 0;
}

uint16_t rv_model_max_hidden(const rv_model *model) {
    uint16_t width = 0;
    unsigned l;
    for (l = 0; l + 1 < model->n_layers; l++) {
        width = RV_MAX(width, model->layers[l].out);
    }
    return width;
}

uint16_t rv_model_max_width(const rv_model *model) {
    uint16_t width = 0;
    unsigned l;
    for (l = 0; l < model->n_layers; l++) {
        width = RV_MAX(width, RV_MAX(model->layers[l].in, model->layers[l].out));
    }
    return width;
}

static int aligned(const void *p, size_t alignment) { return ((uintptr_t)p % alignment) == 0; }

static int valid_zero_point(int32_t zero_point) { return zero_point >= -128 && zero_point <= 127; }

static rv_status check_float_layer(const rv_layer *layer) {
    if ((layer->dtype != RV_F32 && layer->dtype != RV_F16) ||
        (layer->bias_dtype != RV_F32 && layer->bias_dtype != RV_F16)) {
        return RV_ERR_MODEL;
    }
    if (!aligned(layer->weights, layer->dtype == RV_F32 ? 4 : 2) ||
        !aligned(layer->bias, layer->bias_dtype == RV_F32 ? 4 : 2)) {
        return RV_ERR_ALIGNMENT;
    }
    return RV_OK;
}

static rv_status check_s8_layer(const rv_layer *layer, const rv_layer *previous) {
    unsigned k;
    int invalid = 0;
    if (layer->dtype != RV_S8 || layer->multipliers == NULL || layer->shifts == NULL ||
        (layer->n_multipliers != 1 && layer->n_multipliers != layer->out)) {
        return RV_ERR_MODEL;
    }
    if (!aligned(layer->bias, 4) || !aligned(layer->multipliers, 4) || !aligned(layer->shifts, 4) ||
        (layer->layout == RV_LAYOUT_S8_ROWS4 && !aligned(layer->weights, 4))) {
        return RV_ERR_ALIGNMENT;
    }
    /* every decode checks the model: one pass without early exit, which compilers vectorise */
    for (k = 0; k < layer->n_multipliers; k++) {
        invalid |= (layer->multipliers[k] < 0) | (layer->shifts[k] < -31) | (layer->shifts[k] > 30);
    }
    if (invalid) {
        return RV_ERR_QUANTIZATION;
    }
    if (!valid_zero_point(layer->input_quant.zero_point) || !valid_zero_point(layer->output_quant.zero_point) ||
        layer->activation_min < -128 || layer->activation_max > 127 ||
        layer->activation_min > layer->activation_max) {
        return RV_ERR_QUANTIZATION;
    }
    if (previous != NULL && previous->output_quant.zero_point != layer->input_quant.zero_point) {
        return RV_ERR_MODEL;
    }
    return RV_OK;
}

rv_status rv_model_check(const rv_model *model) {
    unsigned l;
    int any_f16 = 0;
    if (model == NULL) {
        return RV_ERR_ARGUMENT;
    }
    if (model->n_layers == 0 || model->dtype > RV_S8) {
        return RV_ERR_MODEL;
    }
    if (model->n_layers > RV_MAX_LAYERS) {
        return RV_ERR_LIMIT_LAYERS;
    }
    if (model->layers[0].in > RV_MAX_LATENT) {
        return RV_ERR_LIMIT_WIDTH;
    }
    for (l = 0; l < model->n_layers; l++) {
        const rv_layer *layer = &model->layers[l];
        rv_status status;
        if (layer->in == 0 || layer->out == 0 || layer->weights == NULL || layer->activation > RV_ACT_RELU ||
            layer->layout > (model->dtype == RV_S8 ? RV_LAYOUT_S8_ROWS4 : RV_LAYOUT_IN_OUT)) {
            return RV_ERR_MODEL;
        }
        if (layer->in > RV_MAX_WIDTH || layer->out > RV_MAX_WIDTH) {
            return RV_ERR_LIMIT_WIDTH;
        }
        if (l > 0 && layer->in != model->layers[l - 1].out) {
            return RV_ERR_MODEL;
        }
        if (model->dtype == RV_S8) {
            status = check_s8_layer(layer, l > 0 ? &model->layers[l - 1] : NULL);
        } else {
            status = check_float_layer(layer);
            any_f16 |= layer->dtype == RV_F16;
        }
        if (status != RV_OK) {
            return status;
        }
    }
    if (model->dtype != RV_S8 && model->dtype != (any_f16 ? RV_F16 : RV_F32)) {
        return RV_ERR_MODEL;
    }
    if (model->dtype == RV_S8) {
        if (model->logistic_table == NULL) {
            return RV_ERR_MODEL;
        }
        if (!(model->input_quant.scale > 0.0f) || !(model->output_quant.scale > 0.0f) ||
            !valid_zero_point(model->input_quant.zero_point) || !valid_zero_point(model->output_quant.zero_point)) {
            return RV_ERR_QUANTIZATION;
        }
        if (model->input_quant.zero_point != model->layers[0].input_quant.zero_point) {
            return RV_ERR_MODEL;
        }
    }
    return rv_metadata_check(&model->metadata, rv_model_latent_dim(model), rv_model_output_size(model));
}

rv_status rv_model_verify(rv_model *model) {
    const rv_status status = rv_model_check(model);
    if (status == RV_OK) {
        model->verified = RV_MODEL_VERIFIED;
    }
    return status;
}

void rv_pack_s8_rows4(const rv_layer *layer, int16_t *packed) {
    const size_t in = layer->in, out = layer->out, pairs = rv_s8_rows4_in(layer) / 2;
    const int8_t *w = (const int8_t *)layer->weights;
    size_t j, i;
    memset(packed, 0, rv_s8_rows4_in(layer) * rv_s8_rows4_out(layer) * sizeof *packed);
    for (j = 0; j < out; j++) {
        for (i = 0; i < in; i++) {
            packed[((j / 4 * pairs + i / 2) * 4 + j % 4) * 2 + i % 2] = w[j * in + i];
        }
    }
}

/* rv_s8_rows4_consts's stream for a layer (header RV_S8_CONSTS, or 0 where the layer does not qualify). */
static void pack_s8_consts(const rv_layer *layer, int32_t *consts) {
    const size_t out = layer->out, rows = rv_s8_rows4_out(layer);
    const int32_t *bias = (const int32_t *)layer->bias;
    const int32_t zero_point = layer->output_quant.zero_point;
    size_t j;
    int usable = layer->activation_min == -128 && layer->activation_max == 127;
    memset(consts, 0, rv_s8_consts_words(layer) * sizeof *consts);
    for (j = 0; j < rows; j++) {
        const size_t k = layer->n_multipliers > 1 ? RV_MIN(j, out - 1) : 0;
        int32_t *group = consts + 1 + j / 4 * 16;
        if (j < out) {
            group[j % 4] = bias != NULL ? bias[j] : 0;
        }
        usable &= rv_s8_row_consts(layer->multipliers[k], layer->shifts[k], zero_point, group + 4 + (j % 4) * 3);
    }
    consts[0] = usable ? (int32_t)RV_S8_CONSTS : 0;
}

/* Bytes of a layer's repacked weights (0: it keeps its own). */
static size_t repacked_bytes(const rv_layer *layer) {
    if (layer->layout != RV_LAYOUT_OUT_IN) {
        return 0;
    }
    if (layer->dtype == RV_S8) {
        return RV_REPACK_S8 ? rv_s8_rows4_in(layer) * rv_s8_rows4_out(layer) * sizeof(int16_t) +
                                  rv_s8_consts_words(layer) * sizeof(int32_t)
                            : 0;
    }
    return ((size_t)layer->in * layer->out * (layer->dtype == RV_F32 ? 4u : 2u) + 3u) & ~(size_t)3u;
}

rv_status rv_model_repack(const rv_model *src, rv_model *dst, void *mem, size_t mem_len, size_t *needed) {
    size_t total = 0;
    unsigned l;
    rv_status status;
    if (src == NULL || dst == NULL || needed == NULL) {
        return RV_ERR_ARGUMENT;
    }
    status = rv_model_ready(src);
    if (status != RV_OK) {
        return status;
    }
    for (l = 0; l < src->n_layers; l++) {
        total += repacked_bytes(&src->layers[l]);
    }
    *needed = total;
    if (total > 0 && (mem == NULL || mem_len < total)) {
        return RV_ERR_BUFFER_TOO_SMALL;
    }
    if (!aligned(mem, 4)) {
        return RV_ERR_ALIGNMENT;
    }
    *dst = *src;
    dst->verified = RV_MODEL_VERIFIED;
    for (l = 0; l < src->n_layers; l++) {
        const rv_layer *layer = &src->layers[l];
        rv_layer *out_layer = &dst->layers[l];
        const size_t in = layer->in;
        const size_t out = layer->out;
        size_t i, j;
        if (repacked_bytes(layer) == 0) {
            continue;
        }
        if (layer->dtype == RV_S8) {
            rv_pack_s8_rows4(layer, (int16_t *)mem);
            pack_s8_consts(layer, (int32_t *)((int16_t *)mem + rv_s8_rows4_in(layer) * rv_s8_rows4_out(layer)));
            out_layer->weights = mem;
            out_layer->layout = RV_LAYOUT_S8_ROWS4;
            mem = (uint8_t *)mem + repacked_bytes(layer);
            continue;
        }
        if (layer->dtype == RV_F32) {
            const float *w = (const float *)layer->weights;
            float *t = (float *)mem;
            for (i = 0; i < in; i++) {
                for (j = 0; j < out; j++) {
                    t[i * out + j] = w[j * in + i];
                }
            }
            mem = t + in * out;
            out_layer->weights = t;
        } else {
            const uint16_t *w = (const uint16_t *)layer->weights;
            uint16_t *t = (uint16_t *)mem;
            for (i = 0; i < in; i++) {
                for (j = 0; j < out; j++) {
                    t[i * out + j] = w[j * in + i];
                }
            }
            mem = t + ((in * out + 1u) & ~(size_t)1u);
            out_layer->weights = t;
        }
        out_layer->layout = RV_LAYOUT_IN_OUT;
    }
    return RV_OK;
}
