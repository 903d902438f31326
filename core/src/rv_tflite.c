/* Reader for the subset of .tflite files the exporter (and the original xen exporter) writes: one
 * subgraph of FULLY_CONNECTED layers (fused NONE/RELU) ending in LOGISTIC, in float32, float16 weights
 * behind DEQUANTIZE, or int8 with int8 input/output; plus the xen metadata.
 *
 * A .tflite file is a FlatBuffer. Every table, vector and scalar is read through the fb_* helpers,
 * which check each offset against the file length before touching a byte: a malformed file returns a
 * status, it is never read out of bounds. Field numbers follow tensorflow/lite/schema/schema.fbs.
 */
#include <string.h>

#include "rv_internal.h"

/* ---- bounds-checked FlatBuffer access ---- */

typedef struct fb_table {
    size_t pos;       /* table start; 0 for an absent (or unreadable) table, whose fields read as absent */
    size_t vtable;    /* vtable start */
    uint16_t n_slots; /* fields the vtable describes */
} fb_table;

typedef struct fb_vector {
    size_t pos; /* first element */
    uint32_t count;
} fb_vector;

/* What the reader keeps of one tensor. */
typedef struct tensor_info {
    uint8_t type;
    uint32_t n_dims;
    int32_t dims[4];
    const uint8_t *data; /* constant data, NULL for activations */
    size_t data_len;
    float scale;         /* first scale */
    int32_t zero_point;  /* first zero point (INT32_MAX when it does not fit) */
    int32_t quant_dimension;
    fb_vector scales;    /* all scales (per-channel) */
    fb_vector zero_points;
} tensor_info;

typedef struct reader {
    const uint8_t *data;
    size_t len;
    /* The first error. The fb_* readers record theirs here and then return absent tables, empty
       vectors and 0, so a run of field reads needs one check at its end, and the error reported is
       always the first one met, as if each read had returned. Later checks record nothing either:
       the code below stops early only where going on would be unsafe or pointless. */
    rv_status status;
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

/* Records status unless an earlier error is recorded; returns the recorded one. */
static rv_status fail(reader *r, rv_status status) {
    if (r->status == RV_OK) {
        r->status = status;
    }
    return r->status;
}

static int fb_has(const reader *r, size_t pos, size_t size) { return pos <= r->len && size <= r->len - pos; }

/* Little-endian loads, as the file's weights are read in place on the (little-endian) targets. */
static uint16_t fb_u16(const reader *r, size_t pos) {
    uint16_t value;
    memcpy(&value, r->data + pos, sizeof value);
    return value;
}

static uint32_t fb_u32(const reader *r, size_t pos) {
    uint32_t value;
    memcpy(&value, r->data + pos, sizeof value);
    return value;
}

/* A field of a table: its slot in the vtable and the bytes of its value, or of each element for a
   vector (sub-tables and vectors are stored as 4-byte offsets). One constant per field carries both,
   as the schema declares them, which keeps each read a three-argument call. */
#define FB_FIELD(slot, bytes) ((slot) << 4 | (bytes))
#define FB_SLOT(field) ((unsigned)(field) >> 4)
#define FB_BYTES(field) ((unsigned)(field) & 15u)

/* Follows the uoffset stored at pos (pos + 4 <= len); 0 when it points outside the file (pos itself
   is never 0 for a field, and the root offset at 0 points past its own 8 header bytes). */
static size_t fb_deref(reader *r, size_t pos) {
    const uint32_t offset = fb_u32(r, pos);
    if (offset > r->len - pos) {
        fail(r, RV_ERR_OFFSET);
        return 0;
    }
    return pos + offset;
}

/* The table the uoffset at pos points to. */
static fb_table fb_table_via(reader *r, size_t pos) {
    fb_table t = {0, 0, 0};
    const size_t table = fb_deref(r, pos);
    if (table != 0 && fb_has(r, table, 4)) {
        const int64_t vtable = (int64_t)table - (int64_t)(int32_t)fb_u32(r, table);
        if (vtable >= 0 && fb_has(r, (size_t)vtable, 4)) {
            const uint16_t vtable_len = fb_u16(r, (size_t)vtable);
            if (vtable_len >= 4 && !(vtable_len & 1u) && fb_has(r, (size_t)vtable, vtable_len)) {
                t.pos = table;
                t.vtable = (size_t)vtable;
                t.n_slots = (uint16_t)((vtable_len - 4) / 2);
                return t;
            }
        }
    }
    fail(r, RV_ERR_OFFSET);
    return t;
}

/* Position of field `slot` holding `size` bytes, or 0 when the field is absent (default value). */
static size_t fb_field(reader *r, const fb_table *t, unsigned slot, size_t size) {
    uint16_t offset;
    if (slot >= t->n_slots) {
        return 0;
    }
    offset = fb_u16(r, t->vtable + 4 + 2 * slot);
    if (offset == 0) {
        return 0;
    }
    /* t->pos <= len: fb_table_via checked the table's first 4 bytes */
    if (offset > r->len - t->pos || !fb_has(r, t->pos + offset, size)) {
        fail(r, RV_ERR_OFFSET);
        return 0;
    }
    return t->pos + offset;
}

/* Unsigned scalar of 1, 4 or 8 bytes, 0 when absent (every default this reader needs). 8 bytes:
   uint64 fields, whose values beyond 32 bits cannot be inside a buffer this reader can hold. */
static uint32_t fb_scalar(reader *r, const fb_table *t, unsigned field) {
    const unsigned size = FB_BYTES(field);
    const size_t pos = fb_field(r, t, FB_SLOT(field), size);
    if (pos == 0) {
        return 0;
    }
    if (size == 1) {
        return r->data[pos];
    }
    if (size == 8 && fb_u32(r, pos + 4) != 0) {
        fail(r, RV_ERR_OFFSET);
        return 0;
    }
    return fb_u32(r, pos);
}

/* Sub-table in a field; absent (pos 0) when the field is. */
static fb_table fb_subtable(reader *r, const fb_table *t, unsigned field) {
    const size_t pos = fb_field(r, t, FB_SLOT(field), 4);
    const fb_table absent = {0, 0, 0};
    return pos != 0 ? fb_table_via(r, pos) : absent;
}

/* Vector in a field into *v (empty when absent). An out parameter, unlike the other readers: most
   vectors go straight into a struct, which a returned value would be copied into. */
static void fb_vector_field(reader *r, const fb_table *t, unsigned field, fb_vector *v) {
    size_t target = fb_field(r, t, FB_SLOT(field), 4);
    uint32_t count;
    v->pos = 0;
    v->count = 0;
    if (target == 0) {
        return;
    }
    target = fb_deref(r, target);
    if (target == 0 || !fb_has(r, target, 4)) {
        fail(r, RV_ERR_OFFSET);
        return;
    }
    count = fb_u32(r, target);
    if ((size_t)count > (r->len - target - 4) / FB_BYTES(field)) {
        fail(r, RV_ERR_OFFSET);
        return;
    }
    v->pos = target + 4;
    v->count = count;
}

/* Table element i of a vector of tables; an index past the end is the error `missing`. */
static fb_table fb_vector_table(reader *r, const fb_vector *v, uint32_t i, rv_status missing) {
    const fb_table absent = {0, 0, 0};
    if (i >= v->count) {
        fail(r, missing);
        return absent;
    }
    return fb_table_via(r, v->pos + 4 * (size_t)i);
}

/* Element i of an int32 vector; -1 (no tensor) past its end. */
static int32_t fb_vector_i32(const reader *r, const fb_vector *v, uint32_t i) {
    return i < v->count ? (int32_t)fb_u32(r, v->pos + 4 * (size_t)i) : -1;
}

/* ---- the TFLite schema subset (tensorflow/lite/schema/schema.fbs) ---- */

enum {
    MODEL_VERSION = FB_FIELD(0, 4),
    MODEL_OPERATOR_CODES = FB_FIELD(1, 4),
    MODEL_SUBGRAPHS = FB_FIELD(2, 4),
    MODEL_BUFFERS = FB_FIELD(4, 4),
    MODEL_METADATA = FB_FIELD(6, 4),
    SUBGRAPH_TENSORS = FB_FIELD(0, 4),
    SUBGRAPH_INPUTS = FB_FIELD(1, 4),
    SUBGRAPH_OUTPUTS = FB_FIELD(2, 4),
    SUBGRAPH_OPERATORS = FB_FIELD(3, 4),
    TENSOR_SHAPE = FB_FIELD(0, 4),
    TENSOR_TYPE = FB_FIELD(1, 1),
    TENSOR_BUFFER = FB_FIELD(2, 4),
    TENSOR_QUANTIZATION = FB_FIELD(4, 4),
    TENSOR_SPARSITY = FB_FIELD(6, 4),
    QUANT_SCALE = FB_FIELD(2, 4),
    QUANT_ZERO_POINT = FB_FIELD(3, 8),
    QUANT_DETAILS_TYPE = FB_FIELD(4, 1),
    QUANT_DIMENSION = FB_FIELD(6, 4),
    OPCODE_DEPRECATED_BUILTIN = FB_FIELD(0, 1),
    OPCODE_BUILTIN = FB_FIELD(3, 4),
    OPERATOR_OPCODE_INDEX = FB_FIELD(0, 4),
    OPERATOR_INPUTS = FB_FIELD(1, 4),
    OPERATOR_OUTPUTS = FB_FIELD(2, 4),
    OPERATOR_OPTIONS_TYPE = FB_FIELD(3, 1),
    OPERATOR_OPTIONS = FB_FIELD(4, 4),
    FC_OPTIONS_ACTIVATION = FB_FIELD(0, 1),
    FC_OPTIONS_WEIGHTS_FORMAT = FB_FIELD(1, 1),
    BUFFER_DATA = FB_FIELD(0, 1),
    BUFFER_OFFSET = FB_FIELD(1, 8),
    BUFFER_SIZE = FB_FIELD(2, 8),
    METADATA_NAME = FB_FIELD(0, 1),
    METADATA_BUFFER = FB_FIELD(1, 4)
};

enum { TFLITE_FLOAT32 = 0, TFLITE_FLOAT16 = 1, TFLITE_INT32 = 2, TFLITE_INT8 = 9 };
enum { OP_DEQUANTIZE = 6, OP_FULLY_CONNECTED = 9, OP_LOGISTIC = 14 };
enum { OPTIONS_FULLY_CONNECTED = 8 };
enum { TFLITE_SCHEMA_VERSION = 3 };

static void *aux_take(reader *r, size_t bytes) {
    const size_t start = r->used;
    r->used += (bytes + 3u) & ~(size_t)3u;
    if (r->aux == NULL || r->used > r->aux_len) {
        return NULL;
    }
    return r->aux + start;
}

static void buffer_data(reader *r, uint32_t index, tensor_info *info) {
    const fb_table buffer = fb_vector_table(r, &r->buffers, index, RV_ERR_WEIGHTS);
    fb_vector bytes;
    uint32_t offset, size;
    fb_vector_field(r, &buffer, BUFFER_DATA, &bytes);
    if (bytes.count > 0) {
        info->data = r->data + bytes.pos;
        info->data_len = bytes.count;
        return;
    }
    /* Large models keep buffers outside the FlatBuffer: (offset, size) from the file start. */
    offset = fb_scalar(r, &buffer, BUFFER_OFFSET);
    size = fb_scalar(r, &buffer, BUFFER_SIZE);
    if (offset > 1 && size > 0) {
        if (!fb_has(r, offset, size)) {
            fail(r, RV_ERR_OFFSET);
            return;
        }
        info->data = r->data + offset;
        info->data_len = size;
    }
}

static rv_status read_tensor(reader *r, int32_t index, tensor_info *info) {
    const fb_table tensor = fb_vector_table(r, &r->tensors, (uint32_t)index, RV_ERR_GRAPH);
    fb_vector shape;
    fb_table quant;
    uint32_t buffer_index, k;
    fb_vector_field(r, &tensor, TENSOR_SHAPE, &shape);
    memset(info, 0, sizeof(*info));
    info->type = (uint8_t)fb_scalar(r, &tensor, TENSOR_TYPE);
    buffer_index = fb_scalar(r, &tensor, TENSOR_BUFFER);
    if (fb_subtable(r, &tensor, TENSOR_SPARSITY).pos != 0) {
        fail(r, RV_ERR_TENSOR_TYPE);
    }
    if (shape.count > 4) {
        return fail(r, RV_ERR_SHAPE);
    }
    info->n_dims = shape.count;
    for (k = 0; k < shape.count; k++) {
        info->dims[k] = fb_vector_i32(r, &shape, k);
        if (info->dims[k] <= 0 || info->dims[k] > RV_MAX_WIDTH * 4L) {
            fail(r, RV_ERR_SHAPE);
        }
    }
    /* buffer 0 is the empty sentinel: an activation tensor */
    if (buffer_index != 0) {
        buffer_data(r, buffer_index, info);
    }
    /* an absent quantization table reads as no scales and no zero points */
    quant = fb_subtable(r, &tensor, TENSOR_QUANTIZATION);
    fb_vector_field(r, &quant, QUANT_SCALE, &info->scales);
    fb_vector_field(r, &quant, QUANT_ZERO_POINT, &info->zero_points);
    if (fb_scalar(r, &quant, QUANT_DETAILS_TYPE) != 0) {
        fail(r, RV_ERR_QUANTIZATION);
    }
    info->quant_dimension = (int32_t)fb_scalar(r, &quant, QUANT_DIMENSION);
    if (info->scales.count > 0) {
        info->scale = rv_float_from_bits(fb_u32(r, info->scales.pos));
    }
    if (info->zero_points.count > 0) {
        /* int64 zero point: only values that fit int8 are meaningful here */
        const uint32_t lo = fb_u32(r, info->zero_points.pos);
        const uint32_t hi = fb_u32(r, info->zero_points.pos + 4);
        const int32_t value = (int32_t)lo;
        info->zero_point = (hi == (value < 0 ? 0xffffffffu : 0u)) ? value : INT32_MAX;
    }
    return r->status;
}

static uint32_t tensor_size(const tensor_info *t) {
    uint32_t size = 1, k;
    for (k = 0; k < t->n_dims; k++) {
        size *= (uint32_t)t->dims[k];
        if (size > (uint32_t)RV_MAX_WIDTH * RV_MAX_WIDTH) {
            return 0;
        }
    }
    return size;
}

static int valid_quant(const tensor_info *t) {
    return t->scales.count >= 1 && t->zero_points.count >= 1 && t->scale > 0.0f && t->scale < 1e30f &&
           t->zero_point >= -128 && t->zero_point <= 127;
}

static rv_quant quant_of(const tensor_info *t) {
    rv_quant q;
    q.scale = t->scale;
    q.zero_point = t->zero_point;
    return q;
}

/* Bytes per value of the tensor types a layer's constants may have; 0 for any other type. */
static size_t dtype_bytes(uint8_t tflite_type) {
    switch (tflite_type) {
    case TFLITE_FLOAT32: return 4;
    case TFLITE_INT32: return 4; /* int8 biases */
    case TFLITE_FLOAT16: return 2;
    case TFLITE_INT8: return 1;
    default: return 0;
    }
}

static int is_float_type(uint8_t tflite_type) { return tflite_type == TFLITE_FLOAT32 || tflite_type == TFLITE_FLOAT16; }

/* Constant data of a weight/bias tensor, looking through a DEQUANTIZE of a float16 constant. */
static rv_status constant_tensor(reader *r, int32_t index, tensor_info *info) {
    unsigned k;
    for (k = 0; k < r->n_dequantized; k++) {
        if (r->dequantized_out[k] == index) {
            index = r->dequantized_in[k];
            break;
        }
    }
    if (read_tensor(r, index, info) != RV_OK) {
        return r->status;
    }
    if (info->data == NULL) {
        return fail(r, RV_ERR_WEIGHTS);
    }
    if (dtype_bytes(info->type) == 0) {
        return fail(r, RV_ERR_TENSOR_TYPE);
    }
    return RV_OK;
}

/* Requantisation constants of an int8 layer, as TFLite-Micro's FullyConnected Prepare computes them. */
static void s8_multipliers(reader *r, rv_layer *layer, const tensor_info *input, const tensor_info *weights,
                           const tensor_info *output) {
    const uint32_t n = weights->scales.count;
    int32_t *multipliers, *shifts;
    uint32_t k;
    if (!valid_quant(input) || !valid_quant(output) || n == 0 || (n != 1 && n != layer->out) ||
        weights->zero_points.count != n || (n > 1 && weights->quant_dimension != 0)) {
        fail(r, RV_ERR_QUANTIZATION);
        return;
    }
    multipliers = (int32_t *)aux_take(r, 4u * n);
    shifts = (int32_t *)aux_take(r, 4u * n);
    for (k = 0; k < n; k++) {
        const float filter_scale = rv_float_from_bits(fb_u32(r, weights->scales.pos + 4 * (size_t)k));
        const uint32_t zp_lo = fb_u32(r, weights->zero_points.pos + 8 * (size_t)k);
        const uint32_t zp_hi = fb_u32(r, weights->zero_points.pos + 8 * (size_t)k + 4);
        double real;
        int32_t multiplier, shift;
        rv_status status;
        if (zp_lo != 0 || zp_hi != 0 || !(filter_scale > 0.0f) || !(filter_scale < 1e30f)) {
            fail(r, RV_ERR_QUANTIZATION); /* TFLite's int8 weights are symmetric */
            return;
        }
        /* per-tensor: the float product of the scales; per-channel: in double (as TFLite-Micro) */
        real = n == 1 ? (double)(input->scale * filter_scale) / (double)output->scale
                      : (double)input->scale * (double)filter_scale / (double)output->scale;
        status = rv_quantize_multiplier(real, &multiplier, &shift);
        if (status != RV_OK) {
            fail(r, status);
            return;
        }
        if (shifts != NULL) { /* taken after multipliers: both fit */
            multipliers[k] = multiplier;
            shifts[k] = shift;
        }
    }
    layer->n_multipliers = (uint16_t)n;
    layer->multipliers = multipliers;
    layer->shifts = shifts;
    layer->input_quant = quant_of(input);
    layer->output_quant = quant_of(output);
    /* CalculateActivationRangeQuantized: RELU clamps at the quantised 0.0, the output zero point
       (>= -128, valid_quant) */
    layer->activation_min = layer->activation == RV_ACT_RELU ? output->zero_point : -128;
    layer->activation_max = 127;
}

/* The builtin operator of opcode_index, as TFLite's GetBuiltinCode: the larger of the two fields. */
static int32_t operator_code(reader *r, uint32_t opcode_index) {
    const fb_table code = fb_vector_table(r, &r->opcodes, opcode_index, RV_ERR_GRAPH);
    const int32_t deprecated = (int8_t)fb_scalar(r, &code, OPCODE_DEPRECATED_BUILTIN);
    const int32_t extended = (int32_t)fb_scalar(r, &code, OPCODE_BUILTIN);
    return RV_MAX(extended, deprecated);
}

/* The fused activation of a FULLY_CONNECTED op (NONE when it has no options: an absent options
   table reads as zeros). */
static uint8_t fc_activation(reader *r, const fb_table *op) {
    const uint32_t options_type = fb_scalar(r, op, OPERATOR_OPTIONS_TYPE);
    fb_table options;
    uint32_t fused;
    if (options_type == 0) {
        return RV_ACT_NONE;
    }
    if (options_type != OPTIONS_FULLY_CONNECTED) {
        fail(r, RV_ERR_OPERATOR);
        return RV_ACT_NONE;
    }
    options = fb_subtable(r, op, OPERATOR_OPTIONS);
    fused = fb_scalar(r, &options, FC_OPTIONS_ACTIVATION);
    if (fb_scalar(r, &options, FC_OPTIONS_WEIGHTS_FORMAT) != 0) {
        fail(r, RV_ERR_WEIGHTS); /* shuffled int8 weights */
    }
    if (fused > RV_ACT_RELU) {
        fail(r, RV_ERR_ACTIVATION);
    }
    return (uint8_t)fused;
}

/* The last dimension of an activation tensor [1, n] / [n]: n, checking the size is n. */
static int feature_count(const tensor_info *t, uint32_t *n) {
    if (t->n_dims == 0) {
        return 0;
    }
    *n = (uint32_t)t->dims[t->n_dims - 1];
    return tensor_size(t) == *n;
}

/* The input and output tensor lists of an operator. */
typedef struct op_io {
    fb_vector inputs;
    fb_vector outputs;
} op_io;

static rv_status add_dense(reader *r, rv_model *model, const fb_table *op, const op_io *io, int32_t *current) {
    const int32_t bias_index = fb_vector_i32(r, &io->inputs, 2);
    const int has_bias = bias_index >= 0;
    const uint8_t activation = fc_activation(r, op);
    tensor_info x, w, bias, y;
    uint32_t in, out;
    size_t w_bytes, bias_bytes = 0;
    int s8;
    rv_layer *layer;
    if (io->inputs.count < 2 || io->inputs.count > 3 || io->outputs.count != 1 ||
        fb_vector_i32(r, &io->inputs, 0) != *current) {
        return fail(r, RV_ERR_GRAPH);
    }
    if (model->n_layers >= RV_MAX_LAYERS) {
        return fail(r, RV_ERR_LIMIT_LAYERS);
    }
    if (r->status != RV_OK || read_tensor(r, *current, &x) != RV_OK ||
        constant_tensor(r, fb_vector_i32(r, &io->inputs, 1), &w) != RV_OK ||
        (has_bias && constant_tensor(r, bias_index, &bias) != RV_OK) ||
        read_tensor(r, fb_vector_i32(r, &io->outputs, 0), &y) != RV_OK) {
        return r->status;
    }
    if (w.n_dims != 2 || !feature_count(&x, &in) || !feature_count(&y, &out) || (uint32_t)w.dims[0] != out ||
        (uint32_t)w.dims[1] != in) {
        return fail(r, RV_ERR_SHAPE);
    }
    if (in > RV_MAX_WIDTH || out > RV_MAX_WIDTH) {
        return fail(r, RV_ERR_LIMIT_WIDTH);
    }
    w_bytes = dtype_bytes(w.type);
    if (has_bias) {
        bias_bytes = dtype_bytes(bias.type);
    }
    if (w.data_len != (size_t)in * out * w_bytes ||
        (has_bias && (bias.n_dims != 1 || (uint32_t)bias.dims[0] != out || bias.data_len != (size_t)out * bias_bytes))) {
        return fail(r, RV_ERR_WEIGHTS);
    }
    /* types: all float (float16 weights allowed) or int8 activations/weights with int32 bias, the
       same kind as the layers before */
    s8 = x.type == TFLITE_INT8;
    if ((!s8 && x.type != TFLITE_FLOAT32) || y.type != x.type ||
        (s8 ? w.type != TFLITE_INT8 : !is_float_type(w.type)) ||
        (has_bias && (s8 ? bias.type != TFLITE_INT32 : !is_float_type(bias.type))) ||
        (model->n_layers > 0 && (model->dtype == RV_S8) != s8)) {
        return fail(r, RV_ERR_TENSOR_TYPE);
    }
    /* weights are read in place: the file buffer must keep them aligned (to 1, 2 or 4 bytes:
       constant_tensor checked the types) */
    if (((uintptr_t)w.data & (w_bytes - 1)) != 0 || (has_bias && ((uintptr_t)bias.data & (bias_bytes - 1)) != 0)) {
        return fail(r, RV_ERR_ALIGNMENT);
    }
    if (s8) {
        model->dtype = RV_S8;
    } else if (w.type == TFLITE_FLOAT16) {
        model->dtype = RV_F16;
    }
    /* the model was zeroed when the load began and each layer is written once */
    layer = &model->layers[model->n_layers];
    layer->in = (uint16_t)in;
    layer->out = (uint16_t)out;
    layer->dtype = s8 ? RV_S8 : w.type == TFLITE_FLOAT16 ? RV_F16 : RV_F32;
    layer->bias_dtype = s8 ? RV_S8 : has_bias && bias.type == TFLITE_FLOAT16 ? RV_F16 : RV_F32;
    layer->activation = activation;
    layer->layout = RV_LAYOUT_OUT_IN;
    layer->weights = w.data;
    layer->bias = has_bias ? bias.data : NULL;
    if (s8) {
        s8_multipliers(r, layer, &x, &w, &y);
        if (model->n_layers == 0) {
            model->input_quant = layer->input_quant;
        }
    }
    model->n_layers++;
    *current = fb_vector_i32(r, &io->outputs, 0);
    return r->status;
}

static rv_status add_dequantize(reader *r, const op_io *io) {
    tensor_info source, target;
    const int32_t in = fb_vector_i32(r, &io->inputs, 0), out = fb_vector_i32(r, &io->outputs, 0);
    if (io->inputs.count != 1 || io->outputs.count != 1) {
        return fail(r, RV_ERR_GRAPH);
    }
    if (read_tensor(r, in, &source) != RV_OK || read_tensor(r, out, &target) != RV_OK) {
        return r->status;
    }
    /* only the float16 constant weights of the float16 export */
    if (source.type != TFLITE_FLOAT16 || source.data == NULL || target.type != TFLITE_FLOAT32) {
        return fail(r, RV_ERR_TENSOR_TYPE);
    }
    if (r->n_dequantized >= 2 * RV_MAX_LAYERS) {
        return fail(r, RV_ERR_LIMIT_LAYERS);
    }
    r->dequantized_in[r->n_dequantized] = in;
    r->dequantized_out[r->n_dequantized] = out;
    r->n_dequantized++;
    return RV_OK;
}

static rv_status add_logistic(reader *r, rv_model *model, const op_io *io, int32_t *current) {
    tensor_info x, y;
    const int32_t out = fb_vector_i32(r, &io->outputs, 0);
    if (model->n_layers == 0 || io->inputs.count != 1 || io->outputs.count != 1 ||
        fb_vector_i32(r, &io->inputs, 0) != *current) {
        return fail(r, RV_ERR_GRAPH);
    }
    if (read_tensor(r, *current, &x) != RV_OK || read_tensor(r, out, &y) != RV_OK) {
        return r->status;
    }
    if (tensor_size(&x) != tensor_size(&y)) {
        return fail(r, RV_ERR_SHAPE);
    }
    if (model->dtype == RV_S8) {
        int8_t *table;
        int8_t probe[256]; /* validates the parameters even while only measuring aux */
        rv_status status;
        if (x.type != TFLITE_INT8 || y.type != TFLITE_INT8) {
            return fail(r, RV_ERR_TENSOR_TYPE);
        }
        /* TFLite's int8 LOGISTIC writes probabilities with scale 1/256, zero point -128 */
        if (!valid_quant(&x) || !valid_quant(&y) || y.zero_point != -128 || y.scale != 1.0f / 256.0f) {
            return fail(r, RV_ERR_QUANTIZATION);
        }
        table = (int8_t *)aux_take(r, 256);
        status = rv_logistic_s8_table(quant_of(&x), table != NULL ? table : probe);
        if (status != RV_OK) {
            return fail(r, status);
        }
        model->logistic_table = table;
        model->output_quant = quant_of(&y);
    } else if (x.type != TFLITE_FLOAT32 || y.type != TFLITE_FLOAT32) {
        return fail(r, RV_ERR_TENSOR_TYPE);
    }
    *current = out;
    return RV_OK;
}

static rv_status read_graph(reader *r, rv_model *model, const fb_table *subgraph) {
    fb_vector inputs, outputs, operators;
    int32_t current;
    uint32_t k;
    int ended = 0;
    fb_vector_field(r, subgraph, SUBGRAPH_TENSORS, &r->tensors);
    fb_vector_field(r, subgraph, SUBGRAPH_INPUTS, &inputs);
    fb_vector_field(r, subgraph, SUBGRAPH_OUTPUTS, &outputs);
    fb_vector_field(r, subgraph, SUBGRAPH_OPERATORS, &operators);
    current = fb_vector_i32(r, &inputs, 0);
    if (inputs.count != 1 || outputs.count != 1) {
        fail(r, RV_ERR_GRAPH);
    }
    for (k = 0; k < operators.count && r->status == RV_OK; k++) {
        const fb_table op = fb_vector_table(r, &operators, k, RV_ERR_GRAPH);
        const int32_t builtin = operator_code(r, fb_scalar(r, &op, OPERATOR_OPCODE_INDEX));
        op_io io;
        if (builtin != OP_FULLY_CONNECTED && builtin != OP_LOGISTIC && builtin != OP_DEQUANTIZE) {
            fail(r, RV_ERR_OPERATOR);
        }
        if (ended) {
            fail(r, RV_ERR_GRAPH);
        }
        fb_vector_field(r, &op, OPERATOR_INPUTS, &io.inputs);
        fb_vector_field(r, &op, OPERATOR_OUTPUTS, &io.outputs);
        if (r->status != RV_OK) {
            break;
        }
        if (builtin == OP_FULLY_CONNECTED) {
            add_dense(r, model, &op, &io, &current);
        } else if (builtin == OP_DEQUANTIZE) {
            add_dequantize(r, &io);
        } else {
            add_logistic(r, model, &io, &current);
            ended = 1;
        }
    }
    if (!ended || current != fb_vector_i32(r, &outputs, 0)) {
        fail(r, RV_ERR_GRAPH);
    }
    return r->status;
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
    fb_vector_field(r, root, MODEL_METADATA, &entries);
    for (k = 0; k < entries.count && r->status == RV_OK; k++) {
        const fb_table entry = fb_vector_table(r, &entries, k, RV_ERR_GRAPH);
        fb_vector name, bytes;
        fb_table buffer;
        uint32_t buffer_index;
        size_t window, hit;
        fb_vector_field(r, &entry, METADATA_NAME, &name);
        buffer_index = fb_scalar(r, &entry, METADATA_BUFFER);
        if (name.count != name_len || memcmp(r->data + name.pos, name_wanted, name_len) != 0) {
            continue;
        }
        buffer = fb_vector_table(r, &r->buffers, buffer_index, RV_ERR_NO_METADATA);
        fb_vector_field(r, &buffer, BUFFER_DATA, &bytes);
        window = bytes.pos - 4; /* the length prefix, inside the file since the vector is */
        for (hit = 0; hit + 4 <= bytes.count; hit++) {
            if (memcmp(r->data + window + hit, "xen:", 4) == 0) {
                break;
            }
        }
        if (hit + 4 > bytes.count) {
            fail(r, RV_ERR_NO_METADATA);
        } else {
            fail(r, rv_metadata_parse_at(r->data + window + hit, bytes.count + 4 - hit, meta));
            found = 1;
        }
    }
    if (!found) {
        fail(r, RV_ERR_NO_METADATA);
    }
    return r->status;
}

rv_status rv_model_load_tflite(rv_model *model, const void *bytes, size_t len, void *aux, size_t aux_len,
                               size_t *aux_needed) {
    reader r;
    fb_table root, subgraph;
    fb_vector subgraphs;
    if (model == NULL || bytes == NULL || aux_needed == NULL) {
        return RV_ERR_ARGUMENT;
    }
    *aux_needed = 0;
    memset(model, 0, sizeof(*model));
    memset(&r, 0, sizeof(r));
    r.data = (const uint8_t *)bytes;
    r.len = len;
    r.aux = (uint8_t *)aux;
    r.aux_len = aux_len;
    if ((uintptr_t)aux % 4 != 0) {
        return RV_ERR_ALIGNMENT;
    }
    if (len < 8) {
        return RV_ERR_TRUNCATED;
    }
    if (memcmp(r.data + 4, "TFL3", 4) != 0) {
        return RV_ERR_NOT_TFLITE;
    }
    root = fb_table_via(&r, 0);
    if (fb_scalar(&r, &root, MODEL_VERSION) != TFLITE_SCHEMA_VERSION) {
        fail(&r, RV_ERR_NOT_TFLITE);
    }
    fb_vector_field(&r, &root, MODEL_OPERATOR_CODES, &r.opcodes);
    fb_vector_field(&r, &root, MODEL_BUFFERS, &r.buffers);
    fb_vector_field(&r, &root, MODEL_SUBGRAPHS, &subgraphs);
    if (subgraphs.count != 1) {
        fail(&r, RV_ERR_SUBGRAPHS);
    }
    subgraph = fb_vector_table(&r, &subgraphs, 0, RV_ERR_GRAPH);
    if (read_graph(&r, model, &subgraph) == RV_OK && read_metadata(&r, &root, &model->metadata) == RV_OK) {
        *aux_needed = r.used;
        if (r.used > 0 && (aux == NULL || r.used > aux_len)) {
            fail(&r, RV_ERR_BUFFER_TOO_SMALL);
        } else {
            fail(&r, rv_model_verify(model));
        }
    }
    if (r.status != RV_OK) {
        memset(model, 0, sizeof(*model));
    }
    return r.status;
}
