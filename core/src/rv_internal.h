/* rackvae core: declarations shared between the core's source files (not part of the public API). */
#ifndef RV_INTERNAL_H
#define RV_INTERNAL_H

#include <math.h>
#include <string.h>

#include "rackvae.h"

/* Orders the main loop's buffer writes before the volatile flag that publishes them. */
#if defined(__GNUC__) || defined(__clang__)
#define RV_COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define RV_COMPILER_BARRIER() ((void)0)
#endif

/* A small function kept out of line where inlining it at every call costs more than the call. */
#if defined(__GNUC__) || defined(__clang__)
#define RV_NOINLINE __attribute__((noinline))
#else
#define RV_NOINLINE
#endif

#define RV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RV_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Reads of model constants (weights, biases, the int8 logistic table). On AVR the exporter's arrays sit
   in program memory (RV_FLASH = PROGMEM: the Mega's 8 KB of RAM cannot hold them), which a plain load
   does not read, so these are pgm_read_*; a model there must be C arrays, not a .tflite in RAM.
   Everywhere else they are plain loads (the same code as without them). */
#if defined(__AVR__)
#include <avr/pgmspace.h>
#define RV_FLASH_S8(p) ((int8_t)pgm_read_byte(p))
#define RV_FLASH_U16(p) ((uint16_t)pgm_read_word(p))
#define RV_FLASH_I32(p) ((int32_t)pgm_read_dword(p))
#define RV_FLASH_F32(p) pgm_read_float(p)
#else
#define RV_FLASH_S8(p) (*(p))
#define RV_FLASH_U16(p) (*(p))
#define RV_FLASH_I32(p) (*(p))
#define RV_FLASH_F32(p) (*(p))
#endif

/* ---- dense layers on a block of b <= RV_DECODE_BLOCK inputs: x [b][in] -> y [b][out] ---- */

/* float32 / float16 weights: y = act(sum_i x_i * w_ij in input order with fmaf, then + bias). */
void rv_dense_f32(const rv_layer *layer, const float *x, size_t b, float *y);
void rv_dense_f16(const rv_layer *layer, const float *x, size_t b, float *y);

/* int8: TFLite reference FULLY_CONNECTED (per-tensor or per-channel requantisation).
   x16 is scratch for b * in int16 values. */
void rv_dense_s8(const rv_layer *layer, const int8_t *x, size_t b, int8_t *y, int16_t *x16);

/* Target fast paths: rv_dense_x86.c (x86-64, any: the kernels of the CPU's instruction-set level are
   chosen at run time) and rv_dense_m7.c (Cortex-M7 FPU and DSP extension). Each handles outputs
   [0, returned) of every latent of the block with the portable kernels' arithmetic; the portable
   kernels do the rest. Other targets have no fast path. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RV_TARGET_X86 1
#elif defined(__GNUC__) && defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
#define RV_TARGET_M7 1
#endif

/* int8 models on Cortex-M7 with the DSP extension (RV_REPACK_S8): rv_model_repack writes every layer
   as a RV_LAYOUT_S8_ROWS4 stream when all of them qualify (else none), and the decode runs each latent
   through all layers in the DSP kernel (rv_dense_s8_m7.c), on int16 activations: the raw int8 values,
   the input zero points folded into the biases.
   Stream of a layer: per group of four rows (the last padded with zero rows; `pairs` = inputs padded to
   a multiple of 4, halved) words of
     - the four rows' biases b' = 2 * (bias - input_zero_point * sum of the row's weights);
     - per input pair p, per row r: the row's weights 2 * w[2p] | 2 * w[2p + 1] << 16 (int16 halves, 0
       past the inputs): what one smlad takes against the input pair;
     - groups left after this one, then per row {multiplier, 2^(s-1) + output_zero_point * 2^s, s} for a
       right shift s = -shift in [1, 22], then the address of the logistic table's float for input 0 (the
       last layer: probabilities[q + 128] as decode_s8_float computes them; else 0).
   The sums are doubled (2 * acc) so that smmlar yields gemmlowp's first rounding; see rv_dense_s8_m7.c.
   A layer qualifies when its activation range is the whole int8 range, every shift is in [-22, -1],
   every |bias| < 2^29 with at most 16384 inputs (|acc| < 2^29 + 255 * 128 * 16384 < 2^30: no int32 sum
   wraps, in TFLite or doubled here) and, for the last layer, the outputs are a multiple of 4. The
   probabilities table (256 floats) follows the streams. rv_model_check refuses the layout: only rv_model_repack writes it, and marks its model
   verified. */
#if defined(RV_TARGET_M7) && defined(__ARM_FEATURE_DSP)
#define RV_REPACK_S8 1
#else
#define RV_REPACK_S8 0
#endif

/* A stream row's addend for the right shift s in [1, 22]: 2^(s-1) + zero_point * 2^s (|it| < 2^30). */
static inline int32_t rv_s8_addend(int32_t right, int32_t zero_point) {
    return ((int32_t)1 << (right - 1)) + zero_point * ((int32_t)1 << right);
}

/* Input pairs of a stream and its words per group of four rows. */
static inline size_t rv_s8_pairs(const rv_layer *layer) { return ((size_t)layer->in + 3u) / 4u * 2u; }
static inline size_t rv_s8_group_words(const rv_layer *layer) { return 4u + rv_s8_pairs(layer) * 4u + 14u; }

/* One latent (int8) through a repacked model's streams, ping-ponging between two int16 buffers [width]
   at x16 (width: the max width padded to a multiple of 4; word-aligned). With probabilities, the last
   layer writes them; else the returned buffer holds its int8 outputs as int16. */
#if RV_REPACK_S8
const int16_t *rv_s8_rows4_decode(const rv_model *model, const int8_t *latent, int16_t *x16, size_t width,
                                  float *probabilities);
#else
static inline const int16_t *rv_s8_rows4_decode(const rv_model *model, const int8_t *latent, int16_t *x16,
                                                 size_t width, float *probabilities) {
    (void)model, (void)latent, (void)width, (void)probabilities;
    return x16;
}
#endif

/* 1 where the float fast path takes every IN_OUT tile of 8 outputs (the portable 8-output kernels
   would be dead code there). */
#if defined(RV_TARGET_M7)
#define RV_FAST_IN_OUT_8 1
#else
#define RV_FAST_IN_OUT_8 0
#endif

#if defined(RV_TARGET_X86) || defined(RV_TARGET_M7)
size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t b, float *y);
size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t b, float *y);
#else
static inline size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t b, float *y) {
    (void)layer, (void)x, (void)b, (void)y;
    return 0;
}
static inline size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t b, float *y) {
    (void)layer, (void)x, (void)b, (void)y;
    return 0;
}
#endif

/* int8 layer on offset inputs x16 (as rv_dense_s8 prepares them); the M7 runs its int8 layers repacked
   (RV_REPACK_S8) and has no kernel for these. */
#if defined(RV_TARGET_X86)
size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t b, int8_t *y);
#else
static inline size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t b, int8_t *y) {
    (void)layer, (void)x16, (void)b, (void)y;
    return 0;
}
#endif

/* x86-64 instruction-set levels, each including the ones before it. rv_dense_x86.c runs the kernels
   of the highest level the CPU has, at most the cap (rv_cpu_cap: the bindings set it from RACKVAE_ISA;
   a core without getenv, as on an MCU). Every level computes the same bits. */
#define RV_ISA_GENERIC 0 /* baseline x86-64 (SSE2): the portable kernels */
#define RV_ISA_AVX2 1    /* AVX2, FMA, F16C */
#define RV_ISA_AVX512 2  /* + AVX-512 F, BW, VL, DQ */
#define RV_ISA_VNNI 3    /* + AVX-512 VNNI */
#define RV_ISA_VBMI 4    /* + AVX-512 VBMI */

#if defined(RV_TARGET_X86)
/* One level's kernels (rv_dense_x86_kernels.h); each returns the outputs it handled, as the hooks. */
typedef struct rv_x86_kernels {
    size_t (*dense_f32)(const rv_layer *layer, const float *x, size_t b, float *y);
    size_t (*dense_f16)(const rv_layer *layer, const float *x, size_t b, float *y);
    size_t (*dense_s8)(const rv_layer *layer, const int16_t *x16, size_t b, int8_t *y);
    size_t (*logistic_dequantize)(const rv_model *model, const int8_t *q, size_t n, float *out); /* or NULL */
    size_t (*sigmoid_f32)(float *values, size_t n);
} rv_x86_kernels;
extern const rv_x86_kernels rv_x86_avx2, rv_x86_avx512, rv_x86_vnni, rv_x86_vbmi;

/* The level the kernels run at, and the cap: levels above it are not used (returns the level now in
   use). */
int rv_cpu_isa(void);
int rv_cpu_cap(int level);

/* The int8 graph's LOGISTIC then DEQUANTIZE of q[0, returned) into out (decode_s8_float's loop). */
size_t rv_logistic_dequantize_fast(const rv_model *model, const int8_t *q, size_t n, float *out);

/* rv_sigmoid_f32 of values[0, returned) (rv_logistic on vectors). */
size_t rv_sigmoid_f32_fast(float *values, size_t n);
#else
static inline int rv_cpu_isa(void) { return RV_ISA_GENERIC; }
static inline int rv_cpu_cap(int level) {
    (void)level;
    return RV_ISA_GENERIC;
}
static inline size_t rv_logistic_dequantize_fast(const rv_model *model, const int8_t *q, size_t n, float *out) {
    (void)model, (void)q, (void)n, (void)out;
    return 0;
}
static inline size_t rv_sigmoid_f32_fast(float *values, size_t n) {
    (void)values, (void)n;
    return 0;
}
#endif

static inline float rv_float_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE half bits -> float, exact (integer arithmetic only). */
static inline float rv_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t magnitude = h & 0x7fffu;
    float subnormal;
    uint32_t bits;
    if (magnitude >= 0x7c00u) { /* infinity, NaN */
        return rv_float_from_bits(sign | 0x7f800000u | ((magnitude & 0x3ffu) << 13));
    }
    if (magnitude >= 0x0400u) { /* normal: rebias the exponent from 15 to 127 */
        return rv_float_from_bits(sign | ((magnitude << 13) + ((uint32_t)(127 - 15) << 23)));
    }
    /* zero and subnormals: mantissa * 2^-24, exact in float */
    subnormal = (float)magnitude * 0x1p-24f;
    memcpy(&bits, &subnormal, sizeof bits);
    return rv_float_from_bits(sign | bits);
}

/* The logistic in place, from an exp built on exactly rounded operations only (bit-identical on
   every IEEE target, unlike libm's expf). */
void rv_sigmoid_f32(float *values, size_t n);

/* The logistic as 1 / (1 + 2^y), y = -x log2(e) with x clamped to [-80, 80] (NaN -> -80; sigmoid(80)
   rounds to 1, sigmoid(-80) ~ 1.8e-35). y = n + f with n = round(y) from the (1.5 * 2^23 + 127) shift
   (a's low bits then hold n + 127, 2^n's biased exponent) and f = y - n in [-0.5, 0.5] by one fmaf
   from x, so small probabilities keep their relative accuracy; 2^f from a degree-5 polynomial
   (relative error 1.1e-7, fitted with 2^0 = 1 exactly) by Estrin's scheme (fewer dependent steps and
   register copies than Horner on the M7's accumulating vfma), 2^n from its exponent bits. Every 2^y
   stays a normal float (no subnormals, whose handling can differ when a process sets flush-to-zero).
   The constants, shared by the portable version (rv_logistic, also compiled into the x86 kernels)
   and the M7's (rv_activation.c): */
#define RV_LOGIT_LIMIT 80.0f
#define RV_NEG_LOG2E (-1.44269504f)
#define RV_ROUND_SHIFT 12583039.0f /* 1.5 * 2^23 + 127: the low bits hold n + 127 */
#define RV_EXP2_C1 0.693147004f
#define RV_EXP2_C2 0.240222424f
#define RV_EXP2_C3 0.0555073358f
#define RV_EXP2_C4 0.00967150927f
#define RV_EXP2_C5 0.00132647087f

static inline float rv_clamp_logit(float x) {
#if defined(__arm__)
    return fminf(fmaxf(x, -RV_LOGIT_LIMIT), RV_LOGIT_LIMIT); /* vmaxnm + vminnm on ARM's FPv5 */
#else
    /* The same values (NaN -> -80) as compare-and-select, which x86 compilers vectorise; fmaxf is
       not, since maxps is not IEEE maxNum. */
    const float low = x > -RV_LOGIT_LIMIT ? x : -RV_LOGIT_LIMIT;
    return low < RV_LOGIT_LIMIT ? low : RV_LOGIT_LIMIT;
#endif
}

static inline float rv_logistic(float x) {
    const float clamped = rv_clamp_logit(x);
    const float a = clamped * RV_NEG_LOG2E + RV_ROUND_SHIFT;
    const float f = fmaf(clamped, RV_NEG_LOG2E, -(a - RV_ROUND_SHIFT)); /* unrounded y - n: no 2^-24 |y| error */
    const float f2 = f * f;
    const float low = fmaf(RV_EXP2_C1, f, 1.0f);
    float mid = fmaf(RV_EXP2_C3, f, RV_EXP2_C2);
    const float high = fmaf(RV_EXP2_C5, f, RV_EXP2_C4);
    uint32_t a_bits;
    float two_f;
    memcpy(&a_bits, &a, sizeof a_bits);
    mid = fmaf(high, f2, mid);
    two_f = fmaf(mid, f2, low);
    return 1.0f / (1.0f + two_f * rv_float_from_bits(a_bits << 23));
}

/* A float16 weight as float. Where the compiler knows IEEE __fp16 (ARM with -mfp16-format=ieee), one
   conversion instruction; elsewhere the integer expansion. Both exact. */
static inline float rv_half_load(const uint16_t *p) {
#if defined(__ARM_FP16_FORMAT_IEEE)
    __fp16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
#else
    return rv_half_to_float(RV_FLASH_U16(p));
#endif
}

/* Bias j of a float layer (0 without bias). */
static inline float rv_bias_f(const rv_layer *layer, size_t j) {
    if (layer->bias == NULL) {
        return 0.0f;
    }
    return layer->bias_dtype == RV_F16 ? rv_half_load((const uint16_t *)layer->bias + j)
                                       : RV_FLASH_F32((const float *)layer->bias + j);
}

/* Outputs j..j+n of a float layer from their sums: + bias, then the activation (rv_finish). */
void rv_store_outputs(const rv_layer *layer, size_t j, const float *sums, size_t n, float *y);

/* Bias added after the sum, then the fused activation (as TFLite's reference kernel orders it). */
static inline float rv_finish(float sum, float bias, uint8_t activation) {
    const float v = sum + bias;
    return (activation == RV_ACT_RELU && !(v > 0.0f)) ? 0.0f : v;
}

/* ---- TFLite / gemmlowp integer arithmetic (right shifts of negative values are arithmetic and
   int32 conversions wrap, as on every two's complement compiler the core targets) ---- */

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating INT32_MIN^2. gemmlowp's
   sign-dependent nudge (2^30, or 1 - 2^30 below 0) and truncating division equal floor((ab + 2^30) /
   2^31) for every product: for ab = k 2^31 + m, 0 <= m < 2^31, both are k + [m >= 2^30]. */
static inline int32_t rv_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t rv_rounding_divide_by_pot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding, as TFLite-Micro builds it); the left shift
   wraps like TFLite's int32 product instead of being undefined. */
static inline int32_t rv_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
    const int left_shift = shift > 0 ? (int)shift : 0;
    const int right_shift = shift > 0 ? 0 : (int)-shift;
    return rv_rounding_divide_by_pot(rv_srdhm((int32_t)(uint32_t)(uint64_t)((int64_t)x * ((int64_t)1 << left_shift)), multiplier),
                                  right_shift);
}


/* rv_multiply_by_quantized_multiplier for a multiplier >= 0 (rv_model_check ensures it) in fewer
   steps: gemmlowp's rounding of a*b / 2^31 (sign-dependent nudge, then truncation) equals
   floor((a*b + 2^30) / 2^31) for every product, and RoundingDivideByPOT rounds ties away from zero. */
static inline int32_t rv_scale_sum(int32_t sum, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0, right = left - shift;
    const int64_t product = (int64_t)(int32_t)((uint32_t)sum << left) * multiplier;
    const int32_t high = (int32_t)((product + ((int64_t)1 << 30)) >> 31);
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u); /* uint32_t: int may have 16 bits */
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0));
}

/* rv_scale_sum for a right shift r = -shift >= 2 (real multipliers below 1/4, the usual case) in one
   64-bit multiply-accumulate (smlal on Cortex-M): with A = sum * multiplier + 2^30, TFLite's two
   roundings give floor((A + 2^(30+r) - [A < 0] 2^31) / 2^(31+r)), and [A < 0] may be read as
   [sum < 0] for r >= 1 (they differ only for A in [0, 2^30), where both give 0). The terms below 2^32
   go in with the product, the 2^(30+r) term rounds the high word's shift. |result| < 2^30. */
static inline int32_t rv_scale_sum_right2(int32_t sum, int32_t multiplier, int32_t shift) {
    const int32_t rounding = (int32_t)(0x40000000u | ((uint32_t)sum & 0x80000000u));
    const int32_t high = (int32_t)(((int64_t)sum * multiplier + rounding) >> 32);
    return ((high >> (-shift - 2)) + 1) >> 1;
}

/* Output j's sum (bias included) requantised, offset and clamped as TFLite's reference kernel does
   (clamped before the zero point is added, so no sum can overflow). */
static inline int8_t rv_requantize_sum(const rv_layer *layer, size_t j, int32_t sum) {
    const size_t k = layer->n_multipliers > 1 ? j : 0;
    const int32_t zero_point = layer->output_quant.zero_point;
    int32_t v = rv_scale_sum(sum, layer->multipliers[k], layer->shifts[k]);
    v = RV_MAX(v, layer->activation_min - zero_point);
    v = RV_MIN(v, layer->activation_max - zero_point);
    return (int8_t)(v + zero_point);
}

/* acc + bias (modulo 2^32, so a hostile file cannot cause signed overflow), requantised. */
static inline int8_t rv_requantize(const rv_layer *layer, size_t j, int32_t acc) {
    const int32_t *bias = (const int32_t *)layer->bias;
    const uint32_t b = bias != NULL ? (uint32_t)RV_FLASH_I32(&bias[j]) : 0u;
    return rv_requantize_sum(layer, j, (int32_t)((uint32_t)acc + b));
}

/* Largest output/input width of the hidden layers and of all layers. */
uint16_t rv_model_max_hidden(const rv_model *model);
uint16_t rv_model_max_width(const rv_model *model);

/* rv_model.verified of a checked model. */
#define RV_MODEL_VERIFIED 0x52564d43u

/* RV_OK for a verified model, else rv_model_check (NULL: RV_ERR_ARGUMENT). */
rv_status rv_model_ready(const rv_model *model);

/* rv_metadata_parse of bytes known to start with "xen:" (len >= 4): no second search. */
rv_status rv_metadata_parse_at(const uint8_t *data, size_t len, rv_metadata *out);

/* Checks metadata values against the limits and (rows * ticks, latent_dim) against the graph. */
rv_status rv_metadata_check(const rv_metadata *meta, uint16_t latent_dim, uint16_t output_size);

#endif
