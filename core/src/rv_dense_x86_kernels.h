/* The desktop fast path of the dense layers (x86-64: AVX2 + FMA + F16C; AVX-512, AVX-512 VNNI and
 * VBMI where the CPU has them), used by rv_dense_f32 / rv_dense_f16 for the IN_OUT layout and by
 * rv_dense_s8 for TFLite's OUT_IN int8 layout. Compiled once per instruction-set level: each
 * rv_dense_x86_<level>.c defines RV_X86_LEVEL and RV_X86_TABLE and includes this file, whose functions
 * then carry that level's target (a pragma, so no compiler flag is needed and the rest of the core
 * stays baseline x86-64); rv_dense_x86.c picks the table the CPU runs at run time. Float layers
 * compute the same numbers as the portable kernels at every level: every output is still summed in
 * input order, one exactly rounded fused multiply-add per weight starting from +0, then the bias, then
 * the activation; the vector lanes only hold different outputs (and different latents of the block).
 * int8 sums are exact integers, so their order is free.
 *
 * Why these shapes: a single decode of a note model streams ~370 KB of float32 weights from L2, so
 * what counts is bytes per cycle: AVX-512 takes 64 bytes per load (16 outputs), and the weights of
 * a tile of outputs are read row after row. Zen 4 widens halves 8 at a time faster than 16, so float16
 * stays on 256-bit vectors. Masked loads and stores (AVX-512) let the kernels take every output, so
 * no layer falls back to scalar code for its last few outputs.
 */
#include "rv_internal.h"

#if defined(RV_TARGET_X86)
#include <immintrin.h>

#define RV_X86_AVX512 (RV_X86_LEVEL >= RV_ISA_AVX512)
#define RV_X86_VNNI (RV_X86_LEVEL >= RV_ISA_VNNI)
#define RV_X86_VBMI (RV_X86_LEVEL >= RV_ISA_VBMI)

/* Every function below is compiled for the level's features (and only these: the dispatch checks
   exactly them); GCC and Clang spell the pragma differently. */
#if RV_X86_LEVEL == RV_ISA_AVX2
#define RV_X86_FEATURES "avx2,fma,f16c"
#elif RV_X86_LEVEL == RV_ISA_AVX512
#define RV_X86_FEATURES "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"
#elif RV_X86_LEVEL == RV_ISA_VNNI
#define RV_X86_FEATURES "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"
#elif RV_X86_LEVEL == RV_ISA_VBMI
#define RV_X86_FEATURES "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi"
#endif
#define RV_X86_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define RV_X86_TARGET(features) RV_X86_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#else
#define RV_X86_TARGET(features) RV_X86_PRAGMA(GCC target(features))
#endif
RV_X86_TARGET(RV_X86_FEATURES)

#define RV_ALWAYS_INLINE inline __attribute__((always_inline))

/* ---- float, 8 outputs per 256-bit vector (AVX2; float16 also with AVX-512) ---- */

/* Outputs offset..offset+n (n <= 8; n < 8 only with AVX-512 masks) of a float32 or float16 (`half`)
   array as floats, zero in the lanes past n. `half` and n are constants after inlining. */
static RV_ALWAYS_INLINE __m256 load8(const void *p, size_t offset, int half, unsigned n) {
    (void)half, (void)n;
#if RV_X86_AVX512
    if (n < 8) {
        const __mmask8 mask = (__mmask8)((1u << n) - 1u);
        return half ? _mm256_cvtph_ps(_mm_maskz_loadu_epi16(mask, (const uint16_t *)p + offset))
                    : _mm256_maskz_loadu_ps(mask, (const float *)p + offset);
    }
#endif
    if (half) {
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + offset)));
    }
    return _mm256_loadu_ps((const float *)p + offset);
}

static RV_ALWAYS_INLINE void store8(float *y, __m256 v, unsigned n) {
    (void)n;
#if RV_X86_AVX512
    if (n < 8) {
        _mm256_mask_storeu_ps(y, (__mmask8)((1u << n) - 1u), v);
        return;
    }
#endif
    _mm256_storeu_ps(y, v);
}

/* Bias j..j+n as a vector (zero without bias). Loaded straight as a vector: a vector read of floats
   just stored one by one would stall on store forwarding. */
static RV_ALWAYS_INLINE __m256 bias8(const rv_layer *layer, size_t j, unsigned n) {
    if (layer->bias == NULL) {
        return _mm256_setzero_ps();
    }
    return load8(layer->bias, j, layer->bias_dtype == RV_F16, n);
}

/* bias + activation for outputs j..j+8, as rv_finish does it (max with +0 as second operand maps
   NaN and -0 to +0 like !(v > 0)). */
static RV_ALWAYS_INLINE __m256 finish8(__m256 acc, const rv_layer *layer, size_t j, unsigned n) {
    const __m256 v = _mm256_add_ps(acc, bias8(layer, j, n));
    return layer->activation == RV_ACT_RELU ? _mm256_max_ps(v, _mm256_setzero_ps()) : v;
}

/* One latent, outputs j0..j0+64: eight independent accumulator chains cover the fused multiply-add
   latency (named variables: arrays get spilled). */
#define RV_ROW_FMA(v) a##v = _mm256_fmadd_ps(xi, load8(layer->weights, row + 8 * (v), half, 8), a##v)
#define RV_ROW_STORE(v) _mm256_storeu_ps(y + j0 + 8 * (v), finish8(a##v, layer, j0 + 8 * (v), 8))
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

/* One latent, outputs j0..j0+n (n <= 8). */
static RV_ALWAYS_INLINE void single_tile8(const rv_layer *layer, int half, const float *x, size_t j0, float *y,
                                          unsigned n) {
    const size_t in = layer->in, out = layer->out;
    __m256 a0 = _mm256_setzero_ps();
    size_t i;
    for (i = 0; i < in; i++) {
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i), load8(layer->weights, i * out + j0, half, n), a0);
    }
    store8(y + j0, finish8(a0, layer, j0, n), n);
}

/* Eight latents, outputs j0..j0+n (n <= 8): each weight vector loaded once feeds eight latents. */
#define RV_BLOCK_FMA(b) acc##b = _mm256_fmadd_ps(_mm256_broadcast_ss(x + (b) * in + i), w, acc##b)
#define RV_BLOCK_STORE(b) store8(y + (b) * out + j0, finish8(acc##b, layer, j0, n), n)
static RV_ALWAYS_INLINE void block_tile8(const rv_layer *layer, int half, const float *x, size_t j0, float *y,
                                         unsigned n) {
    const size_t in = layer->in, out = layer->out;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0,
           acc6 = acc0, acc7 = acc0;
    size_t i;
    for (i = 0; i < in; i++) {
        const __m256 w = load8(layer->weights, i * out + j0, half, n);
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

/* Outputs [0, returned) of every latent, 8 per vector; with AVX-512 the last n < 8 too (masked). */
static RV_ALWAYS_INLINE size_t dense8(const rv_layer *layer, int half, const float *x, size_t nb, float *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t full = out & ~(size_t)7;
#if RV_X86_AVX512
    const unsigned rest = (unsigned)(out - full);
#endif
    size_t j0, b;
    if (nb == 8) {
        for (j0 = 0; j0 < full; j0 += 8) {
            block_tile8(layer, half, x, j0, y, 8);
        }
#if RV_X86_AVX512
        if (rest > 0) {
            block_tile8(layer, half, x, full, y, rest);
        }
        return out;
#else
        return full;
#endif
    }
    for (b = 0; b < nb; b++) {
        for (j0 = 0; j0 + 64 <= full; j0 += 64) {
            single_tile64(layer, half, x + b * in, j0, y + b * out);
        }
        for (; j0 + 32 <= full; j0 += 32) {
            single_tile32(layer, half, x + b * in, j0, y + b * out);
        }
        for (; j0 < full; j0 += 8) {
            single_tile8(layer, half, x + b * in, j0, y + b * out, 8);
        }
#if RV_X86_AVX512
        if (rest > 0) {
            single_tile8(layer, half, x + b * in, full, y + b * out, rest);
        }
#endif
    }
#if RV_X86_AVX512
    return out;
#else
    return full;
#endif
}

#if RV_X86_AVX512
/* ---- float32, 16 outputs per 512-bit vector (AVX-512) ---- */

static RV_ALWAYS_INLINE __mmask16 mask16(unsigned n) { return (__mmask16)((1u << n) - 1u); } /* n <= 16 */

/* Bias j..j+16 where mask selects, as a vector (zero without bias and elsewhere). */
static RV_ALWAYS_INLINE __m512 bias16(const rv_layer *layer, size_t j, __mmask16 mask) {
    if (layer->bias == NULL) {
        return _mm512_setzero_ps();
    }
    if (layer->bias_dtype == RV_F16) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)layer->bias + j));
    }
    return _mm512_maskz_loadu_ps(mask, (const float *)layer->bias + j);
}

/* bias + activation, stored to the outputs j..j+16 of y that mask selects (as finish8) */
static RV_ALWAYS_INLINE void finish16(__m512 acc, const rv_layer *layer, size_t j, __mmask16 mask, float *y) {
    __m512 v = _mm512_add_ps(acc, bias16(layer, j, mask));
    if (layer->activation == RV_ACT_RELU) {
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    }
    _mm512_mask_storeu_ps(y + j, mask, v);
}

/* One latent, up to 8 vectors of outputs anywhere in the row (`vectors`, a constant after inlining):
   vector v holds the outputs of j[v]..j[v]+16 that mask[v] selects (masked loads and stores: nothing
   read or written past them). One accumulator chain per vector; each row of weights is read once. */
#define RV_P_FMA(v)                                                                                          \
    if (vectors > (v)) a##v = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(mask[v], w + j[v]), a##v)
#define RV_P_STORE(v)                                                                                        \
    if (vectors > (v)) finish16(a##v, layer, j[v], mask[v], y)
static RV_ALWAYS_INLINE void f32_pass(const rv_layer *layer, const float *x, const size_t j[8], const __mmask16 mask[8],
                                      float *y, const unsigned vectors) {
    const size_t in = layer->in, out = layer->out;
    const float *w = (const float *)layer->weights;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    size_t i;
    for (i = 0; i < in; i++, w += out) {
        const __m512 xi = _mm512_set1_ps(x[i]);
        RV_P_FMA(0);
        RV_P_FMA(1);
        RV_P_FMA(2);
        RV_P_FMA(3);
        RV_P_FMA(4);
        RV_P_FMA(5);
        RV_P_FMA(6);
        RV_P_FMA(7);
    }
    RV_P_STORE(0);
    RV_P_STORE(1);
    RV_P_STORE(2);
    RV_P_STORE(3);
    RV_P_STORE(4);
    RV_P_STORE(5);
    RV_P_STORE(6);
    RV_P_STORE(7);
}

/* f32_pass for 1..8 vectors: no load or multiply-add for unused ones. */
static void f32_pass_any(const rv_layer *layer, const float *x, const size_t j[8], const __mmask16 mask[8], float *y,
                         unsigned vectors) {
    switch (vectors) {
    case 1:
        f32_pass(layer, x, j, mask, y, 1);
        break;
    case 2:
        f32_pass(layer, x, j, mask, y, 2);
        break;
    case 3:
        f32_pass(layer, x, j, mask, y, 3);
        break;
    case 4:
        f32_pass(layer, x, j, mask, y, 4);
        break;
    case 5:
        f32_pass(layer, x, j, mask, y, 5);
        break;
    case 6:
        f32_pass(layer, x, j, mask, y, 6);
        break;
    case 7:
        f32_pass(layer, x, j, mask, y, 7);
        break;
    default:
        f32_pass(layer, x, j, mask, y, 8);
        break;
    }
}

/* Eight latents, outputs j0..j0+n (n <= 16): each weight vector loaded once feeds eight latents. */
#define RV_ZB_FMA(b) acc##b = _mm512_fmadd_ps(_mm512_set1_ps(x[(b) * in + i]), w, acc##b)
#define RV_ZB_STORE(b) finish16(acc##b, layer, j0, mask16(n), y + (b) * out)
static RV_ALWAYS_INLINE void f32_block16(const rv_layer *layer, const float *x, size_t j0, float *y, unsigned n) {
    const size_t in = layer->in, out = layer->out;
    const float *weights = (const float *)layer->weights + j0;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0, acc4 = acc0, acc5 = acc0,
           acc6 = acc0, acc7 = acc0;
    size_t i;
    for (i = 0; i < in; i++) {
        const __m512 w = _mm512_maskz_loadu_ps(mask16(n), weights + i * out);
        RV_ZB_FMA(0);
        RV_ZB_FMA(1);
        RV_ZB_FMA(2);
        RV_ZB_FMA(3);
        RV_ZB_FMA(4);
        RV_ZB_FMA(5);
        RV_ZB_FMA(6);
        RV_ZB_FMA(7);
    }
    RV_ZB_STORE(0);
    RV_ZB_STORE(1);
    RV_ZB_STORE(2);
    RV_ZB_STORE(3);
    RV_ZB_STORE(4);
    RV_ZB_STORE(5);
    RV_ZB_STORE(6);
    RV_ZB_STORE(7);
}

/* Every output of every latent. */
static size_t dense_f32_avx512(const rv_layer *layer, const float *x, size_t nb, float *y) {
    const size_t in = layer->in, out = layer->out;
    /* When every row starts at the same offset in a cache line (out a multiple of 16), the first
       outputs up to a line boundary go first, so that each 64-byte load reads one line, not two. */
    const unsigned head = out % 16 == 0 ? (unsigned)((0u - (uintptr_t)layer->weights) % 64u / sizeof(float)) : 0u;
    size_t j0, b;
    if (nb == 8) {
        for (j0 = 0; j0 + 16 <= out; j0 += 16) {
            f32_block16(layer, x, j0, y, 16);
        }
        if (j0 < out) {
            f32_block16(layer, x, j0, y, (unsigned)(out - j0));
        }
        return out;
    }
    for (b = 0; b < nb; b++, x += in, y += out) { /* passes of 8 vectors, the outputs before the first line boundary first */
        size_t j[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        __mmask16 mask[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        unsigned v = 0;
        if (head > 0) {
            mask[v++] = mask16(head);
        }
        for (j0 = head; j0 < out; j0 += 16) {
            j[v] = j0;
            mask[v++] = mask16((unsigned)RV_MIN(out - j0, (size_t)16));
            if (v == 8) {
                f32_pass_any(layer, x, j, mask, y, v);
                v = 0;
            }
        }
        if (v > 0) {
            f32_pass_any(layer, x, j, mask, y, v);
        }
    }
    return out;
}
#endif

static size_t dense_f32(const rv_layer *layer, const float *x, size_t nb, float *y) {
    if (layer->layout != RV_LAYOUT_IN_OUT) {
        return 0;
    }
#if RV_X86_AVX512
    return dense_f32_avx512(layer, x, nb, y);
#else
    return dense8(layer, 0, x, nb, y);
#endif
}

static size_t dense_f16(const rv_layer *layer, const float *x, size_t nb, float *y) {
    return layer->layout == RV_LAYOUT_IN_OUT ? dense8(layer, 1, x, nb, y) : 0;
}

#if RV_X86_VNNI
/* ---- int8 with AVX-512 VNNI: 16 output rows per pass ----
   After a ReLU (input zero point -128: every layer but the first) the offset inputs x16 = x + 128 fit
   a byte, and vpdpbusd (unsigned by signed bytes) does 64 multiply-adds. Other inputs span 9 bits
   and go in as int16 to vpdpwssd (`wide`), 32 per instruction, the weights widened as they load. */

/* Sums of each of 16 vectors' lanes, as one vector (lane r = vector r). */
static RV_ALWAYS_INLINE __m512i pair_sums(__m512i a, __m512i b) {
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
static RV_ALWAYS_INLINE __m512i quad_sums(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = pair_sums(a, b), cd = pair_sums(c, d); /* each 128-bit lane: a, b, a, b partials */
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}
static RV_ALWAYS_INLINE __m512i lane_sums(__m512i a, __m512i b) { /* 128-bit lanes 0+1, 2+3 of a, then of b */
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* One chunk of inputs (64 bytes, or 32 int16 when wide) from index i, the lanes `mask` selects. */
static RV_ALWAYS_INLINE __m512i inputs_at(const void *x, size_t i, __mmask64 mask, const int wide) {
    return wide ? _mm512_maskz_loadu_epi16((__mmask32)mask, (const int16_t *)x + i)
                : _mm512_maskz_loadu_epi8(mask, (const uint8_t *)x + i);
}

/* One chunk of a row's weights, the bytes `mask` selects, as the multiply-add takes them. */
static RV_ALWAYS_INLINE __m512i weights_at(const int8_t *w, __mmask64 mask, const int wide) {
    return wide ? _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8((__mmask32)mask, w)) : _mm512_maskz_loadu_epi8(mask, w);
}

static RV_ALWAYS_INLINE __m512i multiply_add(__m512i acc, __m512i x, __m512i w, const int wide) {
    return wide ? _mm512_dpwssd_epi32(acc, x, w) : _mm512_dpbusd_epi32(acc, x, w);
}

/* One row's dot product with the inputs, as 16 partial sums. Rows of one or two chunks (`chunks`, a
   constant) take the inputs held in x0, x1; longer rows (chunks 0) load them from x. `tail` selects
   the last chunk's lanes: nothing is read past the row or the inputs. */
static RV_ALWAYS_INLINE __m512i row_dot(const int8_t *w, size_t in, __mmask64 tail, const void *x, __m512i x0,
                                        __m512i x1, const unsigned chunks, const int wide) {
    const size_t chunk = wide ? 32u : 64u;
    __m512i acc = _mm512_setzero_si512();
    size_t i;
    if (chunks == 1) {
        return multiply_add(acc, x0, weights_at(w, tail, wide), wide);
    }
    if (chunks == 2) {
        acc = multiply_add(acc, x0, weights_at(w, ~(__mmask64)0, wide), wide);
        return multiply_add(acc, x1, weights_at(w + chunk, tail, wide), wide);
    }
    for (i = 0; i + chunk < in; i += chunk) {
        acc = multiply_add(acc, inputs_at(x, i, ~(__mmask64)0, wide), weights_at(w + i, ~(__mmask64)0, wide), wide);
    }
    return multiply_add(acc, inputs_at(x, i, tail, wide), weights_at(w + i, tail, wide), wide);
}

/* The sums of 16 consecutive rows from w, as one vector (lane r = row r); in a partial group (n < 16)
   the rows past n repeat row n - 1, so nothing is read past the layer's last row. */
#define RV_DOT(r)                                                                                            \
    a##r = row_dot(w, in, tail, x, x0, x1, chunks, wide);                                                    \
    w += (r) + 1u < n ? in : 0u
static RV_ALWAYS_INLINE __m512i dot16(const int8_t *w, size_t in, __mmask64 tail, unsigned n, const void *x,
                                      __m512i x0, __m512i x1, const unsigned chunks, const int wide) {
    __m512i a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
    RV_DOT(0);
    RV_DOT(1);
    RV_DOT(2);
    RV_DOT(3);
    RV_DOT(4);
    RV_DOT(5);
    RV_DOT(6);
    RV_DOT(7);
    RV_DOT(8);
    RV_DOT(9);
    RV_DOT(10);
    RV_DOT(11);
    RV_DOT(12);
    RV_DOT(13);
    RV_DOT(14);
    RV_DOT(15);
    return lane_sums(lane_sums(quad_sums(a0, a1, a2, a3), quad_sums(a4, a5, a6, a7)),
                     lane_sums(quad_sums(a8, a9, a10, a11), quad_sums(a12, a13, a14, a15)));
}

/* rv_multiply_by_quantized_multiplier on 16 lanes (multipliers >= 0, shifts in [-31, 30], as
   rv_model_check ensures): rv_scale_sum_right2 where every lane's shift is <= -2 (real multipliers
   below 1/4, the usual case), else rv_scale_sum. */
static RV_ALWAYS_INLINE __m512i scale16(__m512i sum, __m512i multiplier, __m512i shift, __mmask16 lanes) {
    const __m512i one = _mm512_set1_epi32(1);
    __m512i even, odd, high, right;
    if (!_mm512_mask_cmpgt_epi32_mask(lanes, shift, _mm512_set1_epi32(-2))) {
        /* the 64-bit products of the even and of the odd lanes plus their sign-dependent rounding
           (0x40000000 | sign bit, sign-extended); the high words hold the results */
        const __m512i rounding =
            _mm512_or_si512(_mm512_and_si512(sum, _mm512_set1_epi32(INT32_MIN)), _mm512_set1_epi32(0x40000000));
        even = _mm512_add_epi64(_mm512_mul_epi32(sum, multiplier), _mm512_srai_epi64(_mm512_slli_epi64(rounding, 32), 32));
        odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(sum, 32), _mm512_srli_epi64(multiplier, 32)),
                               _mm512_srai_epi64(rounding, 32));
        high = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(even, 32), odd);
        right = _mm512_sub_epi32(_mm512_set1_epi32(-2), shift);
        return _mm512_srai_epi32(_mm512_add_epi32(_mm512_srav_epi32(high, right), one), 1);
    }
    {
        /* high = floor((sum << left) * multiplier + 2^30) / 2^31), then / 2^right rounded half away */
        const __m512i zero = _mm512_setzero_si512();
        const __m512i nudge = _mm512_set1_epi64((int64_t)1 << 30);
        const __m512i shifted = _mm512_sllv_epi32(sum, _mm512_max_epi32(shift, zero));
        const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero)), one);
        __m512i remainder, threshold;
        even = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(shifted, multiplier), nudge), 1);
        odd = _mm512_slli_epi64(
            _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(shifted, 32), _mm512_srli_epi64(multiplier, 32)), nudge), 1);
        high = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(even, 32), odd);
        right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
        remainder = _mm512_and_si512(high, mask);
        threshold = _mm512_mask_add_epi32(_mm512_srai_epi32(mask, 1), _mm512_cmplt_epi32_mask(high, zero),
                                          _mm512_srai_epi32(mask, 1), one); /* +1 when < 0 */
        return _mm512_mask_add_epi32(_mm512_srav_epi32(high, right), _mm512_cmpgt_epi32_mask(remainder, threshold),
                                     _mm512_srav_epi32(high, right), one);
    }
}

/* What requantises a layer's sums, read once (stores through y may alias the layer). */
typedef struct s8_out {
    const int32_t *bias, *multipliers, *shifts;
    int per_channel;
    __m512i zero_point, low, high, multiplier0, shift0;
} s8_out;

static RV_ALWAYS_INLINE s8_out s8_out_of(const rv_layer *layer) {
    s8_out o;
    o.bias = (const int32_t *)layer->bias;
    o.multipliers = layer->multipliers;
    o.shifts = layer->shifts;
    o.per_channel = layer->n_multipliers > 1;
    o.zero_point = _mm512_set1_epi32(layer->output_quant.zero_point);
    o.low = _mm512_set1_epi32(layer->activation_min);
    o.high = _mm512_set1_epi32(layer->activation_max);
    o.multiplier0 = _mm512_set1_epi32(layer->multipliers[0]);
    o.shift0 = _mm512_set1_epi32(layer->shifts[0]);
    return o;
}

/* Outputs j0..j0+n (n <= 16) from their sums: bias (wrapping), requantised, offset and clamped as
   rv_requantize. */
static RV_ALWAYS_INLINE void s8_store16(const s8_out *o, __m512i acc, size_t j0, unsigned n, int8_t *y) {
    const __mmask16 lanes = (__mmask16)((1u << n) - 1u);
    if (o->bias != NULL) {
        acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(lanes, o->bias + j0));
    }
    acc = scale16(acc, o->per_channel ? _mm512_maskz_loadu_epi32(lanes, o->multipliers + j0) : o->multiplier0,
                  o->per_channel ? _mm512_maskz_loadu_epi32(lanes, o->shifts + j0) : o->shift0, lanes);
    acc = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(acc, o->zero_point), o->low), o->high);
    _mm_mask_storeu_epi8(y + j0, lanes, _mm512_cvtepi32_epi8(acc));
}

/* Every output of one latent, 16 rows per pass (full groups with n a constant, then the rest). */
static RV_ALWAYS_INLINE void s8_latent(const rv_layer *layer, const void *x, __m512i x0, __m512i x1, int8_t *y,
                                       const unsigned chunks, const int wide) {
    const size_t in = layer->in, out = layer->out, chunk = wide ? 32u : 64u;
    const __mmask64 tail = ~(__mmask64)0 >> (64u - ((in - 1u) % chunk + 1u));
    const int8_t *w = (const int8_t *)layer->weights;
    const s8_out o = s8_out_of(layer);
    size_t j0;
    for (j0 = 0; j0 + 16 <= out; j0 += 16) {
        s8_store16(&o, dot16(w + j0 * in, in, tail, 16, x, x0, x1, chunks, wide), j0, 16, y);
    }
    if (j0 < out) {
        const unsigned n = (unsigned)(out - j0);
        s8_store16(&o, dot16(w + j0 * in, in, tail, n, x, x0, x1, chunks, wide), j0, n, y);
    }
}

/* s8_latent for the row length: the constant `chunks` picks the code. */
static RV_ALWAYS_INLINE void s8_latent_any(const rv_layer *layer, const void *x, int8_t *y, const int wide) {
    const size_t in = layer->in, chunk = wide ? 32u : 64u;
    const __mmask64 all = ~(__mmask64)0, tail = all >> (64u - ((in - 1u) % chunk + 1u));
    if (in <= chunk) {
        s8_latent(layer, x, inputs_at(x, 0, tail, wide), _mm512_setzero_si512(), y, 1, wide);
    } else if (in <= 2 * chunk) {
        s8_latent(layer, x, inputs_at(x, 0, all, wide), inputs_at(x, chunk, tail, wide), y, 2, wide);
    } else {
        s8_latent(layer, x, _mm512_setzero_si512(), _mm512_setzero_si512(), y, 0, wide);
    }
}

/* Rows of 32 or 48 inputs (k = in / 16 = 2 or 3, a constant) after a ReLU: 16 rows are 4k contiguous
   vectors in which every 128-bit lane lies in one row, so vpdpbusd takes the rows as they are, against
   u laid out to match (lane L of vector v: the inputs of row lane (4v + L) % k). quad_sums gives every
   lane's sum (the group's lane g at dword 4 (g % 4) + g % 16 / 4 of sum vector g / 16), and k permutes
   add each row's k lane sums: fewer instructions than a vector and a 16-way reduction per row. */
static RV_ALWAYS_INLINE __m512i dot16_lanes(const int8_t *w, size_t bytes, const __m512i pattern[3],
                                            const __m512i index[3], const __mmask16 third[3], const unsigned k) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i lanes[12], sums[3], acc = zero;
    unsigned v, t;
    for (v = 0; v < 4 * k; v++) {
        const size_t left = bytes > 64 * v ? bytes - 64 * v : 0;
        const __mmask64 mask = left >= 64 ? ~(__mmask64)0 : left == 0 ? 0 : ~(__mmask64)0 >> (64 - left);
        lanes[v] = _mm512_dpbusd_epi32(zero, pattern[4 * v % k], _mm512_maskz_loadu_epi8(mask, w + 64 * v));
    }
    for (t = 0; t < k; t++) {
        sums[t] = quad_sums(lanes[4 * t], lanes[4 * t + 1], lanes[4 * t + 2], lanes[4 * t + 3]);
    }
    for (t = 0; t < k; t++) {
        __m512i term = _mm512_permutex2var_epi32(sums[0], index[t], sums[1]);
        if (k == 3) {
            term = _mm512_mask_permutexvar_epi32(term, third[t], index[t], sums[2]);
        }
        acc = _mm512_add_epi32(acc, term);
    }
    return acc;
}

static RV_ALWAYS_INLINE void s8_latent_lanes(const rv_layer *layer, const uint8_t *u, int8_t *y, const unsigned k) {
    const size_t in = 16u * k, out = layer->out;
    const int8_t *w = (const int8_t *)layer->weights;
    const s8_out o = s8_out_of(layer);
    const __m512i inputs = _mm512_maskz_loadu_epi8(~(__mmask64)0 >> (64u - in), u);
    __m512i pattern[3], index[3];
    __mmask16 third[3] = {0, 0, 0};
    size_t j0;
    unsigned t, r;
    for (t = 0; t < k; t++) { /* pattern t: lane L holds row lane (t + L) % k; index t: row r's lane kr + t */
        int64_t qwords[8];
        int32_t dwords[16];
        for (r = 0; r < 4; r++) {
            qwords[2 * r] = 2 * ((t + r) % k);
            qwords[2 * r + 1] = 2 * ((t + r) % k) + 1;
        }
        for (r = 0; r < 16; r++) {
            const unsigned g = k * r + t;
            dwords[r] = (int32_t)(4 * (g % 4) + g % 16 / 4 + (g & 16));
            third[t] |= (__mmask16)((g >= 32) << r);
        }
        pattern[t] = _mm512_permutexvar_epi64(_mm512_loadu_si512((const void *)qwords), inputs);
        index[t] = _mm512_loadu_si512((const void *)dwords);
    }
    for (j0 = 0; j0 + 16 <= out; j0 += 16) {
        s8_store16(&o, dot16_lanes(w + j0 * in, 16 * in, pattern, index, third, k), j0, 16, y);
    }
    if (j0 < out) {
        const unsigned n = (unsigned)(out - j0);
        s8_store16(&o, dot16_lanes(w + j0 * in, n * in, pattern, index, third, k), j0, n, y);
    }
}

#if RV_X86_VBMI
/* Rows of at most 16 inputs, four per vpdpbusd: vpermb spreads four consecutive rows over the four
   128-bit lanes (row k's bytes at 16k, zeros past the inputs), so the lane sums of four such vectors
   (rows 4e + k in lane k of vector e) are a group of 16 sums, put in row order by one vpermd. u holds
   x16 + c (c = 128 + input zero point); with c != 0 the sums lose c * sum w, the same dot products
   with c in place of u. */
static RV_ALWAYS_INLINE __m512i spread_dot4(const int8_t *w, __mmask64 rows, __mmask64 spread, __m512i index,
                                            __m512i u, __m512i c, int32_t c_value) {
    const __m512i weights = _mm512_maskz_permutexvar_epi8(spread, index, _mm512_maskz_loadu_epi8(rows, w));
    const __m512i zero = _mm512_setzero_si512();
    const __m512i sums = _mm512_dpbusd_epi32(zero, u, weights);
    return c_value != 0 ? _mm512_sub_epi32(sums, _mm512_dpbusd_epi32(zero, c, weights)) : sums;
}

/* The bytes of the first k rows of in bytes each (k <= 4). */
static RV_ALWAYS_INLINE __mmask64 rows_mask(size_t k, size_t in) {
    return k == 0 ? 0 : ~(__mmask64)0 >> (64u - k * in);
}

static RV_ALWAYS_INLINE __m512i dot16_short(const int8_t *w, size_t in, unsigned n, __mmask64 spread, __m512i index,
                                            __m512i order, __m512i u, __m512i c, int32_t c_value) {
    const __mmask64 full = rows_mask(4, in);
    const __m512i v0 = spread_dot4(w, n >= 4 ? full : rows_mask(n, in), spread, index, u, c, c_value);
    const __m512i v1 = spread_dot4(w + 4 * in, n >= 8 ? full : rows_mask(n > 4 ? n - 4 : 0, in), spread, index, u, c, c_value);
    const __m512i v2 = spread_dot4(w + 8 * in, n >= 12 ? full : rows_mask(n > 8 ? n - 8 : 0, in), spread, index, u, c, c_value);
    const __m512i v3 = spread_dot4(w + 12 * in, n >= 16 ? full : rows_mask(n > 12 ? n - 12 : 0, in), spread, index, u, c, c_value);
    return _mm512_permutexvar_epi32(order, quad_sums(v0, v1, v2, v3));
}

static void s8_latent_short(const rv_layer *layer, const int16_t *x16, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    const int8_t *w = (const int8_t *)layer->weights;
    const s8_out o = s8_out_of(layer);
    const int32_t c_value = 128 + layer->input_quant.zero_point;
    const __mmask16 inputs = (__mmask16)((1u << in) - 1u);
    const __mmask64 spread = (__mmask64)inputs * 0x0001000100010001u;
    const __m512i lanes = _mm512_set1_epi8((char)(16 - in)); /* index: byte 16k + i <- k * in + i */
    const __m512i iota = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44,
                                         43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24,
                                         23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m256i x = _mm256_maskz_add_epi16(inputs, _mm256_maskz_loadu_epi16(inputs, x16), _mm256_set1_epi16((int16_t)c_value));
    const __m512i u = _mm512_broadcast_i32x4(_mm256_cvtepi16_epi8(x));
    const __m512i c = _mm512_maskz_set1_epi8(spread, (char)c_value);
    __m512i index = _mm512_mask_sub_epi8(iota, 0xffffffffffff0000u, iota, lanes);
    size_t j0;
    index = _mm512_mask_sub_epi8(index, 0xffffffff00000000u, index, lanes);
    index = _mm512_mask_sub_epi8(index, 0xffff000000000000u, index, lanes);
    for (j0 = 0; j0 + 16 <= out; j0 += 16) {
        s8_store16(&o, dot16_short(w + j0 * in, in, 16, spread, index, order, u, c, c_value), j0, 16, y);
    }
    if (j0 < out) {
        const unsigned n = (unsigned)(out - j0);
        s8_store16(&o, dot16_short(w + j0 * in, in, n, spread, index, order, u, c, c_value), j0, n, y);
    }
}
#endif

static size_t dense_s8(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    uint8_t u[RV_MAX_WIDTH];
    size_t b, i;
    if (layer->layout != RV_LAYOUT_OUT_IN) {
        return 0;
    }
    for (b = 0; b < nb; b++, x16 += in, y += out) {
#if RV_X86_VBMI
        if (in <= 16) {
            s8_latent_short(layer, x16, y);
            continue;
        }
#endif
        if (layer->input_quant.zero_point != -128) {
            s8_latent_any(layer, x16, y, 1);
            continue;
        }
        for (i = 0; i < in; i += 32) { /* x16 = x + 128 as bytes */
            const __mmask32 lanes = in - i >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << (in - i)) - 1u;
            _mm256_mask_storeu_epi8(u + i, lanes, _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi16(lanes, x16 + i)));
        }
        if (in == 32) {
            s8_latent_lanes(layer, u, y, 2);
        } else if (in == 48) {
            s8_latent_lanes(layer, u, y, 3);
        } else {
            s8_latent_any(layer, u, y, 0);
        }
    }
    return out;
}
#else
/* ---- int8 with AVX2: 8 output rows per pass, dot products with vpmaddwd ---- */

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

/* acc + bias (wrapping), requantised, offset and clamped (rv_requantize on 8 lanes; the results fit
   int8, so nothing overflows). */
static RV_ALWAYS_INLINE __m256i requantize8(const rv_layer *layer, __m256i acc, __m256i bias, __m256i multiplier,
                                            __m256i shift) {
    __m256i v = mbqm8(_mm256_add_epi32(acc, bias), multiplier, shift);
    v = _mm256_add_epi32(v, _mm256_set1_epi32(layer->output_quant.zero_point));
    v = _mm256_max_epi32(v, _mm256_set1_epi32(layer->activation_min));
    return _mm256_min_epi32(v, _mm256_set1_epi32(layer->activation_max));
}


/* Sum of each of 8 vectors' lanes, as one vector (lane r = row r). */
static RV_ALWAYS_INLINE __m256i sum_lanes8(__m256i s0, __m256i s1, __m256i s2, __m256i s3, __m256i s4, __m256i s5,
                                           __m256i s6, __m256i s7) {
    const __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    const __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s4, s5), _mm256_hadd_epi32(s6, s7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
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
    v = requantize8(layer, acc, bias, multiplier, shift);
    _mm256_storeu_si256((__m256i *)lanes, v);
    for (r = 0; r < 8; r++) {
        y[j0 + r] = (int8_t)lanes[r];
    }
}

static size_t dense_s8(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    const size_t handled = out & ~(size_t)7;
    size_t j0, b;
    if (layer->layout != RV_LAYOUT_OUT_IN) {
        return 0;
    }
    for (b = 0; b < nb; b++) {
        for (j0 = 0; j0 < handled; j0 += 8) {
            s8_rows8(layer, x16 + b * in, j0, y + b * out);
        }
    }
    return handled;
}

#endif

#if RV_X86_VBMI
/* The int8 graph's LOGISTIC, then DEQUANTIZE, 64 outputs per pass (decode_s8_float's scalar loop, the
   same numbers): the 256-entry table as two 128-byte halves, one vpermi2b each, picked by the index's
   top bit; then the exact int -> float conversion and the one multiply, 16 lanes at a time. */
#define RV_DEQUANTIZE16(p)                                                                                  \
    _mm512_mask_storeu_ps(out + k + 16 * (p), (__mmask16)(lanes >> (16 * (p))),                              \
                          _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(                                 \
                                            _mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(v, p)), zero)),   \
                                        scale))
static size_t logistic_dequantize(const rv_model *model, const int8_t *q, size_t n, float *out) {
    const int8_t *table = model->logistic_table;
    const __m512i t0 = _mm512_loadu_si512((const void *)table), t1 = _mm512_loadu_si512((const void *)(table + 64));
    const __m512i t2 = _mm512_loadu_si512((const void *)(table + 128));
    const __m512i t3 = _mm512_loadu_si512((const void *)(table + 192));
    const __m512i zero = _mm512_set1_epi32(model->output_quant.zero_point);
    const __m512 scale = _mm512_set1_ps(model->output_quant.scale);
    size_t k;
    for (k = 0; k < n; k += 64) {
        const __mmask64 lanes = n - k >= 64 ? ~(__mmask64)0 : ~(__mmask64)0 >> (64 - (n - k));
        const __m512i index = _mm512_xor_si512(_mm512_maskz_loadu_epi8(lanes, q + k), _mm512_set1_epi8(-128));
        const __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), _mm512_permutex2var_epi8(t0, index, t1),
                                                 _mm512_permutex2var_epi8(t2, index, t3));
        RV_DEQUANTIZE16(0);
        RV_DEQUANTIZE16(1);
        RV_DEQUANTIZE16(2);
        RV_DEQUANTIZE16(3);
    }
    return n;
}
#endif

/* rv_sigmoid_f32: rv_logistic's operations on 8 lanes (the compiler does not vectorise its clamp
   without AVX-512 masks), the last n % 8 values by rv_logistic itself, whose fmaf is one instruction
   here (a libm call in the baseline build). max_ps(x, -80) and min_ps(.., 80) select like its
   compare-and-select (NaN -> -80); fmsub(c, k, d) is fmaf(c, k, -d). */
static size_t sigmoid_f32(float *values, size_t n) {
    const __m256 limit = _mm256_set1_ps(RV_LOGIT_LIMIT), neg_log2e = _mm256_set1_ps(RV_NEG_LOG2E);
    const __m256 shift = _mm256_set1_ps(RV_ROUND_SHIFT), one = _mm256_set1_ps(1.0f);
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(values + i), _mm256_sub_ps(_mm256_setzero_ps(), limit)), limit);
        const __m256 a = _mm256_add_ps(_mm256_mul_ps(x, neg_log2e), shift);
        const __m256 f = _mm256_fmsub_ps(x, neg_log2e, _mm256_sub_ps(a, shift));
        const __m256 f2 = _mm256_mul_ps(f, f);
        const __m256 low = _mm256_fmadd_ps(_mm256_set1_ps(RV_EXP2_C1), f, one);
        const __m256 high = _mm256_fmadd_ps(_mm256_set1_ps(RV_EXP2_C5), f, _mm256_set1_ps(RV_EXP2_C4));
        const __m256 mid = _mm256_fmadd_ps(high, f2, _mm256_fmadd_ps(_mm256_set1_ps(RV_EXP2_C3), f, _mm256_set1_ps(RV_EXP2_C2)));
        const __m256 two_f = _mm256_fmadd_ps(mid, f2, low);
        const __m256 two_n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(a), 23));
        _mm256_storeu_ps(values + i, _mm256_div_ps(one, _mm256_add_ps(one, _mm256_mul_ps(two_f, two_n))));
    }
    for (; i < n; i++) {
        values[i] = rv_logistic(values[i]);
    }
    return n;
}

const rv_x86_kernels RV_X86_TABLE = {dense_f32, dense_f16, dense_s8,
#if RV_X86_VBMI
                                     logistic_dequantize,
#else
                                     NULL,
#endif
                                     sigmoid_f32};

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
