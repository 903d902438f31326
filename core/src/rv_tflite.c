/* Reader for the subset of .tflite files the exporter (and the original xen exporter) writes: one
 * subgraph of FULLY_CONNECTED layers (fused NONE/RELU) ending in LOGISTIC, in float32, float16 weights
 * behind DEQUANTIZE, or int8 with int8 input/output; plus the xen metadata.
 *
 * A .tflite file is a FlatBuffer. Tables and vectors are held as their positions in the file (0: absent)
 * and every field is read through fb_get, which checks it against the file length before a byte is
 * touched: a malformed file returns a status, it is never read out of bounds. Field numbers follow
 * tensorflow/lite/schema/schema.fbs. What the descriptor itself must satisfy (alignment, zero points,
 * shifts, the metadata against the graph) is left to rv_model_check, which the load ends with.
 */
#include <string.h>

#include "rv_internal.h"

typedef struct reader {
    const uint8_t *data;
    size_t len;
    /* The first error. The fb_* readers record theirs here and then return 0 (an absent table or
       vector, a zero scalar), so a run of reads needs one check at its end, and the error reported is
       always the first one met. Later checks record nothing either. */
    rv_status status;
    size_t tensors, buffers, opcodes; /* vectors of the root and the subgraph */
    /* DEQUANTIZE ops seen so far: output tensor -> float16 constant input tensor */
    int32_t dequantized_out[2 * RV_MAX_LAYERS];
    int32_t dequantized_in[2 * RV_MAX_LAYERS];
    unsigned n_dequantized;
    /* caller's aux memory, handed out 4-byte aligned; `used` counts even what did not fit */
    uint8_t *aux;
    size_t aux_len;
    size_t used;
} reader;

/* Records status unless an earlier error is recorded; returns 0 for the readers' "absent". */
RV_NOINLINE static size_t fail(reader *r, rv_status status) {
    if (r->status == RV_OK) {
        r->status = status;
    }
    return 0;
}

static int fb_has(const reader *r, size_t pos, size_t size) { return pos <= r->len && size <= r->len - pos; }

/* Little-endian loads, as the file's weights are read in place on the (little-endian) targets. */
static uint32_t fb_u32(const reader *r, size_t pos) {
    uint32_t value;
    memcpy(&value, r->data + pos, sizeof value);
    return value;
}

static uint32_t fb_u16(const reader *r, size_t pos) {
    uint16_t value;
    memcpy(&value, r->data + pos, sizeof value);
    return value;
}

/* A field: its slot in the table's vtable and its kind: a scalar of 1 or 4 bytes, a sub-table, or a
   vector with the bytes of each element (sub-tables and vectors are stored as 4-byte offsets). One
   constant per field, as the schema declares them, read by fb_get. */
#define FB_U8(slot) ((slot) << 4 | 1)
#define FB_U32(slot) ((slot) << 4 | 4)
#define FB_TABLE(slot) ((slot) << 4 | 2)
#define FB_VECTOR(slot, element) ((element) << 8 | (slot) << 4 | 3)
#define FB_SLOT(field) ((unsigned)(field) >> 4 & 15u)
#define FB_KIND(field) ((unsigned)(field) & 15u)
#define FB_ELEMENT(field) ((unsigned)(field) >> 8)

/* What the uoffset at pos (pos + 4 <= len) points to, with at least 4 bytes there; 0 outside the file
   (only the root offset at 0 can point to 0, where no table can be: see fb_table_at). */
static size_t fb_deref(reader *r, size_t pos) {
    const uint32_t offset = fb_u32(r, pos);
    if (offset > r->len - pos || !fb_has(r, pos + offset, 4)) {
        return fail(r, RV_ERR_OFFSET);
    }
    return pos + offset;
}

/* Where a table's vtable starts: table - soffset, in size_t arithmetic. One before 0 wraps to a value
   beyond any file; one after the table cannot wrap (a table on a 32-bit target is below 2 GB). With
   AVR's 16-bit size_t, where no .tflite file fits in memory, a wrapped position is still checked
   against the length before it is read. */
static size_t fb_vtable(const reader *r, size_t table) { return table - (size_t)(int32_t)fb_u32(r, table); }

/* The table the uoffset at pos points to, its vtable checked: inside the file, an even length >= 4.
   A table at 0 would be its own root offset, 0, and so its own vtable of length 0. */
static size_t fb_table_at(reader *r, size_t pos) {
    const size_t table = fb_deref(r, pos), vtable = fb_vtable(r, table);
    uint32_t vtable_len;
    if (table == 0 || !fb_has(r, vtable, 4) || (vtable_len = fb_u16(r, vtable)) < 4 || (vtable_len & 1u) ||
        !fb_has(r, vtable, vtable_len)) {
        return fail(r, RV_ERR_OFFSET);
    }
    return table;
}

/* A field of a table: a scalar's value, a sub-table's position, or a vector's (of its length, its
   elements inside the file); 0 when the table or the field is absent (every default this reader
   needs). */
static size_t fb_get(reader *r, size_t table, unsigned field) {
    size_t vtable, slot, pos;
    uint32_t offset;
    if (table == 0) {
        return 0;
    }
    vtable = fb_vtable(r, table); /* checked by fb_table_at */
    slot = 4u + 2u * FB_SLOT(field);
    if (slot >= fb_u16(r, vtable) || (offset = fb_u16(r, vtable + slot)) == 0) {
        return 0;
    }
    pos = table + offset;
    if (!fb_has(r, pos, FB_KIND(field) == 1 ? 1u : 4u)) {
        return fail(r, RV_ERR_OFFSET);
    }
    switch (FB_KIND(field)) {
    case 1: return r->data[pos];
    case 2: return fb_table_at(r, pos);
    case 3:
        pos = fb_deref(r, pos);
        if (pos != 0 && (size_t)fb_u32(r, pos) > (r->len - pos - 4) / FB_ELEMENT(field)) {
            return fail(r, RV_ERR_OFFSET);
        }
        return pos;
    default: return fb_u32(r, pos);
    }
}

static uint32_t fb_count(const reader *r, size_t vector) { return vector != 0 ? fb_u32(r, vector) : 0; }

/* Element i of a vector of int32; -1 (no tensor) past its end. */
static int32_t fb_i32_in(const reader *r, size_t vector, uint32_t i) {
    return i < fb_count(r, vector) ? (int32_t)fb_u32(r, vector + 4 + 4 * (size_t)i) : -1;
}

/* Table element i of a vector of tables; an index past the end is the error `missing`. */
static size_t fb_table_in(reader *r, size_t vector, uint32_t i, rv_status missing) {
    return i < fb_count(r, vector) ? fb_table_at(r, vector + 4 + 4 * (size_t)i) : fail(r, missing);
}

/* ---- the TFLite schema subset (tensorflow/lite/schema/schema.fbs) ---- */

enum {
    MODEL_VERSION = FB_U32(0),
    MODEL_OPERATOR_CODES = FB_VECTOR(1, 4),
    MODEL_SUBGRAPHS = FB_VECTOR(2, 4),
    MODEL_BUFFERS = FB_VECTOR(4, 4),
    MODEL_METADATA = FB_VECTOR(6, 4),
    SUBGRAPH_TENSORS = FB_VECTOR(0, 4),
    SUBGRAPH_INPUTS = FB_VECTOR(1, 4),
    SUBGRAPH_OUTPUTS = FB_VECTOR(2, 4),
    SUBGRAPH_OPERATORS = FB_VECTOR(3, 4),
    TENSOR_SHAPE = FB_VECTOR(0, 4),
    TENSOR_TYPE = FB_U8(1),
    TENSOR_BUFFER = FB_U32(2),
    TENSOR_QUANTIZATION = FB_TABLE(4),
    TENSOR_SPARSITY = FB_TABLE(6),
    QUANT_SCALE = FB_VECTOR(2, 4),
    QUANT_ZERO_POINT = FB_VECTOR(3, 8),
    QUANT_DETAILS_TYPE = FB_U8(4),
    QUANT_DIMENSION = FB_U32(6),
    OPCODE_DEPRECATED_BUILTIN = FB_U8(0),
    OPCODE_BUILTIN = FB_U32(3),
    OPERATOR_OPCODE_INDEX = FB_U32(0),
    OPERATOR_INPUTS = FB_VECTOR(1, 4),
    OPERATOR_OUTPUTS = FB_VECTOR(2, 4),
    OPERATOR_OPTIONS_TYPE = FB_U8(3),
    OPERATOR_OPTIONS = FB_TABLE(4),
    FC_OPTIONS_ACTIVATION = FB_U8(0),
    FC_OPTIONS_WEIGHTS_FORMAT = FB_U8(1),
    BUFFER_DATA = FB_VECTOR(0, 1),
    METADATA_NAME = FB_VECTOR(0, 1),
    METADATA_BUFFER = FB_U32(1)
};

/* TFLite's float32 and float16 are rv_dtype's RV_F32 and RV_F16. */
enum { TFLITE_FLOAT32 = 0, TFLITE_FLOAT16 = 1, TFLITE_INT32 = 2, TFLITE_INT8 = 9 };
enum { OP_DEQUANTIZE = 6, OP_FULLY_CONNECTED = 9, OP_LOGISTIC = 14 };
enum { OPTIONS_FULLY_CONNECTED = 8 };
enum { TFLITE_SCHEMA_VERSION = 3 };

/* Elements a tensor may count (a layer's weights); more read as TENSOR_CAP + 1. */
#define TENSOR_CAP ((uint32_t)RV_MAX_WIDTH * RV_MAX_WIDTH)

/* What the reader keeps of one tensor. */
typedef struct tensor_info {
    uint32_t type;
    uint32_t n_dims;
    uint32_t last;       /* last dimension (0 for a scalar) */
    uint32_t size;       /* elements, at most TENSOR_CAP + 1 */
    const uint8_t *data; /* constant data, data_len bytes (0 for activations) */
    size_t data_len;
    rv_quant quant;      /* first scale (0 without) and zero point (INT32_MAX without, or when it
                            does not fit) */
    int32_t quant_dimension;
    size_t scales;       /* vectors of all scales and zero points (per-channel) */
    size_t zero_points;
} tensor_info;

static void *aux_take(reader *r, size_t bytes) {
    const size_t start = r->used;
    r->used += (bytes + 3u) & ~(size_t)3u;
    if (r->aux == NULL || r->used > r->aux_len) {
        return NULL;
    }
    return r->aux + start;
}

/* A tensor: its shape (each dimension in 1..4 * RV_MAX_WIDTH), constant data when its buffer has any
   (buffer 0 is the empty sentinel; buffers kept outside the FlatBuffer, as TFLite writes models over
   2 GB, read as empty: the exporter refuses them too), and its quantisation (absent: no scales, no
   zero points). */
static void read_tensor(reader *r, int32_t index, tensor_info *t) {
    const size_t tensor = fb_table_in(r, r->tensors, (uint32_t)index, RV_ERR_GRAPH);
    const size_t shape = fb_get(r, tensor, TENSOR_SHAPE);
    const uint32_t buffer_index = fb_get(r, tensor, TENSOR_BUFFER);
    const size_t quant = fb_get(r, tensor, TENSOR_QUANTIZATION);
    uint32_t k;
    memset(t, 0, sizeof(*t));
    t->type = fb_get(r, tensor, TENSOR_TYPE);
    t->n_dims = fb_count(r, shape);
    t->size = 1;
    if (fb_get(r, tensor, TENSOR_SPARSITY) != 0) {
        fail(r, RV_ERR_TENSOR_TYPE);
    }
    for (k = 0; k < t->n_dims; k++) {
        const int32_t dim = fb_i32_in(r, shape, k);
        if (t->n_dims > 4 || dim <= 0 || dim > RV_MAX_WIDTH * 4L) {
            fail(r, RV_ERR_SHAPE);
            break;
        }
        t->last = (uint32_t)dim;
        t->size = t->last > TENSOR_CAP / t->size ? TENSOR_CAP + 1 : t->size * t->last;
    }
    if (buffer_index != 0) {
        const size_t bytes = fb_get(r, fb_table_in(r, r->buffers, buffer_index, RV_ERR_WEIGHTS), BUFFER_DATA);
        t->data = r->data + bytes + 4;
        t->data_len = fb_count(r, bytes);
    }
    t->scales = fb_get(r, quant, QUANT_SCALE);
    t->zero_points = fb_get(r, quant, QUANT_ZERO_POINT);
    if (fb_get(r, quant, QUANT_DETAILS_TYPE) != 0) {
        fail(r, RV_ERR_QUANTIZATION);
    }
    t->quant_dimension = (int32_t)fb_get(r, quant, QUANT_DIMENSION);
    if (fb_count(r, t->scales) > 0) {
        t->quant.scale = rv_float_from_bits(fb_u32(r, t->scales + 4));
    }
    t->quant.zero_point = INT32_MAX;
    if (fb_count(r, t->zero_points) > 0) {
        /* int64 zero point: only values that fit int8 are meaningful here */
        const int32_t value = (int32_t)fb_u32(r, t->zero_points + 4);
        if (fb_u32(r, t->zero_points + 8) == (value < 0 ? 0xffffffffu : 0u)) {
            t->quant.zero_point = value;
        }
    }
}

static int valid_scale(float scale) { return scale > 0.0f && scale < 1e30f; }

/* A scale and a zero point that TFLite accepts (absent ones read as invalid). */
static int valid_quant(const tensor_info *t) {
    return valid_scale(t->quant.scale) && t->quant.zero_point >= -128 && t->quant.zero_point <= 127;
}

static int is_float_type(uint32_t tflite_type) { return tflite_type == TFLITE_FLOAT32 || tflite_type == TFLITE_FLOAT16; }

/* Bytes per value of a layer constant's type, once add_dense has checked it: int8, float16, float32
   or int32. */
static size_t constant_bytes(uint32_t tflite_type) {
    return tflite_type == TFLITE_INT8 ? 1u : tflite_type == TFLITE_FLOAT16 ? 2u : 4u;
}

/* Constant data of a weight/bias tensor, looking through a DEQUANTIZE of a float16 constant. */
static void constant_tensor(reader *r, int32_t index, tensor_info *t) {
    unsigned k;
    for (k = 0; k < r->n_dequantized; k++) {
        if (r->dequantized_out[k] == index) {
            index = r->dequantized_in[k];
            break;
        }
    }
    read_tensor(r, index, t);
    if (t->data_len == 0) {
        fail(r, RV_ERR_WEIGHTS);
    }
}

/* Requantisation constants of an int8 layer, as TFLite-Micro's FullyConnected Prepare computes them. */
static void s8_multipliers(reader *r, rv_layer *layer, const tensor_info *input, const tensor_info *weights,
                           const tensor_info *output) {
    const uint32_t n = fb_count(r, weights->scales);
    int32_t *multipliers = (int32_t *)aux_take(r, 4u * n), *shifts = (int32_t *)aux_take(r, 4u * n);
    uint32_t k;
    if (!valid_quant(input) || !valid_quant(output) || n == 0 || (n != 1 && n != layer->out) ||
        fb_count(r, weights->zero_points) != n || (n > 1 && weights->quant_dimension != 0)) {
        fail(r, RV_ERR_QUANTIZATION);
        return;
    }
    for (k = 0; k < n; k++) {
        const float filter_scale = rv_float_from_bits(fb_u32(r, weights->scales + 4 + 4 * (size_t)k));
        const size_t zero_point = weights->zero_points + 4 + 8 * (size_t)k;
        /* per-tensor: the float product of the scales; per-channel: in double (as TFLite-Micro) */
        const double real = n == 1 ? (double)(input->quant.scale * filter_scale) / (double)output->quant.scale
                                   : (double)input->quant.scale * (double)filter_scale / (double)output->quant.scale;
        int32_t multiplier, shift;
        if ((fb_u32(r, zero_point) | fb_u32(r, zero_point + 4)) != 0 || !valid_scale(filter_scale) ||
            rv_quantize_multiplier(real, &multiplier, &shift) != RV_OK) {
            fail(r, RV_ERR_QUANTIZATION); /* TFLite's int8 weights are symmetric */
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
    layer->input_quant = input->quant;
    layer->output_quant = output->quant;
    /* CalculateActivationRangeQuantized: RELU clamps at the quantised 0.0, the output zero point */
    layer->activation_min = layer->activation == RV_ACT_RELU ? output->quant.zero_point : -128;
    layer->activation_max = 127;
}

/* The fused activation of a FULLY_CONNECTED op (NONE when it has no options: an absent options
   table reads as zeros). */
static uint8_t fc_activation(reader *r, size_t op) {
    const uint32_t options_type = fb_get(r, op, OPERATOR_OPTIONS_TYPE);
    const size_t options = options_type == OPTIONS_FULLY_CONNECTED ? fb_get(r, op, OPERATOR_OPTIONS) : 0;
    const uint32_t fused = fb_get(r, options, FC_OPTIONS_ACTIVATION);
    if (options_type != 0 && options_type != OPTIONS_FULLY_CONNECTED) {
        fail(r, RV_ERR_OPERATOR);
    }
    if (fb_get(r, options, FC_OPTIONS_WEIGHTS_FORMAT) != 0) {
        fail(r, RV_ERR_WEIGHTS); /* shuffled int8 weights */
    }
    if (fused > RV_ACT_RELU) {
        fail(r, RV_ERR_ACTIVATION);
    }
    return (uint8_t)fused;
}

/* A FULLY_CONNECTED op from x (the graph so far) to y: weights [out, in] (inputs[1]), an optional bias
   [out] (inputs[2]). */
static void add_dense(reader *r, rv_model *model, size_t op, size_t inputs, const tensor_info *x,
                      const tensor_info *y) {
    const int32_t bias_index = fb_i32_in(r, inputs, 2);
    const int has_bias = bias_index >= 0;
    const uint32_t in = x->last, out = y->last;
    rv_layer *layer = &model->layers[model->n_layers];
    tensor_info w, bias;
    int s8;
    if (model->n_layers >= RV_MAX_LAYERS) {
        fail(r, RV_ERR_LIMIT_LAYERS);
        return;
    }
    layer->activation = fc_activation(r, op);
    constant_tensor(r, fb_i32_in(r, inputs, 1), &w);
    if (has_bias) {
        constant_tensor(r, bias_index, &bias);
    }
    if (in > RV_MAX_WIDTH || out > RV_MAX_WIDTH) {
        fail(r, RV_ERR_LIMIT_WIDTH);
    }
    /* x [1, in] or [in], y likewise, w [out, in]; in, out <= RV_MAX_WIDTH: in * out <= TENSOR_CAP */
    if (x->size != in || y->size != out || w.n_dims != 2 || w.last != in || w.size != in * out) {
        fail(r, RV_ERR_SHAPE);
    }
    /* types: all float (float16 weights allowed) or int8 activations/weights with int32 bias, the
       same kind as the layers before */
    s8 = x->type == TFLITE_INT8;
    if ((!s8 && x->type != TFLITE_FLOAT32) || y->type != x->type ||
        (s8 ? w.type != TFLITE_INT8 : !is_float_type(w.type)) ||
        (has_bias && (s8 ? bias.type != TFLITE_INT32 : !is_float_type(bias.type))) ||
        (model->n_layers > 0 && (model->dtype == RV_S8) != s8)) {
        fail(r, RV_ERR_TENSOR_TYPE);
    }
    if (w.data_len != in * out * constant_bytes(w.type) ||
        (has_bias && (bias.n_dims != 1 || bias.last != out || bias.data_len != out * constant_bytes(bias.type)))) {
        fail(r, RV_ERR_WEIGHTS);
    }
    if (r->status != RV_OK) {
        return;
    }
    /* the model was zeroed when the load began and each layer is written once; weights are read in
       place (rv_model_check checks their alignment) */
    layer->in = (uint16_t)in;
    layer->out = (uint16_t)out;
    layer->dtype = (uint8_t)(s8 ? RV_S8 : w.type);
    layer->bias_dtype = (uint8_t)(s8 ? RV_S8 : has_bias ? bias.type : RV_F32);
    layer->layout = RV_LAYOUT_OUT_IN;
    layer->weights = w.data;
    layer->bias = has_bias ? bias.data : NULL;
    model->dtype = RV_MAX(model->dtype, layer->dtype); /* RV_F32 < RV_F16 < RV_S8 */
    if (s8) {
        s8_multipliers(r, layer, x, &w, y);
        model->input_quant = model->layers[0].input_quant;
    }
    model->n_layers++;
}

/* The LOGISTIC that ends the graph, from x to y of the same size. */
static void add_logistic(reader *r, rv_model *model, const tensor_info *x, const tensor_info *y) {
    if (model->n_layers == 0) {
        fail(r, RV_ERR_GRAPH);
    }
    if (x->size != y->size) {
        fail(r, RV_ERR_SHAPE);
    }
    if (x->type != y->type || x->type != (model->dtype == RV_S8 ? TFLITE_INT8 : TFLITE_FLOAT32)) {
        fail(r, RV_ERR_TENSOR_TYPE);
    }
    if (model->dtype == RV_S8 && r->status == RV_OK) {
        int8_t *table = (int8_t *)aux_take(r, 256);
        int8_t probe[256]; /* validates the parameters even while only measuring aux */
        /* TFLite's int8 LOGISTIC writes probabilities with scale 1/256, zero point -128 */
        if (!valid_quant(x) || !valid_quant(y) || y->quant.zero_point != -128 || y->quant.scale != 1.0f / 256.0f) {
            fail(r, RV_ERR_QUANTIZATION);
            return;
        }
        fail(r, rv_logistic_s8_table(x->quant, table != NULL ? table : probe));
        model->logistic_table = table;
        model->output_quant = y->quant;
    }
}

/* The subgraph's operators, in order: input -> (DEQUANTIZE | FULLY_CONNECTED)... -> LOGISTIC -> output.
   Each op has one output; FULLY_CONNECTED and LOGISTIC take the graph so far as their first input, a
   DEQUANTIZE (of float16 weights) a constant as its only one. */
static void read_graph(reader *r, rv_model *model, size_t subgraph) {
    const size_t inputs = fb_get(r, subgraph, SUBGRAPH_INPUTS);
    const size_t outputs = fb_get(r, subgraph, SUBGRAPH_OUTPUTS);
    const size_t operators = fb_get(r, subgraph, SUBGRAPH_OPERATORS);
    int32_t current = fb_i32_in(r, inputs, 0);
    uint32_t k;
    int ended = 0;
    r->tensors = fb_get(r, subgraph, SUBGRAPH_TENSORS);
    if (fb_count(r, inputs) != 1 || fb_count(r, outputs) != 1) {
        fail(r, RV_ERR_GRAPH);
    }
    for (k = 0; k < fb_count(r, operators) && r->status == RV_OK; k++) {
        const size_t op = fb_table_in(r, operators, k, RV_ERR_GRAPH);
        /* the builtin operator, as TFLite's GetBuiltinCode: the larger of the two fields */
        const size_t code = fb_table_in(r, r->opcodes, fb_get(r, op, OPERATOR_OPCODE_INDEX), RV_ERR_GRAPH);
        const int32_t deprecated = (int8_t)fb_get(r, code, OPCODE_DEPRECATED_BUILTIN);
        const int32_t extended = (int32_t)fb_get(r, code, OPCODE_BUILTIN);
        const int32_t builtin = RV_MAX(extended, deprecated);
        const size_t op_inputs = fb_get(r, op, OPERATOR_INPUTS), op_outputs = fb_get(r, op, OPERATOR_OUTPUTS);
        const uint32_t n_inputs = fb_count(r, op_inputs);
        const int32_t in = fb_i32_in(r, op_inputs, 0), out = fb_i32_in(r, op_outputs, 0);
        tensor_info x, y;
        if (builtin != OP_FULLY_CONNECTED && builtin != OP_LOGISTIC && builtin != OP_DEQUANTIZE) {
            fail(r, RV_ERR_OPERATOR);
        }
        if (ended || fb_count(r, op_outputs) != 1 || (builtin == OP_FULLY_CONNECTED ? n_inputs < 2 || n_inputs > 3 : n_inputs != 1) ||
            (builtin != OP_DEQUANTIZE && in != current)) {
            fail(r, RV_ERR_GRAPH);
        }
        read_tensor(r, in, &x);
        read_tensor(r, out, &y);
        if (r->status != RV_OK) {
            break;
        }
        if (builtin == OP_DEQUANTIZE) {
            /* only the float16 constant weights of the float16 export */
            if (x.type != TFLITE_FLOAT16 || x.data_len == 0 || y.type != TFLITE_FLOAT32) {
                fail(r, RV_ERR_TENSOR_TYPE);
            }
            if (r->n_dequantized >= 2 * RV_MAX_LAYERS) {
                fail(r, RV_ERR_LIMIT_LAYERS);
            } else {
                r->dequantized_in[r->n_dequantized] = in;
                r->dequantized_out[r->n_dequantized] = out;
                r->n_dequantized++;
            }
            continue;
        }
        if (builtin == OP_FULLY_CONNECTED) {
            add_dense(r, model, op, op_inputs, &x, &y);
        } else {
            add_logistic(r, model, &x, &y);
            ended = 1;
        }
        current = out;
    }
    if (!ended || current != fb_i32_in(r, outputs, 0)) {
        fail(r, RV_ERR_GRAPH);
    }
}

/* The xen bytes as the original firmware finds them: for each metadata entry named TFLITE_METADATA
   (the last one wins), the first "xen:" in a window starting at the buffer's 4-byte length prefix
   and `size` bytes long; parsed from there to the end of the buffer. */
static void read_metadata(reader *r, size_t root, rv_metadata *meta) {
    static const char name_wanted[] = "TFLITE_METADATA";
    const size_t entries = fb_get(r, root, MODEL_METADATA);
    uint32_t k;
    int found = 0;
    for (k = 0; k < fb_count(r, entries) && r->status == RV_OK; k++) {
        const size_t entry = fb_table_in(r, entries, k, RV_ERR_GRAPH);
        const size_t name = fb_get(r, entry, METADATA_NAME);
        const uint32_t buffer_index = fb_get(r, entry, METADATA_BUFFER);
        size_t bytes, count, hit;
        if (fb_count(r, name) != sizeof(name_wanted) - 1 ||
            memcmp(r->data + name + 4, name_wanted, sizeof(name_wanted) - 1) != 0) {
            continue;
        }
        bytes = fb_get(r, fb_table_in(r, r->buffers, buffer_index, RV_ERR_NO_METADATA), BUFFER_DATA);
        count = fb_count(r, bytes);
        /* the window starts at the length prefix, inside the file since the vector is */
        for (hit = 0; hit + 4 <= count && memcmp(r->data + bytes + hit, "xen:", 4) != 0; hit++) {
        }
        if (hit + 4 > count) {
            fail(r, RV_ERR_NO_METADATA);
        } else {
            fail(r, rv_metadata_parse_at(r->data + bytes + hit, count + 4 - hit, meta));
            found = 1;
        }
    }
    if (!found) {
        fail(r, RV_ERR_NO_METADATA);
    }
}

rv_status rv_model_load_tflite(rv_model *model, const void *bytes, size_t len, void *aux, size_t aux_len,
                               size_t *aux_needed) {
    reader r;
    size_t root, subgraphs;
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
    root = fb_table_at(&r, 0);
    if (fb_get(&r, root, MODEL_VERSION) != TFLITE_SCHEMA_VERSION) {
        fail(&r, RV_ERR_NOT_TFLITE);
    }
    r.opcodes = fb_get(&r, root, MODEL_OPERATOR_CODES);
    r.buffers = fb_get(&r, root, MODEL_BUFFERS);
    subgraphs = fb_get(&r, root, MODEL_SUBGRAPHS);
    if (fb_count(&r, subgraphs) != 1) {
        fail(&r, RV_ERR_SUBGRAPHS);
    }
    read_graph(&r, model, fb_table_in(&r, subgraphs, 0, RV_ERR_GRAPH));
    read_metadata(&r, root, &model->metadata);
    if (r.status == RV_OK) {
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
