/* Reader for the subset of .tflite files the exporter (and the original xen exporter) writes: one
 * subgraph of FULLY_CONNECTED layers (fused NONE/RELU) ending in LOGISTIC, in float32, float16 weights
 * behind DEQUANTIZE, or int8 with int8 input/output; plus the xen metadata.
 *
 * A .tflite file is a FlatBuffer. Every table, vector and scalar is read through the fb_* helpers,
 * which check each offset against the file length before touching a byte: a malformed file returns a
 * status, it is never read out of bounds. Field numbers follow tensorflow/lite/schema/schema.fbs.
 */
#include <math.h>
#include <string.h>

#include "rv_internal.h"

/* ---- bounds-checked FlatBuffer access ---- */

typedef struct fb_file {
    const uint8_t *data;
    size_t len;
} fb_file;

typedef struct fb_table {
    size_t pos;       /* table start */
    size_t vtable;    /* vtable start */
    uint16_t n_slots; /* fields the vtable describes */
} fb_table;

typedef struct fb_vector {
    size_t pos; /* first element */
    uint32_t count;
} fb_vector;

static int fb_has(const fb_file *f, size_t pos, size_t size) { return pos <= f->len && size <= f->len - pos; }

static uint16_t fb_u16(const fb_file *f, size_t pos) {
    return (uint16_t)(f->data[pos] | (f->data[pos + 1] << 8));
}

static uint32_t fb_u32(const fb_file *f, size_t pos) {
    return (uint32_t)f->data[pos] | ((uint32_t)f->data[pos + 1] << 8) | ((uint32_t)f->data[pos + 2] << 16) |
           ((uint32_t)f->data[pos + 3] << 24);
}

static rv_status fb_table_at(const fb_file *f, size_t pos, fb_table *t) {
    int64_t vtable;
    uint16_t vtable_len;
    if (!fb_has(f, pos, 4)) {
        return RV_ERR_OFFSET;
    }
    vtable = (int64_t)pos - (int64_t)(int32_t)fb_u32(f, pos);
    if (vtable < 0 || !fb_has(f, (size_t)vtable, 4)) {
        return RV_ERR_OFFSET;
    }
    vtable_len = fb_u16(f, (size_t)vtable);
    if (vtable_len < 4 || (vtable_len & 1u) || !fb_has(f, (size_t)vtable, vtable_len)) {
        return RV_ERR_OFFSET;
    }
    t->pos = pos;
    t->vtable = (size_t)vtable;
    t->n_slots = (uint16_t)((vtable_len - 4) / 2);
    return RV_OK;
}

/* Position of field `slot` holding `size` bytes, or 0 when the field is absent (default value). */
static rv_status fb_field(const fb_file *f, const fb_table *t, unsigned slot, size_t size, size_t *pos) {
    uint16_t offset;
    *pos = 0;
    if (slot >= t->n_slots) {
        return RV_OK;
    }
    offset = fb_u16(f, t->vtable + 4 + 2 * slot);
    if (offset == 0) {
        return RV_OK;
    }
    if (t->pos > f->len || offset > f->len - t->pos || !fb_has(f, t->pos + offset, size)) {
        return RV_ERR_OFFSET;
    }
    *pos = t->pos + offset;
    return RV_OK;
}

static rv_status fb_scalar_u32(const fb_file *f, const fb_table *t, unsigned slot, uint32_t fallback,
                               uint32_t *value) {
    size_t pos;
    const rv_status status = fb_field(f, t, slot, 4, &pos);
    *value = (status == RV_OK && pos != 0) ? fb_u32(f, pos) : fallback;
    return status;
}

static rv_status fb_scalar_u8(const fb_file *f, const fb_table *t, unsigned slot, uint8_t fallback,
                              uint8_t *value) {
    size_t pos;
    const rv_status status = fb_field(f, t, slot, 1, &pos);
    *value = (status == RV_OK && pos != 0) ? f->data[pos] : fallback;
    return status;
}

/* Follows the uoffset stored at pos. */
static rv_status fb_deref(const fb_file *f, size_t pos, size_t *target) {
    const uint32_t offset = fb_u32(f, pos);
    if (offset > f->len - pos) {
        return RV_ERR_OFFSET;
    }
    *target = pos + offset;
    return RV_OK;
}

/* Sub-table in field `slot`; *present = 0 when absent. */
static rv_status fb_subtable(const fb_file *f, const fb_table *t, unsigned slot, fb_table *sub, int *present) {
    size_t pos, target;
    rv_status status = fb_field(f, t, slot, 4, &pos);
    *present = 0;
    if (status != RV_OK || pos == 0) {
        return status;
    }
    status = fb_deref(f, pos, &target);
    if (status != RV_OK) {
        return status;
    }
    *present = 1;
    return fb_table_at(f, target, sub);
}

/* Vector in field `slot` of elements of elem_size bytes (empty when absent). */
static rv_status fb_vector_field(const fb_file *f, const fb_table *t, unsigned slot, size_t elem_size,
                                 fb_vector *v) {
    size_t pos, target;
    rv_status status = fb_field(f, t, slot, 4, &pos);
    v->pos = 0;
    v->count = 0;
    if (status != RV_OK || pos == 0) {
        return status;
    }
    status = fb_deref(f, pos, &target);
    if (status != RV_OK) {
        return status;
    }
    if (!fb_has(f, target, 4)) {
        return RV_ERR_OFFSET;
    }
    v->count = fb_u32(f, target);
    v->pos = target + 4;
    if ((size_t)v->count > (f->len - v->pos) / elem_size) {
        return RV_ERR_OFFSET;
    }
    return RV_OK;
}

/* Table element i of a vector of tables. */
static rv_status fb_vector_table(const fb_file *f, const fb_vector *v, uint32_t i, fb_table *t) {
    size_t target;
    rv_status status;
    if (i >= v->count) {
        return RV_ERR_GRAPH;
    }
    status = fb_deref(f, v->pos + 4 * (size_t)i, &target);
    return status != RV_OK ? status : fb_table_at(f, target, t);
}

static int32_t fb_vector_i32(const fb_file *f, const fb_vector *v, uint32_t i) {
    return (int32_t)fb_u32(f, v->pos + 4 * (size_t)i);
}

/* ---- the TFLite schema subset ---- */

enum {
    MODEL_VERSION = 0,
    MODEL_OPERATOR_CODES = 1,
    MODEL_SUBGRAPHS = 2,
    MODEL_BUFFERS = 4,
    MODEL_METADATA = 6,
    SUBGRAPH_TENSORS = 0,
    SUBGRAPH_INPUTS = 1,
    SUBGRAPH_OUTPUTS = 2,
    SUBGRAPH_OPERATORS = 3,
    TENSOR_SHAPE = 0,
    TENSOR_TYPE = 1,
    TENSOR_BUFFER = 2,
    TENSOR_QUANTIZATION = 4,
    TENSOR_SPARSITY = 6,
    QUANT_SCALE = 2,
    QUANT_ZERO_POINT = 3,
    QUANT_DETAILS_TYPE = 4,
    QUANT_DIMENSION = 6,
    OPCODE_DEPRECATED_BUILTIN = 0,
    OPCODE_BUILTIN = 3,
    OPERATOR_OPCODE_INDEX = 0,
    OPERATOR_INPUTS = 1,
    OPERATOR_OUTPUTS = 2,
    OPERATOR_OPTIONS_TYPE = 3,
    OPERATOR_OPTIONS = 4,
    FC_OPTIONS_ACTIVATION = 0,
    FC_OPTIONS_WEIGHTS_FORMAT = 1,
    BUFFER_DATA = 0,
    BUFFER_OFFSET = 1,
    BUFFER_SIZE = 2,
    METADATA_NAME = 0,
    METADATA_BUFFER = 1
};

enum { TFLITE_FLOAT32 = 0, TFLITE_FLOAT16 = 1, TFLITE_INT32 = 2, TFLITE_INT8 = 9 };
enum { OP_DEQUANTIZE = 6, OP_FULLY_CONNECTED = 9, OP_LOGISTIC = 14 };
enum { OPTIONS_FULLY_CONNECTED = 8 };
enum { TFLITE_SCHEMA_VERSION = 3 };

/* What the reader keeps of one tensor. */
typedef struct tensor_info {
    uint8_t type;
    uint32_t n_dims;
    int32_t dims[4];
    const uint8_t *data; /* constant data, NULL for activations */
    size_t data_len;
    uint32_t n_scales;
    float scale;         /* first scale */
    int32_t zero_point;  /* first zero point */
    int32_t quant_dimension;
    fb_vector scales;    /* all scales (per-channel) */
    fb_vector zero_points;
} tensor_info;

typedef struct reader {
    fb_file f;
    fb_vector tensors;
    fb_vector buffers;
    fb_vector opcodes;
    /* DEQUANTIZE ops seen so far: output tensor -> float16 constant input tensor */
    int32_t dequantized_out[2 * RV_MAX_LAYERS];
    int32_t dequantized_in[2 * RV_MAX_LAYERS];
    unsigned n_dequantized;
    /* caller's aux memory, handed out 4-byte aligned; `used` counts even what did not fit */
    uint8_t *aux;
    size_t aux_len;
    size_t used;
} reader;

static void *aux_take(reader *r, size_t bytes) {
    const size_t start = r->used;
    r->used += (bytes + 3u) & ~(size_t)3u;
    if (r->aux == NULL || r->used > r->aux_len) {
        return NULL;
    }
    return r->aux + start;
}

static rv_status buffer_data(reader *r, uint32_t index, const uint8_t **data, size_t *len) {
    fb_table buffer;
    fb_vector bytes;
    rv_status status = fb_vector_table(&r->f, &r->buffers, index, &buffer);
    uint32_t offset_lo = 0, size_lo = 0;
    size_t pos;
    *data = NULL;
    *len = 0;
    if (status != RV_OK) {
        return status == RV_ERR_GRAPH ? RV_ERR_WEIGHTS : status;
    }
    status = fb_vector_field(&r->f, &buffer, BUFFER_DATA, 1, &bytes);
    if (status != RV_OK) {
        return status;
    }
    if (bytes.count > 0) {
        *data = r->f.data + bytes.pos;
        *len = bytes.count;
        return RV_OK;
    }
    /* Large models keep buffers outside the FlatBuffer: (offset, size) from the file start (uint64
       fields; anything beyond 32 bits cannot be inside a buffer this reader can hold). */
    status = fb_field(&r->f, &buffer, BUFFER_OFFSET, 8, &pos);
    if (status != RV_OK) {
        return status;
    }
    if (pos != 0) {
        if (fb_u32(&r->f, pos + 4) != 0) {
            return RV_ERR_OFFSET;
        }
        offset_lo = fb_u32(&r->f, pos);
    }
    status = fb_field(&r->f, &buffer, BUFFER_SIZE, 8, &pos);
    if (status != RV_OK) {
        return status;
    }
    if (pos != 0) {
        if (fb_u32(&r->f, pos + 4) != 0) {
            return RV_ERR_OFFSET;
        }
        size_lo = fb_u32(&r->f, pos);
    }
    if (offset_lo > 1 && size_lo > 0) {
        if (!fb_has(&r->f, offset_lo, size_lo)) {
            return RV_ERR_OFFSET;
        }
        *data = r->f.data + offset_lo;
        *len = size_lo;
    }
    return RV_OK;
}

static rv_status read_tensor(reader *r, int32_t index, tensor_info *info) {
    fb_table tensor, quant, sparsity;
    fb_vector shape;
    uint32_t buffer_index, k;
    uint8_t details_type;
    int present;
    rv_status status;
    memset(info, 0, sizeof(*info));
    if (index < 0 || (uint32_t)index >= r->tensors.count) {
        return RV_ERR_GRAPH;
    }
    status = fb_vector_table(&r->f, &r->tensors, (uint32_t)index, &tensor);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, &tensor, TENSOR_SHAPE, 4, &shape);
    }
    if (status == RV_OK) {
        status = fb_scalar_u8(&r->f, &tensor, TENSOR_TYPE, TFLITE_FLOAT32, &info->type);
    }
    if (status == RV_OK) {
        status = fb_scalar_u32(&r->f, &tensor, TENSOR_BUFFER, 0, &buffer_index);
    }
    if (status == RV_OK) {
        status = fb_subtable(&r->f, &tensor, TENSOR_SPARSITY, &sparsity, &present);
        if (status == RV_OK && present) {
            status = RV_ERR_TENSOR_TYPE;
        }
    }
    if (status != RV_OK) {
        return status;
    }
    if (shape.count > 4) {
        return RV_ERR_SHAPE;
    }
    info->n_dims = shape.count;
    for (k = 0; k < shape.count; k++) {
        info->dims[k] = fb_vector_i32(&r->f, &shape, k);
        if (info->dims[k] <= 0 || info->dims[k] > RV_MAX_WIDTH * 4) {
            return RV_ERR_SHAPE;
        }
    }
    /* buffer 0 is the empty sentinel: an activation tensor */
    if (buffer_index != 0) {
        status = buffer_data(r, buffer_index, &info->data, &info->data_len);
        if (status != RV_OK) {
            return status;
        }
    }
    status = fb_subtable(&r->f, &tensor, TENSOR_QUANTIZATION, &quant, &present);
    if (status != RV_OK || !present) {
        return status;
    }
    status = fb_vector_field(&r->f, &quant, QUANT_SCALE, 4, &info->scales);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, &quant, QUANT_ZERO_POINT, 8, &info->zero_points);
    }
    if (status == RV_OK) {
        status = fb_scalar_u8(&r->f, &quant, QUANT_DETAILS_TYPE, 0, &details_type);
        if (status == RV_OK && details_type != 0) {
            status = RV_ERR_QUANTIZATION;
        }
    }
    if (status == RV_OK) {
        status = fb_scalar_u32(&r->f, &quant, QUANT_DIMENSION, 0, (uint32_t *)&info->quant_dimension);
    }
    if (status != RV_OK) {
        return status;
    }
    info->n_scales = info->scales.count;
    if (info->n_scales > 0) {
        uint32_t bits = fb_u32(&r->f, info->scales.pos);
        memcpy(&info->scale, &bits, sizeof bits);
    }
    if (info->zero_points.count > 0) {
        /* int64 zero point: only values that fit int8 are meaningful here */
        const uint32_t lo = fb_u32(&r->f, info->zero_points.pos);
        const uint32_t hi = fb_u32(&r->f, info->zero_points.pos + 4);
        const int32_t value = (int32_t)lo;
        info->zero_point = (hi == (value < 0 ? 0xffffffffu : 0u)) ? value : INT32_MAX;
    }
    return RV_OK;
}

static uint32_t tensor_size(const tensor_info *t) {
    uint32_t size = 1, k;
    for (k = 0; k < t->n_dims; k++) {
        size *= (uint32_t)t->dims[k];
        if (size > RV_MAX_WIDTH * RV_MAX_WIDTH) {
            return 0;
        }
    }
    return size;
}

static int valid_quant(const tensor_info *t) {
    return t->n_scales >= 1 && t->zero_points.count >= 1 && t->scale > 0.0f && t->scale < 1e30f &&
           t->zero_point >= -128 && t->zero_point <= 127;
}

static rv_quant quant_of(const tensor_info *t) {
    rv_quant q;
    q.scale = t->scale;
    q.zero_point = t->zero_point;
    return q;
}

/* Constant data of a weight/bias tensor, looking through a DEQUANTIZE of a float16 constant. */
static rv_status constant_tensor(reader *r, int32_t index, tensor_info *info, uint8_t *dtype) {
    unsigned k;
    rv_status status;
    for (k = 0; k < r->n_dequantized; k++) {
        if (r->dequantized_out[k] == index) {
            index = r->dequantized_in[k];
            break;
        }
    }
    status = read_tensor(r, index, info);
    if (status != RV_OK) {
        return status;
    }
    if (info->data == NULL) {
        return RV_ERR_WEIGHTS;
    }
    switch (info->type) {
    case TFLITE_FLOAT32: *dtype = RV_F32; break;
    case TFLITE_FLOAT16: *dtype = RV_F16; break;
    case TFLITE_INT8: *dtype = RV_S8; break;
    case TFLITE_INT32: *dtype = RV_S8; break; /* int8 biases */
    default: return RV_ERR_TENSOR_TYPE;
    }
    return RV_OK;
}

static size_t dtype_bytes(uint8_t tflite_type) {
    switch (tflite_type) {
    case TFLITE_FLOAT32: return 4;
    case TFLITE_INT32: return 4;
    case TFLITE_FLOAT16: return 2;
    default: return 1;
    }
}

/* Requantisation constants of an int8 layer, as TFLite-Micro's FullyConnected Prepare computes them. */
static rv_status s8_multipliers(reader *r, rv_layer *layer, const tensor_info *input, const tensor_info *weights,
                                const tensor_info *output, uint8_t activation) {
    const uint32_t n = weights->n_scales;
    int32_t *multipliers, *shifts;
    uint32_t k;
    if (!valid_quant(input) || !valid_quant(output) || n == 0 || (n != 1 && n != layer->out) ||
        weights->zero_points.count != n || (n > 1 && weights->quant_dimension != 0)) {
        return RV_ERR_QUANTIZATION;
    }
    multipliers = (int32_t *)aux_take(r, 4u * n);
    shifts = (int32_t *)aux_take(r, 4u * n);
    for (k = 0; k < n; k++) {
        uint32_t bits = fb_u32(&r->f, weights->scales.pos + 4 * (size_t)k);
        const uint32_t zp_lo = fb_u32(&r->f, weights->zero_points.pos + 8 * (size_t)k);
        const uint32_t zp_hi = fb_u32(&r->f, weights->zero_points.pos + 8 * (size_t)k + 4);
        float filter_scale;
        double real;
        int32_t multiplier, shift;
        rv_status status;
        memcpy(&filter_scale, &bits, sizeof bits);
        if (zp_lo != 0 || zp_hi != 0 || !(filter_scale > 0.0f) || !(filter_scale < 1e30f)) {
            return RV_ERR_QUANTIZATION; /* TFLite's int8 weights are symmetric */
        }
        /* per-tensor: the float product of the scales; per-channel: in double (as TFLite-Micro) */
        real = n == 1 ? (double)(input->scale * filter_scale) / (double)output->scale
                      : (double)input->scale * (double)filter_scale / (double)output->scale;
        status = rv_quantize_multiplier(real, &multiplier, &shift);
        if (status != RV_OK) {
            return status;
        }
        if (multipliers != NULL && shifts != NULL) {
            multipliers[k] = multiplier;
            shifts[k] = shift;
        }
    }
    layer->n_multipliers = (uint16_t)n;
    layer->multipliers = multipliers;
    layer->shifts = shifts;
    layer->input_quant = quant_of(input);
    layer->output_quant = quant_of(output);
    /* CalculateActivationRangeQuantized: RELU clamps at the quantised 0.0, the output zero point */
    layer->activation_min = activation == RV_ACT_RELU ? RV_MAX(-128, output->zero_point) : -128;
    layer->activation_max = 127;
    return RV_OK;
}

static rv_status operator_code(reader *r, uint32_t opcode_index, int32_t *builtin) {
    fb_table code;
    uint8_t deprecated;
    uint32_t extended;
    rv_status status = fb_vector_table(&r->f, &r->opcodes, opcode_index, &code);
    if (status == RV_OK) {
        status = fb_scalar_u8(&r->f, &code, OPCODE_DEPRECATED_BUILTIN, 0, &deprecated);
    }
    if (status == RV_OK) {
        status = fb_scalar_u32(&r->f, &code, OPCODE_BUILTIN, 0, &extended);
    }
    if (status != RV_OK) {
        return status;
    }
    /* as TFLite's GetBuiltinCode: the larger of the two fields */
    *builtin = RV_MAX((int32_t)extended, (int32_t)(int8_t)deprecated);
    return RV_OK;
}

/* The fused activation of a FULLY_CONNECTED op (NONE when it has no options). */
static rv_status fc_activation(reader *r, const fb_table *op, uint8_t *activation) {
    fb_table options;
    uint8_t options_type, fused, weights_format;
    int present;
    rv_status status = fb_scalar_u8(&r->f, op, OPERATOR_OPTIONS_TYPE, 0, &options_type);
    *activation = RV_ACT_NONE;
    if (status != RV_OK || options_type == 0) {
        return status;
    }
    if (options_type != OPTIONS_FULLY_CONNECTED) {
        return RV_ERR_OPERATOR;
    }
    status = fb_subtable(&r->f, op, OPERATOR_OPTIONS, &options, &present);
    if (status != RV_OK || !present) {
        return status;
    }
    status = fb_scalar_u8(&r->f, &options, FC_OPTIONS_ACTIVATION, 0, &fused);
    if (status == RV_OK) {
        status = fb_scalar_u8(&r->f, &options, FC_OPTIONS_WEIGHTS_FORMAT, 0, &weights_format);
    }
    if (status != RV_OK) {
        return status;
    }
    if (weights_format != 0) {
        return RV_ERR_WEIGHTS; /* shuffled int8 weights */
    }
    if (fused > RV_ACT_RELU) {
        return RV_ERR_ACTIVATION;
    }
    *activation = fused;
    return RV_OK;
}

/* The last dimension of an activation tensor [1, n] / [n]: n, checking the size is n. */
static rv_status feature_count(const tensor_info *t, uint32_t *n) {
    if (t->n_dims == 0) {
        return RV_ERR_SHAPE;
    }
    *n = (uint32_t)t->dims[t->n_dims - 1];
    return tensor_size(t) == *n ? RV_OK : RV_ERR_SHAPE;
}

static rv_status add_dense(reader *r, rv_model *model, const fb_table *op, int32_t *current) {
    fb_vector inputs, outputs;
    tensor_info x, w, bias, y;
    uint8_t w_dtype, bias_dtype = RV_F32, activation;
    uint32_t in, out;
    rv_layer *layer;
    int has_bias;
    rv_status status = fb_vector_field(&r->f, op, OPERATOR_INPUTS, 4, &inputs);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, op, OPERATOR_OUTPUTS, 4, &outputs);
    }
    if (status == RV_OK) {
        status = fc_activation(r, op, &activation);
    }
    if (status != RV_OK) {
        return status;
    }
    if (inputs.count < 2 || inputs.count > 3 || outputs.count != 1 ||
        fb_vector_i32(&r->f, &inputs, 0) != *current) {
        return RV_ERR_GRAPH;
    }
    if (model->n_layers >= RV_MAX_LAYERS) {
        return RV_ERR_LIMIT_LAYERS;
    }
    layer = &model->layers[model->n_layers];
    has_bias = inputs.count == 3 && fb_vector_i32(&r->f, &inputs, 2) >= 0;
    status = read_tensor(r, *current, &x);
    if (status == RV_OK) {
        status = constant_tensor(r, fb_vector_i32(&r->f, &inputs, 1), &w, &w_dtype);
    }
    if (status == RV_OK && has_bias) {
        status = constant_tensor(r, fb_vector_i32(&r->f, &inputs, 2), &bias, &bias_dtype);
    }
    if (status == RV_OK) {
        status = read_tensor(r, fb_vector_i32(&r->f, &outputs, 0), &y);
    }
    if (status != RV_OK) {
        return status;
    }
    if (w.n_dims != 2 || feature_count(&x, &in) != RV_OK || feature_count(&y, &out) != RV_OK) {
        return RV_ERR_SHAPE;
    }
    if ((uint32_t)w.dims[0] != out || (uint32_t)w.dims[1] != in) {
        return RV_ERR_SHAPE;
    }
    if (in > RV_MAX_WIDTH || out > RV_MAX_WIDTH) {
        return RV_ERR_LIMIT_WIDTH;
    }
    if (w.data_len != (size_t)in * out * dtype_bytes(w.type)) {
        return RV_ERR_WEIGHTS;
    }
    if (has_bias && (bias.n_dims != 1 || (uint32_t)bias.dims[0] != out ||
                     bias.data_len != (size_t)out * dtype_bytes(bias.type))) {
        return RV_ERR_WEIGHTS;
    }
    /* types: all float (float16 weights allowed) or int8 activations/weights with int32 bias */
    if (x.type == TFLITE_INT8) {
        if (y.type != TFLITE_INT8 || w.type != TFLITE_INT8 || (has_bias && bias.type != TFLITE_INT32) ||
            (model->n_layers > 0 && model->dtype != RV_S8)) {
            return RV_ERR_TENSOR_TYPE;
        }
        model->dtype = RV_S8;
    } else if (x.type == TFLITE_FLOAT32) {
        if (y.type != TFLITE_FLOAT32 || (w_dtype != RV_F32 && w_dtype != RV_F16) ||
            (has_bias && bias_dtype != RV_F32 && bias_dtype != RV_F16) ||
            (has_bias && bias.type == TFLITE_INT32) || model->dtype == RV_S8) {
            return RV_ERR_TENSOR_TYPE;
        }
        if (w_dtype == RV_F16) {
            model->dtype = RV_F16;
        }
    } else {
        return RV_ERR_TENSOR_TYPE;
    }
    /* weights are read in place: the file buffer must keep them aligned */
    if (((uintptr_t)w.data % dtype_bytes(w.type)) != 0 ||
        (has_bias && ((uintptr_t)bias.data % dtype_bytes(bias.type)) != 0)) {
        return RV_ERR_ALIGNMENT;
    }
    memset(layer, 0, sizeof(*layer));
    layer->in = (uint16_t)in;
    layer->out = (uint16_t)out;
    layer->dtype = w_dtype;
    layer->bias_dtype = has_bias ? bias_dtype : (w_dtype == RV_S8 ? RV_S8 : RV_F32);
    layer->activation = activation;
    layer->layout = RV_LAYOUT_OUT_IN;
    layer->weights = w.data;
    layer->bias = has_bias ? bias.data : NULL;
    if (model->dtype == RV_S8) {
        status = s8_multipliers(r, layer, &x, &w, &y, activation);
        if (status != RV_OK) {
            return status;
        }
        if (model->n_layers == 0) {
            model->input_quant = layer->input_quant;
        }
    }
    model->n_layers++;
    *current = fb_vector_i32(&r->f, &outputs, 0);
    return RV_OK;
}

static rv_status add_dequantize(reader *r, const fb_table *op) {
    fb_vector inputs, outputs;
    tensor_info source, target;
    rv_status status = fb_vector_field(&r->f, op, OPERATOR_INPUTS, 4, &inputs);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, op, OPERATOR_OUTPUTS, 4, &outputs);
    }
    if (status != RV_OK) {
        return status;
    }
    if (inputs.count != 1 || outputs.count != 1) {
        return RV_ERR_GRAPH;
    }
    status = read_tensor(r, fb_vector_i32(&r->f, &inputs, 0), &source);
    if (status == RV_OK) {
        status = read_tensor(r, fb_vector_i32(&r->f, &outputs, 0), &target);
    }
    if (status != RV_OK) {
        return status;
    }
    /* only the float16 constant weights of the float16 export */
    if (source.type != TFLITE_FLOAT16 || source.data == NULL || target.type != TFLITE_FLOAT32) {
        return RV_ERR_TENSOR_TYPE;
    }
    if (r->n_dequantized >= 2 * RV_MAX_LAYERS) {
        return RV_ERR_LIMIT_LAYERS;
    }
    r->dequantized_in[r->n_dequantized] = fb_vector_i32(&r->f, &inputs, 0);
    r->dequantized_out[r->n_dequantized] = fb_vector_i32(&r->f, &outputs, 0);
    r->n_dequantized++;
    return RV_OK;
}

static rv_status add_logistic(reader *r, rv_model *model, const fb_table *op, int32_t *current) {
    fb_vector inputs, outputs;
    tensor_info x, y;
    rv_status status = fb_vector_field(&r->f, op, OPERATOR_INPUTS, 4, &inputs);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, op, OPERATOR_OUTPUTS, 4, &outputs);
    }
    if (status != RV_OK) {
        return status;
    }
    if (model->n_layers == 0 || inputs.count != 1 || outputs.count != 1 ||
        fb_vector_i32(&r->f, &inputs, 0) != *current) {
        return RV_ERR_GRAPH;
    }
    status = read_tensor(r, *current, &x);
    if (status == RV_OK) {
        status = read_tensor(r, fb_vector_i32(&r->f, &outputs, 0), &y);
    }
    if (status != RV_OK) {
        return status;
    }
    if (tensor_size(&x) != tensor_size(&y)) {
        return RV_ERR_SHAPE;
    }
    if (model->dtype == RV_S8) {
        int8_t *table;
        if (x.type != TFLITE_INT8 || y.type != TFLITE_INT8) {
            return RV_ERR_TENSOR_TYPE;
        }
        /* TFLite's int8 LOGISTIC writes probabilities with scale 1/256, zero point -128 */
        if (!valid_quant(&x) || !valid_quant(&y) || y.zero_point != -128 || y.scale != 1.0f / 256.0f) {
            return RV_ERR_QUANTIZATION;
        }
        table = (int8_t *)aux_take(r, 256);
        if (table != NULL) {
            status = rv_logistic_s8_table(quant_of(&x), table);
        } else {
            int8_t probe[256]; /* validate the parameters even while only measuring aux */
            status = rv_logistic_s8_table(quant_of(&x), probe);
        }
        if (status != RV_OK) {
            return status;
        }
        model->logistic_table = table;
        model->output_quant = quant_of(&y);
    } else if (x.type != TFLITE_FLOAT32 || y.type != TFLITE_FLOAT32) {
        return RV_ERR_TENSOR_TYPE;
    }
    *current = fb_vector_i32(&r->f, &outputs, 0);
    return RV_OK;
}

static rv_status read_graph(reader *r, rv_model *model, const fb_table *subgraph) {
    fb_vector inputs, outputs, operators;
    int32_t current;
    uint32_t k;
    int ended = 0;
    rv_status status = fb_vector_field(&r->f, subgraph, SUBGRAPH_TENSORS, 4, &r->tensors);
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, subgraph, SUBGRAPH_INPUTS, 4, &inputs);
    }
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, subgraph, SUBGRAPH_OUTPUTS, 4, &outputs);
    }
    if (status == RV_OK) {
        status = fb_vector_field(&r->f, subgraph, SUBGRAPH_OPERATORS, 4, &operators);
    }
    if (status != RV_OK) {
        return status;
    }
    if (inputs.count != 1 || outputs.count != 1) {
        return RV_ERR_GRAPH;
    }
    current = fb_vector_i32(&r->f, &inputs, 0);
    for (k = 0; k < operators.count; k++) {
        fb_table op;
        uint32_t opcode_index;
        int32_t builtin;
        status = fb_vector_table(&r->f, &operators, k, &op);
        if (status == RV_OK) {
            status = fb_scalar_u32(&r->f, &op, OPERATOR_OPCODE_INDEX, 0, &opcode_index);
        }
        if (status == RV_OK) {
            status = operator_code(r, opcode_index, &builtin);
        }
        if (status != RV_OK) {
            return status;
        }
        if (ended) {
            return builtin == OP_FULLY_CONNECTED || builtin == OP_LOGISTIC || builtin == OP_DEQUANTIZE
                       ? RV_ERR_GRAPH
                       : RV_ERR_OPERATOR;
        }
        switch (builtin) {
        case OP_FULLY_CONNECTED: status = add_dense(r, model, &op, &current); break;
        case OP_DEQUANTIZE: status = add_dequantize(r, &op); break;
        case OP_LOGISTIC:
            status = add_logistic(r, model, &op, &current);
            ended = 1;
            break;
        default: return RV_ERR_OPERATOR;
        }
        if (status != RV_OK) {
            return status;
        }
    }
    if (!ended || current != fb_vector_i32(&r->f, &outputs, 0)) {
        return RV_ERR_GRAPH;
    }
    return RV_OK;
}

/* The xen bytes as the original firmware finds them: for each metadata entry named TFLITE_METADATA
   (the last one wins), the first "xen:" in a window starting at the buffer's 4-byte length prefix
   and `size` bytes long; parsed from there to the end of the buffer. */
static rv_status read_metadata(reader *r, const fb_table *root, rv_metadata *meta) {
    static const char name_wanted[] = "TFLITE_METADATA";
    const size_t name_len = sizeof(name_wanted) - 1;
    fb_vector entries;
    uint32_t k;
    int found = 0;
    rv_status status = fb_vector_field(&r->f, root, MODEL_METADATA, 4, &entries);
    if (status != RV_OK) {
        return status;
    }
    for (k = 0; k < entries.count; k++) {
        fb_table entry, buffer;
        fb_vector name, bytes;
        uint32_t buffer_index;
        size_t window, hit;
        status = fb_vector_table(&r->f, &entries, k, &entry);
        if (status == RV_OK) {
            status = fb_vector_field(&r->f, &entry, METADATA_NAME, 1, &name);
        }
        if (status == RV_OK) {
            status = fb_scalar_u32(&r->f, &entry, METADATA_BUFFER, 0, &buffer_index);
        }
        if (status != RV_OK) {
            return status;
        }
        if (name.count != name_len || memcmp(r->f.data + name.pos, name_wanted, name_len) != 0) {
            continue;
        }
        status = fb_vector_table(&r->f, &r->buffers, buffer_index, &buffer);
        if (status == RV_OK) {
            status = fb_vector_field(&r->f, &buffer, BUFFER_DATA, 1, &bytes);
        }
        if (status != RV_OK) {
            return status == RV_ERR_GRAPH ? RV_ERR_NO_METADATA : status;
        }
        window = bytes.pos - 4; /* the length prefix, inside the file since the vector is */
        for (hit = 0; hit + 4 <= bytes.count; hit++) {
            if (memcmp(r->f.data + window + hit, "xen:", 4) == 0) {
                break;
            }
        }
        if (hit + 4 > bytes.count) {
            return RV_ERR_NO_METADATA;
        }
        status = rv_metadata_parse(r->f.data + window + hit, bytes.count + 4 - hit, meta);
        if (status != RV_OK) {
            return status;
        }
        found = 1;
    }
    return found ? RV_OK : RV_ERR_NO_METADATA;
}

rv_status rv_model_load_tflite(rv_model *model, const void *bytes, size_t len, void *aux, size_t aux_len,
                               size_t *aux_needed) {
    reader r;
    fb_table root, subgraph;
    fb_vector subgraphs;
    uint32_t version;
    rv_status status;
    if (model == NULL || bytes == NULL || aux_needed == NULL) {
        return RV_ERR_ARGUMENT;
    }
    *aux_needed = 0;
    memset(model, 0, sizeof(*model));
    memset(&r, 0, sizeof(r));
    r.f.data = (const uint8_t *)bytes;
    r.f.len = len;
    r.aux = (uint8_t *)aux;
    r.aux_len = aux_len;
    if ((uintptr_t)aux % 4 != 0) {
        return RV_ERR_ALIGNMENT;
    }
    if (len < 8) {
        return RV_ERR_TRUNCATED;
    }
    if (memcmp(r.f.data + 4, "TFL3", 4) != 0) {
        return RV_ERR_NOT_TFLITE;
    }
    status = fb_deref(&r.f, 0, &root.pos);
    if (status == RV_OK) {
        status = fb_table_at(&r.f, root.pos, &root);
    }
    if (status == RV_OK) {
        status = fb_scalar_u32(&r.f, &root, MODEL_VERSION, 0, &version);
        if (status == RV_OK && version != TFLITE_SCHEMA_VERSION) {
            status = RV_ERR_NOT_TFLITE;
        }
    }
    if (status == RV_OK) {
        status = fb_vector_field(&r.f, &root, MODEL_OPERATOR_CODES, 4, &r.opcodes);
    }
    if (status == RV_OK) {
        status = fb_vector_field(&r.f, &root, MODEL_BUFFERS, 4, &r.buffers);
    }
    if (status == RV_OK) {
        status = fb_vector_field(&r.f, &root, MODEL_SUBGRAPHS, 4, &subgraphs);
        if (status == RV_OK && subgraphs.count != 1) {
            status = RV_ERR_SUBGRAPHS;
        }
    }
    if (status == RV_OK) {
        status = fb_vector_table(&r.f, &subgraphs, 0, &subgraph);
    }
    if (status == RV_OK) {
        status = read_graph(&r, model, &subgraph);
    }
    if (status == RV_OK) {
        status = read_metadata(&r, &root, &model->metadata);
    }
    if (status == RV_OK && r.used > 0 && (aux == NULL || r.used > aux_len)) {
        *aux_needed = r.used;
        status = RV_ERR_BUFFER_TOO_SMALL;
    }
    if (status == RV_OK) {
        *aux_needed = r.used;
        status = rv_model_verify(model);
    }
    if (status != RV_OK) {
        memset(model, 0, sizeof(*model));
    }
    return status;
}
