/* The model descriptor: derived sizes, the consistency check every entry point relies on, and the
 * repacking of float weights into the IN_OUT layout (int8 into RV_LAYOUT_S8_ROWS4 streams where the
 * Cortex-M7 DSP kernel runs them). */
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

/* Each layer's input is the previous layer's output (rv_model_check): the latent and the outputs. */
uint16_t rv_model_max_width(const rv_model *model) {
    uint16_t width = model->layers[0].in;
    unsigned l;
    for (l = 0; l < model->n_layers; l++) {
        width = RV_MAX(width, model->layers[l].out);
    }
    return width;
}

/* A 4-byte value after a char: its offset is the alignment the platform needs (4 on ARM and x86, 1 on
   AVR, where the compiler aligns no array beyond a byte). */
struct rv_align4 {
    char c;
    int32_t v;
};

static int aligned(const void *p, size_t alignment) {
    return ((uintptr_t)p % RV_MIN(alignment, offsetof(struct rv_align4, v))) == 0;
}

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
    if (!aligned(layer->bias, 4) || !aligned(layer->multipliers, 4) || !aligned(layer->shifts, 4)) {
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
            layer->layout > (model->dtype == RV_S8 ? RV_LAYOUT_OUT_IN : RV_LAYOUT_IN_OUT)) {
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

rv_status rv_model_ready(const rv_model *model) {
    return (model != NULL && model->verified == RV_MODEL_VERIFIED) ? RV_OK : rv_model_check(model);
}

rv_status rv_model_verify(rv_model *model) {
    const rv_status status = rv_model_check(model);
    if (status == RV_OK) {
        model->verified = RV_MODEL_VERIFIED;
    }
    return status;
}

/* 1 when the DSP kernel runs the layer (the conditions in rv_internal.h). */
static int s8_layer_fits(const rv_layer *layer, int last) {
    const int32_t *bias = (const int32_t *)layer->bias;
    size_t j;
    int fits = layer->layout == RV_LAYOUT_OUT_IN && layer->in <= 16384 && layer->activation_min == -128 &&
               layer->activation_max == 127 && (!last || layer->out % 4u == 0);
    for (j = 0; j < layer->out; j++) {
        const int32_t shift = layer->shifts[layer->n_multipliers > 1 ? j : 0];
        fits &= (uint32_t)(shift + 22) < 22u &&
                (bias == NULL || (uint32_t)bias[j] + ((uint32_t)1 << 29) < ((uint32_t)1 << 30));
    }
    return fits;
}

static size_t s8_stream_words(const rv_layer *layer) {
    return ((size_t)layer->out + 3u) / 4u * rv_s8_group_words(layer);
}

/* Bytes of an int8 model's streams and probabilities table; 0 without the kernel or when a layer
   does not fit. */
static size_t s8_repacked_bytes(const rv_model *model) {
    size_t total = 256u * sizeof(float);
    unsigned l;
    if (!RV_REPACK_S8) {
        return 0;
    }
    for (l = 0; l < model->n_layers; l++) {
        if (model->dtype != RV_S8 || !s8_layer_fits(&model->layers[l], l + 1u == model->n_layers)) {
            return 0;
        }
        total += s8_stream_words(&model->layers[l]) * sizeof(uint32_t);
    }
    return total;
}

/* A layer's stream (rv_internal.h); table: the probability of input 0 for the last layer, else NULL.
   int32 arithmetic suffices: s8_layer_fits bounds every bias, so |b'| < 2^31. */
static void write_s8_stream(const rv_layer *layer, uint32_t *stream, const float *table) {
    const size_t in = layer->in, out = layer->out, pairs = rv_s8_pairs(layer), rows = (out + 3u) & ~(size_t)3u;
    const int8_t *w = (const int8_t *)layer->weights;
    const int32_t *bias = (const int32_t *)layer->bias;
    size_t j, i;
    memset(stream, 0, s8_stream_words(layer) * sizeof *stream);
    for (j = 0; j < rows; j++) {
        uint32_t *group = stream + j / 4u * rv_s8_group_words(layer), *consts = group + 4u + pairs * 4u;
        uint32_t *row = consts + 1u + 3u * (j % 4u);
        const size_t k = layer->n_multipliers > 1 ? RV_MIN(j, out - 1u) : 0;
        int32_t b = (bias != NULL && j < out) ? bias[j] : 0;
        for (i = 0; i < in && j < out; i++) {
            b -= layer->input_quant.zero_point * w[j * in + i];
            group[4u + i / 2u * 4u + j % 4u] |= (uint32_t)(uint16_t)(2 * w[j * in + i]) << (16u * (i % 2u));
        }
        group[j % 4u] = (uint32_t)(2 * b);
        consts[0] = (uint32_t)((rows - 1u - j) / 4u); /* groups left */
        row[0] = (uint32_t)layer->multipliers[k];
        row[1] = (uint32_t)rv_s8_addend(-layer->shifts[k], layer->output_quant.zero_point);
        row[2] = (uint32_t)-layer->shifts[k];
        consts[13] = (uint32_t)(uintptr_t)table;
    }
}

/* The streams, then the probabilities table (LOGISTIC, then DEQUANTIZE, as decode_s8_float computes
   them), at mem (bytes: s8_repacked_bytes). */
static void write_s8_streams(const rv_model *src, rv_model *dst, uint32_t *mem, size_t bytes) {
    float *table = (float *)((uint8_t *)mem + bytes) - 256;
    unsigned l, v;
    for (l = 0; l < src->n_layers; l++) {
        write_s8_stream(&src->layers[l], mem, l + 1u == src->n_layers ? table + 128 : NULL);
        dst->layers[l].weights = mem;
        dst->layers[l].layout = RV_LAYOUT_S8_ROWS4;
        mem += s8_stream_words(&src->layers[l]);
    }
    for (v = 0; v < 256; v++) {
        table[v] = (float)(src->logistic_table[v] - src->output_quant.zero_point) * src->output_quant.scale;
    }
}

/* Bytes of a float layer's repacked weights (0: it keeps its own). */
static size_t repacked_bytes(const rv_layer *layer) {
    if (layer->layout != RV_LAYOUT_OUT_IN || layer->dtype == RV_S8) {
        return 0;
    }
    return ((size_t)layer->in * layer->out * (layer->dtype == RV_F32 ? 4u : 2u) + 3u) & ~(size_t)3u;
}

rv_status rv_model_repack(const rv_model *src, rv_model *dst, void *mem, size_t mem_len, size_t *needed) {
    size_t total = 0, s8_bytes = 0;
    unsigned l;
    rv_status status;
    if (src == NULL || dst == NULL || needed == NULL) {
        return RV_ERR_ARGUMENT;
    }
    status = rv_model_ready(src);
    if (status != RV_OK) {
        return status;
    }
    total = s8_bytes = s8_repacked_bytes(src);
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
    if (s8_bytes > 0) { /* an int8 model: no float layers */
        write_s8_streams(src, dst, (uint32_t *)mem, s8_bytes);
        return RV_OK;
    }
    for (l = 0; l < src->n_layers; l++) {
        const rv_layer *layer = &src->layers[l];
        rv_layer *out_layer = &dst->layers[l];
        /* float32 or float16 weights: one transpose for both element sizes */
        const size_t in = layer->in, out = layer->out, size = layer->dtype == RV_F32 ? 4u : 2u;
        const uint8_t *w = (const uint8_t *)layer->weights;
        uint8_t *t = (uint8_t *)mem;
        size_t i, j;
        if (repacked_bytes(layer) == 0) {
            continue;
        }
        for (i = 0; i < in; i++) {
            for (j = 0; j < out; j++) {
                memcpy(t + (i * out + j) * size, w + (j * in + i) * size, size);
            }
        }
        mem = t + repacked_bytes(layer);
        out_layer->weights = t;
        out_layer->layout = RV_LAYOUT_IN_OUT;
    }
    return RV_OK;
}
