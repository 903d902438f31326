/* Desktop fast path of the float dense layers (x86-64 with AVX2 + FMA, and F16C for float16), used
 * by rv_dense_f32 / rv_dense_f16 for the IN_OUT layout when the compiler targets such a CPU (the cffi
 * extension is built with -march=native). It computes the same numbers as the portable kernels: every
 * output is still summed in input order, one exactly rounded fused multiply-add per weight, then the
 * bias, then the activation; the vector lanes only hold different outputs (and different latents of
 * the block). Elsewhere this file holds nothing; rv_internal.h then makes the hooks return 0.
 */
#include "rv_internal.h"

#if defined(RV_TARGET_X86)
#include <immintrin.h>

#define RV_ALWAYS_INLINE inline __attribute__((always_inline))

/* Eight consecutive weights as floats; `half` is a constant after inlining. */
static RV_ALWAYS_INLINE __m256 load8(const void *w, size_t offset, int half) {
#if defined(__F16C__)
    if (half) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + offset)));
    }
#endif
    return _mm256_loadu_ps((const float *)w + offset);
}

/* bias + activation for outputs j..j+8, as rv_finish does it (max with +0 as second operand maps
   NaN and -0 to +0 like !(v > 0)). */
static RV_ALWAYS_INLINE __m256 finish8(__m256 acc, const rv_layer *layer, size_t j) {
    float bias[8];
    size_t k;
    __m256 v;
    for (k = 0; k < 8; k++) {
        bias[k] = rv_bias_f(layer, j + k);
    }
    v = _mm256_add_ps(acc, _mm256_loadu_ps(bias));
    return layer->activation == RV_ACT_RELU ? _mm256_max_ps(v, _mm256_setzero_ps()) : v;
}

/* One latent, outputs j0..j0+64: eight independent accumulator chains cover the fused multiply-add
   latency (named variables: arrays get spilled). */
#define RV_ROW_FMA(v) a##v = _mm256_fmadd_ps(xi, load8(layer->weights, row + 8 * (v), half), a##v)
#define RV_ROW_STORE(v) _mm256_storeu_ps(y + j0 + 8 * (v), finish8(a##v, layer, j0 + 8 * (v)))
static RV_ALWAYS_INLINE void single_tile64(const rv_layer *layer, int half, const float *x, size_t j0, float *y) {
    const size_t in = layer->in, out = layer->out;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    size_t i;
    for (i = 0; i < in; i++) {
        const __m256 xi = _mm256_broadcast_ss(x + i);
        const size_t row = i * out + j0;
        RV_ROW_FMA(0);
        RV_ROW_FMA(1);
        RV_ROW_FMA(2);
        RV_ROW_FMA(3);
        RV_ROW_FMA(4);
        RV_ROW_FMA(5);
        RV_ROW_FMA(6);
        RV_ROW_FMA(7);
    }
    RV_ROW_STORE(0);
    RV_ROW_STORE(1);
    RV_ROW_STORE(2);
    RV_ROW_STORE(3);
    RV_ROW_STORE(4);
    RV_ROW_STORE(5);
    RV_ROW_STORE(6);
    RV_ROW_STORE(7);
}

/* One latent, outputs j0..j0+32. */
static RV_ALWAYS_INLINE void single_tile32(const rv_layer *layer, int half, const float *x, size_t j0, float *y) {
    const size_t in = layer->in, out = layer->out;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i;
    for (i = 0; i < in; i++) {
        const __m256 xi = _mm256_broadcast_ss(x + i);
        const size_t row = i * out + j0;
        RV_ROW_FMA(0);
        RV_ROW_FMA(1);
        RV_ROW_FMA(2);
        RV_ROW_FMA(3);
    }
    RV_ROW_STORE(0);
    RV_ROW_STORE(1);
    RV_ROW_STORE(2);
    RV_ROW_STORE(3);
}

/* One latent, outputs j0..j0+8. */
static RV_ALWAYS_INLINE void single_tile8(const rv_layer *layer, int half, const float *x, size_t j0, float *y) {
    const size_t in = layer->in, out = layer->out;
    __m256 a0 = _mm256_setzero_ps();
    size_t i;
    for (i = 0; i < in; i++) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), load8(layer->weights, i * out + j0, half), a0);
    }
    _mm256_storeu_ps(y + j0, finish8(a0, layer, j0));
}

/* Eight latents, outputs j0..j0+8: each weight vector loaded once feeds eight latents. */
#define RV_BLOCK_FMA(b) acc##b = _mm256_fmadd_ps(_mm256_broadcast_ss(x + (b) * in + i), w, acc##b)
#define RV_BLOCK_STORE(b) _mm256_storeu_ps(y + (b) * out + j0, finish8(acc##b, layer, j0))
static RV_ALWAYS_INLINE void block_tile8(const rv_layer *layer, int half, const float *x, size_t j0, float *y) {
    const size_t in = layer->in, out = layer->out;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0,
           acc6 = acc0, acc7 = acc0;
    size_t i;
    for (i = 0; i < in; i++) {
        const __m256 w = load8(layer->weights, i * out + j0, half);
        RV_BLOCK_FMA(0);
        RV_BLOCK_FMA(1);
        RV_BLOCK_FMA(2);
        RV_BLOCK_FMA(3);
        RV_BLOCK_FMA(4);
        RV_BLOCK_FMA(5);
        RV_BLOCK_FMA(6);
        RV_BLOCK_FMA(7);
    }
    RV_BLOCK_STORE(0);
    RV_BLOCK_STORE(1);
    RV_BLOCK_STORE(2);
    RV_BLOCK_STORE(3);
    RV_BLOCK_STORE(4);
    RV_BLOCK_STORE(5);
    RV_BLOCK_STORE(6);
    RV_BLOCK_STORE(7);
}

static RV_ALWAYS_INLINE size_t dense_x86(const rv_layer *layer, int half, const float *x, size_t nb, float *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t handled = out & ~(size_t)7;
    size_t j0, b;
    if (layer->layout != RV_LAYOUT_IN_OUT) {
        return 0;
    }
    if (nb == 8) {
        for (j0 = 0; j0 < handled; j0 += 8) {
            block_tile8(layer, half, x, j0, y);
        }
        return handled;
    }
    for (b = 0; b < nb; b++) {
        for (j0 = 0; j0 + 64 <= handled; j0 += 64) {
            single_tile64(layer, half, x + b * in, j0, y + b * out);
        }
        for (; j0 + 32 <= handled; j0 += 32) {
            single_tile32(layer, half, x + b * in, j0, y + b * out);
        }
        for (; j0 < handled; j0 += 8) {
            single_tile8(layer, half, x + b * in, j0, y + b * out);
        }
    }
    return handled;
}

size_t rv_dense_f32_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_x86(layer, 0, x, nb, y);
}

/* ---- int8: 8 output rows per pass, dot products with vpmaddwd, requantisation on 8 lanes ---- */

/* Sum of each of 8 vectors' lanes, as one vector (lane r = row r). */
static RV_ALWAYS_INLINE __m256i sum_lanes8(__m256i s0, __m256i s1, __m256i s2, __m256i s3, __m256i s4, __m256i s5,
                                           __m256i s6, __m256i s7) {
    const __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    const __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s4, s5), _mm256_hadd_epi32(s6, s7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

/* rv_srdhm on 8 lanes: floor((a*b + 2^30) / 2^31) equals gemmlowp's sign-dependent nudge with
   truncation for every product (ties included); INT32_MIN * INT32_MIN saturates. */
static RV_ALWAYS_INLINE __m256i srdhm8(__m256i a, __m256i b) {
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i min = _mm256_set1_epi32(INT32_MIN);
    const __m256i saturate = _mm256_and_si256(_mm256_cmpeq_epi32(a, b), _mm256_cmpeq_epi32(a, min));
    const __m256i even = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge), 1);
    const __m256i odd = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge), 1);
    const __m256i high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xaa);
    return _mm256_blendv_epi8(high, _mm256_set1_epi32(INT32_MAX), saturate);
}

/* rv_multiply_by_quantized_multiplier on 8 lanes (shifts in [-31, 30]). */
static RV_ALWAYS_INLINE __m256i mbqm8(__m256i x, __m256i multiplier, __m256i shift) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i left = _mm256_max_epi32(shift, zero);
    const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    const __m256i product = srdhm8(_mm256_sllv_epi32(x, left), multiplier);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i remainder = _mm256_and_si256(product, mask);
    const __m256i threshold =
        _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(zero, product)); /* +1 when < 0 */
    return _mm256_sub_epi32(_mm256_srav_epi32(product, right), _mm256_cmpgt_epi32(remainder, threshold));
}

#define RV_ROW_MADD(r)                                                                                       \
    s##r = _mm256_add_epi32(                                                                                 \
        s##r, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + (r) * in + i))), xv))

#define RV_ROW_MADD8(r)                                                                                      \
    s##r = _mm256_add_epi32(                                                                                 \
        s##r, _mm256_madd_epi16(_mm256_zextsi128_si256(_mm_cvtepi8_epi16(                                    \
                                    _mm_loadl_epi64((const __m128i *)(w + (r) * in + i)))),                   \
                                xv))

/* Outputs j0..j0+8 of one latent. */
static RV_ALWAYS_INLINE void s8_rows8(const rv_layer *layer, const int16_t *x, size_t j0, int8_t *y) {
    const size_t in = layer->in;
    const int8_t *w = (const int8_t *)layer->weights + j0 * in;
    const int per_channel = layer->n_multipliers > 1;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    __m256i acc, multiplier, shift, bias, v;
    int32_t lanes[8];
    size_t i = 0, r;
    for (; i + 16 <= in; i += 16) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
        RV_ROW_MADD(0);
        RV_ROW_MADD(1);
        RV_ROW_MADD(2);
        RV_ROW_MADD(3);
        RV_ROW_MADD(4);
        RV_ROW_MADD(5);
        RV_ROW_MADD(6);
        RV_ROW_MADD(7);
    }
    if (i + 8 <= in) { /* eight more inputs: the low halves of the same vectors */
        const __m256i xv = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(x + i)));
        RV_ROW_MADD8(0);
        RV_ROW_MADD8(1);
        RV_ROW_MADD8(2);
        RV_ROW_MADD8(3);
        RV_ROW_MADD8(4);
        RV_ROW_MADD8(5);
        RV_ROW_MADD8(6);
        RV_ROW_MADD8(7);
        i += 8;
    }
    _mm256_storeu_si256((__m256i *)lanes, sum_lanes8(s0, s1, s2, s3, s4, s5, s6, s7));
    for (; i < in; i++) {
        for (r = 0; r < 8; r++) {
            lanes[r] += w[r * in + i] * (int32_t)x[i];
        }
    }
    acc = _mm256_loadu_si256((const __m256i *)lanes);
    bias = layer->bias != NULL ? _mm256_loadu_si256((const __m256i *)((const int32_t *)layer->bias + j0)) : _mm256_setzero_si256();
    multiplier = per_channel ? _mm256_loadu_si256((const __m256i *)(layer->multipliers + j0))
                             : _mm256_set1_epi32(layer->multipliers[0]);
    shift = per_channel ? _mm256_loadu_si256((const __m256i *)(layer->shifts + j0)) : _mm256_set1_epi32(layer->shifts[0]);
    /* wrapping add of the bias, requantise, offset, clamp (results fit int8, so no overflow) */
    v = mbqm8(_mm256_add_epi32(acc, bias), multiplier, shift);
    v = _mm256_add_epi32(v, _mm256_set1_epi32(layer->output_quant.zero_point));
    v = _mm256_max_epi32(v, _mm256_set1_epi32(layer->activation_min));
    v = _mm256_min_epi32(v, _mm256_set1_epi32(layer->activation_max));
    _mm256_storeu_si256((__m256i *)lanes, v);
    for (r = 0; r < 8; r++) {
        y[j0 + r] = (int8_t)lanes[r];
    }
}

size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t handled = out & ~(size_t)7;
    size_t j0, b;
    for (b = 0; b < nb; b++) {
        for (j0 = 0; j0 < handled; j0 += 8) {
            s8_rows8(layer, x16 + b * in, j0, y + b * out);
        }
    }
    return handled;
}

#if defined(__F16C__)
size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return dense_x86(layer, 1, x, nb, y);
}
#else
size_t rv_dense_f16_fast(const rv_layer *layer, const float *x, size_t nb, float *y) {
    (void)layer, (void)x, (void)nb, (void)y;
    return 0;
}
#endif

#endif
