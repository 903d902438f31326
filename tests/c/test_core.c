/* C unit tests of the decoder core (run by ctest under ASan + UBSan).
 *
 *   rv_test_core [CORPUS_DIR]
 *
 * With a directory of exported .tflite files, each is also loaded, decoded in both weight layouts,
 * and damaged (every truncation, byte flips) to check the reader fails cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackvae.h"
#include "rv_internal.h"

static int failures;
static int checks;

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        checks++;                                                                                            \
        if (!(cond)) {                                                                                       \
            failures++;                                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                         \
        }                                                                                                    \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                                         \
    do {                                                                                                     \
        const rv_status got_ = (expr);                                                                       \
        checks++;                                                                                            \
        if (got_ != (expected)) {                                                                            \
            failures++;                                                                                      \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__, #expr,               \
                    rv_status_str(got_), rv_status_str(expected));                                           \
        }                                                                                                    \
    } while (0)

/* ---- status ---- */

static void test_status_strings(void) {
    int s, t;
    for (s = 0; s < RV_STATUS_COUNT; s++) {
        CHECK(strlen(rv_status_str((rv_status)s)) > 0);
        for (t = 0; t < s; t++) {
            CHECK(strcmp(rv_status_str((rv_status)s), rv_status_str((rv_status)t)) != 0);
        }
    }
    CHECK(strcmp(rv_status_str(RV_STATUS_COUNT), "unknown status") == 0);
    CHECK(rv_version() == ((RV_VERSION_MAJOR << 8) | RV_VERSION_MINOR));
}

/* ---- metadata ---- */

/* Parses `len` bytes from an exactly sized heap copy, so ASan sees any read past the end. */
static rv_status parse_exact(const uint8_t *bytes, size_t len, rv_metadata *meta) {
    uint8_t *copy = (uint8_t *)malloc(len ? len : 1);
    rv_status status;
    memcpy(copy, bytes, len);
    status = rv_metadata_parse(copy, len, meta);
    free(copy);
    return status;
}

static void test_metadata_v2(void) {
    /* 3 rows in groups 1 + 2; thresholds 89/255, groups 102/255 and 26/255; GM notes, row 2 an accent;
       then a byte version 2 does not declare (7): a reader takes the fields its version has */
    static const uint8_t perc[] = {'x', 'e', 'n', ':', 'p', 'e', 'r', 'd', 'e', 'c', 3,  16,  3, 2,
                                   1,   2,   'r', 'v', 2,   0,   3,   89,  102, 26,  36, 42, 255, 7};
    static const uint8_t note[] = {'x', 'e', 'n', ':', 's', 'e', 'q', 'd', 'e', 'c', 4, 16, 3, 'r', 'v', 2, 60, 3, 0};
    /*                           row 0 (group 0)  1 (group 1)  2 (group 1, accent) */
    static const float probs[3] = {0.39f, 0.2f, 0.11f};
    rv_metadata meta;
    rv_post_config config;
    rv_step step;
    size_t len;
    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    CHECK(meta.extension_version == 2 && meta.threshold == 89.0f / 255.0f);
    CHECK(meta.channels == 1 && meta.channel_ids[0] == RV_CHANNEL_HITS); /* no version 3: hits alone */
    CHECK(meta.group_thresholds[0] == 102.0f / 255.0f && meta.group_thresholds[1] == 26.0f / 255.0f);
    CHECK(meta.row_notes[0] == 36 && meta.row_notes[1] == 42 && meta.row_notes[2] == RV_ACCENT_ROW);
    /* the fields version 2 declares must all be there: every cut inside them is refused */
    for (len = 0; len < sizeof perc - 1; len++) {
        const rv_status status = parse_exact(perc, len, &meta);
        CHECK((len == 16 || len == 17) ? status == RV_OK : status != RV_OK);
    }
    CHECK_STATUS(parse_exact(note, sizeof note, &meta), RV_OK);
    CHECK(meta.threshold == 0.0f && meta.row_notes[3] == 63);
    CHECK_STATUS(parse_exact(note, sizeof note - 1, &meta), RV_ERR_METADATA);

    /* the model's thresholds: row 0 needs 0.4, rows 1 and 2 (group 1) 0.102 */
    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    config = rv_post_config_for_model(&meta);
    CHECK(config.threshold == 89.0f / 255.0f && config.max_notes == RV_DEFAULT_MAX_NOTES);
    CHECK(config.group_offsets[1] == 26.0f / 255.0f - 89.0f / 255.0f && config.group_offsets[2] == 0.0f);
    CHECK_STATUS(rv_postprocess_step(&meta, probs, &config, &step), RV_OK);
    CHECK(step.count == 2 && step.notes[0].row == 1 && step.notes[1].row == 2);
    CHECK(step.notes[0].midi_note == 42 && step.notes[1].midi_note == RV_ACCENT_ROW);
    CHECK(step.notes[1].group == 1 && step.notes[1].accent == 1.0f);
    /* the knob moves the global threshold, the groups keep their distance from it */
    config.threshold = 0.0f;
    CHECK_STATUS(rv_postprocess_step(&meta, probs, &config, &step), RV_OK);
    CHECK(step.count == 3 && step.notes[0].row == 0); /* 0.39 >= 0.051, group 1 below 0 */
    /* without version 2 the fields are not read: C arrays from before it leave them zero */
    meta.extension_version = 1;
    config = rv_post_config_for_model(&meta);
    CHECK(config.threshold == RV_DEFAULT_THRESHOLD && config.group_offsets[1] == 0.0f);
    CHECK_STATUS(rv_metadata_check(&meta, 3, 48), RV_OK);
    CHECK_STATUS(rv_postprocess_step(&meta, probs, &config, &step), RV_OK);
    CHECK(step.count == 1 && step.notes[0].row == 0 && step.notes[0].midi_note == 0);
}

static void test_metadata(void) {
    static const uint8_t note[] = {'x', 'e', 'n', ':', 's', 'e', 'q', 'd', 'e', 'c', 48, 16, 3, 'r', 'v', 1, 36, 3, 0, 0};
    /* the original exporter's default percussion metadata: 11 rows, 5 groups 1+1+6+2+2, no extension,
       behind the flatbuffer bytes that precede a description */
    static const uint8_t perc[] = {12, 0, 0, 0, 'x', 'e', 'n', ':', 'p', 'e', 'r', 'd', 'e', 'c',
                                   11, 16, 3,  5, 1, 1, 6,   2,   2,   0};
    static const uint8_t unknown[] = {'x', 'e', 'n', ':', 'l', 's', 't', 'm', 'd', 'c', 1, 2, 3};
    static const uint8_t bad_ext[] = {'x', 'e', 'n', ':', 's', 'e', 'q', 'd', 'e', 'c', 4, 16, 3, 'r', 'v', 0, 1, 3};
    uint8_t many_groups[] = {'x', 'e', 'n', ':', 'p', 'e', 'r', 'd', 'e', 'c', 9, 16, 3, RV_MAX_GROUPS + 1,
                             1,   1,   1,   1,   1,   1,   1,   1,   1,   1};
    uint8_t long_seq[] = {'x', 'e', 'n', ':', 's', 'e', 'q', 'd', 'e', 'c', 4, RV_MAX_TICKS + 1, 3};
    rv_metadata meta;
    size_t len;

    CHECK_STATUS(parse_exact(note, sizeof note, &meta), RV_OK);
    CHECK(meta.kind == RV_KIND_NOTE && meta.rows == 48 && meta.ticks == 16 && meta.latent_scale == 3);
    CHECK(meta.has_extension == 1 && meta.base_note == 36 && meta.latent_dim == 3 && meta.n_groups == 0);

    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    CHECK(meta.kind == RV_KIND_PERC && meta.rows == 11 && meta.n_groups == 5);
    CHECK(meta.group_sizes[0] == 1 && meta.group_sizes[2] == 6 && meta.group_sizes[4] == 2);
    CHECK(meta.has_extension == 0 && meta.base_note == 0);

    /* every truncation: an error, never a read past the end. 13 bytes are an original file's fields
       (a lone 'r' after them is not an extension); a cut inside "rv" + 3 bytes is malformed. */
    for (len = 0; len < sizeof note; len++) {
        const rv_status status = parse_exact(note, len, &meta);
        CHECK((len == 13 || len == 14 || len >= 18) ? status == RV_OK : status != RV_OK);
    }
    for (len = 0; len < 4 + 10 + 4 + 5; len++) {
        CHECK(parse_exact(perc, len, &meta) != RV_OK);
    }
    CHECK_STATUS(parse_exact(perc, 4, &meta), RV_ERR_NO_METADATA);

    /* without version 2: the default threshold for every group, rows play their index (percussion) or
       base_note + row (notes) */
    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    CHECK(meta.extension_version == 0 && meta.threshold == RV_DEFAULT_THRESHOLD);
    CHECK(meta.group_thresholds[0] == RV_DEFAULT_THRESHOLD && meta.group_thresholds[4] == RV_DEFAULT_THRESHOLD);
    CHECK(meta.row_notes[0] == 0 && meta.row_notes[10] == 10);
    CHECK_STATUS(parse_exact(note, sizeof note, &meta), RV_OK);
    CHECK(meta.extension_version == 1 && meta.threshold == RV_DEFAULT_THRESHOLD);
    CHECK(meta.row_notes[0] == 36 && meta.row_notes[47] == 83);
    test_metadata_v2();
    CHECK_STATUS(parse_exact(unknown, sizeof unknown, &meta), RV_ERR_METADATA);
    CHECK_STATUS(parse_exact(bad_ext, sizeof bad_ext, &meta), RV_ERR_METADATA);
    CHECK_STATUS(parse_exact(many_groups, sizeof many_groups, &meta), RV_ERR_LIMIT_GROUPS);
    CHECK_STATUS(parse_exact(long_seq, sizeof long_seq, &meta), RV_ERR_LIMIT_TICKS);
    CHECK_STATUS(rv_metadata_parse(NULL, 3, &meta), RV_ERR_ARGUMENT);
}

/* ---- arithmetic ---- */

static void test_half_to_float(void) {
    unsigned h;
    int exact = 1;
    for (h = 0; h < 0x10000u; h++) {
        const unsigned exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
        const double sign = (h & 0x8000u) ? -1.0 : 1.0;
        const float got = rv_half_to_float((uint16_t)h);
        double want;
        if (exponent == 31) {
            if (mantissa == 0) {
                exact &= isinf(got) && (got < 0) == (sign < 0);
            } else {
                exact &= isnan(got) != 0;
            }
            continue;
        }
        want = exponent == 0 ? sign * ldexp((double)mantissa, -24)
                             : sign * ldexp(1.0 + mantissa / 1024.0, (int)exponent - 15);
        exact &= (double)got == want && signbit(got) == signbit(want);
    }
    CHECK(exact);
}

static void test_sigmoid(void) {
    float values[4001];
    double worst = 0.0;
    int i, monotonic = 1;
    for (i = 0; i <= 4000; i++) {
        values[i] = -100.0f + 0.05f * (float)i;
    }
    rv_sigmoid_f32(values, 4001);
    for (i = 0; i <= 4000; i++) {
        const double x = -100.0 + 0.05 * i;
        const double want = 1.0 / (1.0 + exp(-(double)(-100.0f + 0.05f * (float)i)));
        worst = fmax(worst, fabs(values[i] - want));
        monotonic &= i == 0 || values[i] >= values[i - 1];
        (void)x;
    }
    CHECK(worst < 1.2e-7);
    CHECK(monotonic);
    CHECK(values[4000] == 1.0f && values[0] > 0.0f && values[0] < 1e-30f);
    values[0] = NAN;
    rv_sigmoid_f32(values, 1);
    CHECK(values[0] >= 0.0f && values[0] < 1e-30f);
}

static void test_quantize_multiplier(void) {
    int32_t m, s;
    /* real = m / 2^31 * 2^s with m in [2^30, 2^31) */
    CHECK_STATUS(rv_quantize_multiplier(0.5, &m, &s), RV_OK);
    CHECK(m == (1 << 30) && s == 0);
    CHECK_STATUS(rv_quantize_multiplier(1.0, &m, &s), RV_OK);
    CHECK(m == (1 << 30) && s == 1);
    CHECK_STATUS(rv_quantize_multiplier(0.75 / 1024.0, &m, &s), RV_OK);
    CHECK(m == 1610612736 && s == -10);
    CHECK_STATUS(rv_quantize_multiplier(0.0, &m, &s), RV_OK);
    CHECK(m == 0 && s == 0);
    CHECK_STATUS(rv_quantize_multiplier(-1.0, &m, &s), RV_ERR_QUANTIZATION);
    CHECK_STATUS(rv_quantize_multiplier(NAN, &m, &s), RV_ERR_QUANTIZATION);
    /* gemmlowp's doubling high multiply rounds half up (x * 0.5: 1.5 -> 2, -1.5 -> -1); the following
       rounding right shift rounds half away from zero (double rounding) */
    CHECK(rv_multiply_by_quantized_multiplier(3, 1 << 30, 0) == 2);
    CHECK(rv_multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1);
    CHECK(rv_multiply_by_quantized_multiplier(1000, 1 << 30, -2) == 125);
    CHECK(rv_multiply_by_quantized_multiplier(-1001, 1 << 30, -2) == -125);
    CHECK(rv_multiply_by_quantized_multiplier(6, 1 << 30, -1) == 2);
    CHECK(rv_multiply_by_quantized_multiplier(7, 1 << 30, 1) == 7);
    CHECK(rv_multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, 0) == INT32_MAX);
}

/* The requantisation's short forms against TFLite's MultiplyByQuantizedMultiplier, edges included. */
static void test_scale_sum(void) {
    static const int32_t sums[] = {0, 1, -1, 2, -2, 3, -3, 1 << 20, -(1 << 20), 12345, -12345, INT32_MAX, INT32_MIN,
                                   (1 << 30) + 1, -(1 << 30) - 1, 0x40000000, -0x40000000, 77777777, -77777777};
    static const int32_t multipliers[] = {0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX, 1518500250, 1073741825};
    uint32_t state = 1;
    int mismatches = 0, shift, k, m, n;
    for (shift = -31; shift <= 30; shift++) {
        for (m = 0; m < (int)(sizeof multipliers / sizeof *multipliers); m++) {
            for (k = 0; k < (int)(sizeof sums / sizeof *sums) + 200; k++) {
                int32_t sum;
                if (k < (int)(sizeof sums / sizeof *sums)) {
                    sum = sums[k];
                } else { /* random sums, and odd multiples of powers of two (the rounding ties) */
                    state = state * 1664525u + 1013904223u;
                    sum = (int32_t)state;
                    if (k % 2) sum = (int32_t)(((state >> 8) | 1u) << (state % 24)) * ((state & 1) ? 1 : -1);
                }
                for (n = 0; n < 2; n++) {
                    const int32_t multiplier = n ? (int32_t)(state >> 1) : multipliers[m];
                    const int32_t expected = rv_multiply_by_quantized_multiplier(sum, multiplier, shift);
                    mismatches += rv_scale_sum(sum, multiplier, shift) != expected;
                    if (shift <= -2) {
                        mismatches += rv_scale_sum_right2(sum, multiplier, shift) != expected;
                    }
                }
            }
        }
    }
    CHECK(mismatches == 0);
}

/* The Cortex-M7 kernel's requantisation (rv_dense_s8_m7.c: smmlar on the doubled sum with the row's
   rv_s8_addend, minus 1 for a negative sum, asr, ssat) against TFLite's MultiplyByQuantizedMultiplier
   + zero point, clamped to int8, for every sum the kernel can see (|sum| < 2^30). */
static void test_s8_requantisation(void) {
    static const int32_t sums[] = {0, 1, -1, 2, -2, 3, -3, (1 << 30) - 1, -(1 << 30) + 1, 12345, -12345,
                                   1 << 20, -(1 << 20), 1 << 29, -(1 << 29)};
    static const int32_t zero_points[] = {-128, -1, 0, 7, 127};
    static const int32_t multipliers[] = {0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX, 1518500250};
    uint32_t state = 7;
    int mismatches = 0, shift, k, m, z;
    for (shift = -22; shift <= -1; shift++) {
        for (z = 0; z < (int)(sizeof zero_points / sizeof *zero_points); z++) {
            for (k = 0; k < (int)(sizeof sums / sizeof *sums) + 300; k++) {
                int32_t sum, multiplier, expected, v;
                int64_t product;
                state = state * 1664525u + 1013904223u;
                m = (int)(state % (sizeof multipliers / sizeof *multipliers + 1));
                multiplier = m < (int)(sizeof multipliers / sizeof *multipliers) ? multipliers[m] : (int32_t)(state >> 1);
                if (k < (int)(sizeof sums / sizeof *sums)) {
                    sum = sums[k];
                } else { /* random sums, and odd multiples of powers of two (the rounding ties) */
                    state = state * 1664525u + 1013904223u;
                    sum = (int32_t)(state & 0x3fffffffu);
                    if (k % 2) sum = (int32_t)((((state >> 8) | 1u) << (state % 30)) & 0x3fffffffu);
                    if (state & 0x80000000u) sum = -sum;
                }
                product = (int64_t)(2 * sum) * multiplier + ((int64_t)1 << 31); /* smmlar */
                v = (int32_t)(((int64_t)rv_s8_addend(-shift, zero_points[z]) * ((int64_t)1 << 32) + product) >> 32);
                v = (v + (sum < 0 ? -1 : 0)) >> -shift;
                v = RV_MIN(RV_MAX(v, -128), 127);
                expected = rv_multiply_by_quantized_multiplier(sum, multiplier, shift) + zero_points[z];
                expected = RV_MIN(RV_MAX(expected, -128), 127);
                mismatches += v != expected;
            }
        }
    }
    CHECK(mismatches == 0);
}

static void test_logistic_table(void) {
    int8_t table[256];
    rv_quant q;
    int v, monotonic = 1, close = 1;
    q.scale = 0.0625f;
    q.zero_point = -3;
    CHECK_STATUS(rv_logistic_s8_table(q, table), RV_OK);
    for (v = -128; v < 128; v++) {
        const double x = q.scale * (v - q.zero_point);
        const double want = 1.0 / (1.0 + exp(-x)) * 256.0 - 128.0;
        monotonic &= v == -128 || table[v + 128] >= table[v + 127];
        close &= fabs(table[v + 128] - fmin(want, 127.0)) <= 1.0;
    }
    CHECK(monotonic);
    CHECK(close);
    CHECK(table[q.zero_point + 128] == 0); /* logistic(0) = 0.5 -> (0.5 * 256) - 128 */
    q.scale = 0.0f;
    CHECK_STATUS(rv_logistic_s8_table(q, table), RV_ERR_QUANTIZATION);
}

/* ---- dense layers, decoding, repacking ---- */

#define L0_IN 3
#define L0_OUT 13
#define L1_OUT 40
#define ROWS 5
#define TICKS 8

static float w0[L0_IN * L0_OUT], b0[L0_OUT], w1[L0_OUT * L1_OUT], b1[L1_OUT];
static float w0_t[L0_IN * L0_OUT], w1_t[L0_OUT * L1_OUT]; /* OUT_IN copies */
static uint16_t w1_half[L0_OUT * L1_OUT];

static float pseudo_random(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (float)((*state >> 8) & 0xffffu) / 32768.0f - 1.0f;
}

/* A small float model 3 -> 13 -> 40 (= 8 ticks x 5 rows), IN_OUT, note metadata. */
static void make_model(rv_model *model, rv_layout layout) {
    unsigned state = 7;
    size_t i, j;
    for (i = 0; i < L0_IN * L0_OUT; i++) w0[i] = pseudo_random(&state);
    for (i = 0; i < L0_OUT; i++) b0[i] = 0.1f * pseudo_random(&state);
    for (i = 0; i < L0_OUT * L1_OUT; i++) w1[i] = 0.5f * pseudo_random(&state);
    for (i = 0; i < L1_OUT; i++) b1[i] = 0.1f * pseudo_random(&state);
    for (i = 0; i < L0_IN; i++)
        for (j = 0; j < L0_OUT; j++) w0_t[j * L0_IN + i] = w0[i * L0_OUT + j];
    for (i = 0; i < L0_OUT; i++)
        for (j = 0; j < L1_OUT; j++) w1_t[j * L0_OUT + i] = w1[i * L1_OUT + j];
    memset(model, 0, sizeof(*model));
    model->dtype = RV_F32;
    model->n_layers = 2;
    model->layers[0].in = L0_IN;
    model->layers[0].out = L0_OUT;
    model->layers[0].activation = RV_ACT_RELU;
    model->layers[0].weights = layout == RV_LAYOUT_IN_OUT ? w0 : w0_t;
    model->layers[0].bias = b0;
    model->layers[1].in = L0_OUT;
    model->layers[1].out = L1_OUT;
    model->layers[1].weights = layout == RV_LAYOUT_IN_OUT ? w1 : w1_t;
    model->layers[1].bias = b1;
    model->layers[0].layout = model->layers[1].layout = (uint8_t)layout;
    model->metadata.kind = RV_KIND_NOTE;
    model->metadata.rows = ROWS;
    model->metadata.ticks = TICKS;
    model->metadata.latent_scale = 3;
    model->metadata.base_note = 40;
}

static void reference_decode(const float *latent, double *out) {
    double hidden[L0_OUT];
    size_t i, j;
    for (j = 0; j < L0_OUT; j++) {
        double s = b0[j];
        for (i = 0; i < L0_IN; i++) s += (double)latent[i] * w0[i * L0_OUT + j];
        hidden[j] = s > 0 ? s : 0;
    }
    for (j = 0; j < L1_OUT; j++) {
        double s = b1[j];
        for (i = 0; i < L0_OUT; i++) s += hidden[i] * w1[i * L1_OUT + j];
        out[j] = 1.0 / (1.0 + exp(-s));
    }
}

#define N_LATENTS 11 /* one full block of 8 and a partial one */

static void test_decode_float(void) {
    static rv_model in_out, out_in, packed, half;
    static float latents[N_LATENTS * L0_IN], a[N_LATENTS * L1_OUT], b[N_LATENTS * L1_OUT], c[L1_OUT];
    static float expanded[L0_OUT * L1_OUT];
    static float scratch[4096];
    static uint8_t repack_mem[4 * L0_OUT * L1_OUT + 4 * L0_IN * L0_OUT];
    unsigned state = 99;
    size_t k, needed, i;
    double worst = 0.0, want[L1_OUT];
    int same = 1;
    make_model(&in_out, RV_LAYOUT_IN_OUT);
    make_model(&out_in, RV_LAYOUT_OUT_IN);
    for (k = 0; k < N_LATENTS * L0_IN; k++) latents[k] = 3.0f * pseudo_random(&state);
    CHECK(rv_scratch_size(&in_out) == 2u * RV_DECODE_BLOCK * L0_OUT * sizeof(float));
    CHECK_STATUS(rv_decode(&in_out, latents, N_LATENTS, a, scratch, sizeof scratch), RV_OK);
    CHECK_STATUS(rv_decode(&out_in, latents, N_LATENTS, b, scratch, sizeof scratch), RV_OK);
    CHECK(memcmp(a, b, sizeof a) == 0); /* both layouts: the same sums */
    for (k = 0; k < N_LATENTS; k++) {
        CHECK_STATUS(rv_decode(&in_out, latents + k * L0_IN, 1, c, scratch, sizeof scratch), RV_OK);
        same &= memcmp(c, a + k * L1_OUT, sizeof c) == 0; /* a block gives what one at a time gives */
        reference_decode(latents + k * L0_IN, want);
        for (i = 0; i < L1_OUT; i++) worst = fmax(worst, fabs(a[k * L1_OUT + i] - want[i]));
    }
    CHECK(same);
    CHECK(worst < 1e-6);

    CHECK_STATUS(rv_model_repack(&out_in, &packed, NULL, 0, &needed), RV_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == sizeof(float) * (L0_IN * L0_OUT + L0_OUT * L1_OUT));
    CHECK_STATUS(rv_model_repack(&out_in, &packed, repack_mem, needed - 1, &needed), RV_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(rv_model_repack(&out_in, &packed, repack_mem, sizeof repack_mem, &needed), RV_OK);
    CHECK(packed.layers[1].layout == RV_LAYOUT_IN_OUT);
    CHECK_STATUS(rv_decode(&packed, latents, N_LATENTS, b, scratch, sizeof scratch), RV_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);

    /* float16 weights give exactly what float32 weights holding their expansion give */
    for (i = 0; i < L0_OUT * L1_OUT; i++) {
        const float v = w1[i];
        /* round to half by hand (normal range only here): keep 10 mantissa bits */
        int e;
        const double m = frexp(v, &e);
        const double r = ldexp(round(ldexp(m, 11)), e - 11);
        uint32_t bits;
        const float f = (float)r;
        memcpy(&bits, &f, 4);
        w1_half[i] = (uint16_t)(((bits >> 16) & 0x8000u) | ((((bits >> 23) & 0xffu) - 112u) << 10) |
                                ((bits >> 13) & 0x3ffu));
        expanded[i] = rv_half_to_float(w1_half[i]);
        same &= expanded[i] == f;
    }
    CHECK(same);
    half = in_out;
    half.dtype = RV_F16;
    half.layers[1].dtype = RV_F16;
    half.layers[1].weights = w1_half;
    CHECK_STATUS(rv_decode(&half, latents, N_LATENTS, a, scratch, sizeof scratch), RV_OK);
    in_out.layers[1].weights = expanded;
    CHECK_STATUS(rv_decode(&in_out, latents, N_LATENTS, b, scratch, sizeof scratch), RV_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static void test_model_errors(void) {
    static rv_model model, bad;
    static float scratch[4096], out[L1_OUT];
    static const float latent[3] = {0, 0, 0};
    int8_t q[3] = {0, 0, 0}, qo[L1_OUT];
    make_model(&model, RV_LAYOUT_IN_OUT);
    CHECK_STATUS(rv_model_check(&model), RV_OK);
    bad = model;
    bad.layers[1].in = 12;
    CHECK_STATUS(rv_model_check(&bad), RV_ERR_MODEL);
    bad = model;
    bad.n_layers = RV_MAX_LAYERS + 1;
    CHECK_STATUS(rv_model_check(&bad), RV_ERR_LIMIT_LAYERS);
    bad = model;
    bad.metadata.ticks = 9; /* 9 x 5 != 40 outputs */
    CHECK_STATUS(rv_model_check(&bad), RV_ERR_METADATA);
    bad = model;
    bad.metadata.base_note = 125; /* the top row would be MIDI 129 */
    CHECK_STATUS(rv_model_check(&bad), RV_ERR_METADATA);
    bad = model;
    bad.layers[0].weights = (const uint8_t *)w0 + 1;
    CHECK_STATUS(rv_model_check(&bad), RV_ERR_ALIGNMENT);
    bad = model;
    bad.dtype = RV_S8;
    CHECK(rv_model_check(&bad) != RV_OK);
    CHECK_STATUS(rv_model_check(NULL), RV_ERR_ARGUMENT);
    CHECK_STATUS(rv_decode(&model, latent, 1, out, scratch, 8), RV_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(rv_decode(&model, NULL, 1, out, scratch, sizeof scratch), RV_ERR_ARGUMENT);
    CHECK_STATUS(rv_decode_s8(&model, q, 1, qo, scratch, sizeof scratch), RV_ERR_DTYPE);
    CHECK(rv_scratch_size(&bad) == 0);
}

/* ---- post-processing ---- */

static rv_metadata perc_meta(uint8_t rows) {
    rv_metadata meta;
    memset(&meta, 0, sizeof meta);
    meta.kind = RV_KIND_PERC;
    meta.rows = rows;
    meta.ticks = 1;
    meta.latent_scale = 3;
    meta.n_groups = 5;
    meta.group_sizes[0] = 1;
    meta.group_sizes[1] = 1;
    meta.group_sizes[2] = 6;
    meta.group_sizes[3] = 2;
    meta.group_sizes[4] = 2;
    return meta;
}

static void test_row_groups(void) {
    /* the original default: 11 rows in groups 1+1+6+2+2 (the last group lost a row) */
    const rv_metadata meta = perc_meta(11);
    static const int8_t want_group[11] = {0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4};
    static const float want_accent[11] = {0, 0, 0, 0.2f, 0.4f, 0.6f, 0.8f, 1, 0, 1, 0};
    rv_metadata note;
    int8_t group;
    float accent;
    unsigned r;
    for (r = 0; r < 11; r++) {
        CHECK_STATUS(rv_row_group(&meta, (uint8_t)r, &group, &accent), RV_OK);
        CHECK(group == want_group[r] && fabsf(accent - want_accent[r]) < 1e-7f);
    }
    CHECK_STATUS(rv_row_group(&meta, 12, &group, &accent), RV_ERR_ARGUMENT); /* past every group */
    memset(&note, 0, sizeof note);
    CHECK_STATUS(rv_row_group(&note, 0, &group, &accent), RV_ERR_ARGUMENT);
}

static void test_postprocess_step(void) {
    const rv_metadata perc = perc_meta(13); /* groups cover 12 rows: row 12 belongs to none */
    rv_metadata note;
    rv_post_config config = rv_post_config_default();
    rv_step step;
    uint32_t mask;
    float accents[RV_MAX_GROUPS];
    /*                           0     1     2     3     4     5     6     7     8     9     10    11    12 */
    const float probs[13] = {0.9f, 0.05f, 0.3f, 0.7f, 0.3f, 0.0f, 0.0f, 0.2f, 0.6f, 0.65f, 0.1f, 0.0f, 1.0f};
    config.threshold = 0.25f;
    config.max_notes = 4;
    CHECK_STATUS(rv_postprocess_step(&perc, probs, &config, &step), RV_OK);
    /* above 0.25: rows 0 (.9), 2 (.3), 3 (.7), 4 (.3), 8 (.6), 9 (.65); row 12 has no group.
       The best four: 0, 3, 9, 8; in pitch order: 0 3 8 9 */
    CHECK(step.count == 4);
    CHECK(step.notes[0].row == 0 && step.notes[1].row == 3 && step.notes[2].row == 8 && step.notes[3].row == 9);
    CHECK(step.notes[1].group == 2 && fabsf(step.notes[1].accent - 0.2f) < 1e-7f);
    CHECK(step.notes[3].group == 3 && step.notes[3].accent == 1.0f);
    rv_step_groups(&step, &mask, accents, NULL, NULL);
    CHECK(mask == ((1u << 0) | (1u << 2) | (1u << 3)));
    CHECK(accents[3] == 1.0f); /* row 9 (0.65) beats row 8 (0.6) in group 3 */
    /* a hits-only model: every note at the default velocity, on the grid */
    CHECK(step.notes[0].velocity == RV_DEFAULT_VELOCITY && step.notes[3].velocity == RV_DEFAULT_VELOCITY);
    CHECK(step.notes[0].offset == 0.0f && step.notes[3].offset == 0.0f);
    /* ties: the lower row wins the last place */
    config.max_notes = 5;
    CHECK_STATUS(rv_postprocess_step(&perc, probs, &config, &step), RV_OK);
    CHECK(step.count == 5 && step.notes[1].row == 2);
    config.threshold = 0.95f;
    CHECK_STATUS(rv_postprocess_step(&perc, probs, &config, &step), RV_OK);
    CHECK(step.count == 0);
    config.max_notes = 0;
    CHECK_STATUS(rv_postprocess_step(&perc, probs, &config, &step), RV_ERR_ARGUMENT);
    config.max_notes = RV_MAX_NOTES + 1;
    CHECK_STATUS(rv_postprocess_step(&perc, probs, &config, &step), RV_ERR_ARGUMENT);

    memset(&note, 0, sizeof note);
    note.kind = RV_KIND_NOTE;
    note.rows = 13;
    note.ticks = 1;
    note.base_note = 48;
    config = rv_post_config_default();
    config.threshold = 0.5f;
    CHECK_STATUS(rv_postprocess_step(&note, probs, &config, &step), RV_OK);
    CHECK(step.count == 4); /* rows 0 3 8 9 12 pass; 12 (1.0) 0 (.9) 3 (.7) 9 (.65) kept */
    CHECK(step.notes[0].row == 0 && step.notes[3].row == 12);
    CHECK(step.notes[0].midi_note == 48 && step.notes[0].volts == -1.0f && step.notes[0].group == -1);
    CHECK(step.notes[3].midi_note == 60 && step.notes[3].volts == 0.0f);
    CHECK(step.notes[2].midi_note == 57 && fabsf(step.notes[2].volts - (-0.25f)) < 1e-7f);
    /* metadata not checked by rv_model_check: rows past MIDI note 127 stay at 127, never wrap to 0 */
    note.base_note = 120;
    CHECK_STATUS(rv_postprocess_step(&note, probs, &config, &step), RV_OK);
    CHECK(step.notes[0].midi_note == 120 && step.notes[1].midi_note == 123);
    CHECK(step.notes[2].midi_note == 127 && step.notes[3].midi_note == 127); /* rows 9 and 12 */
    CHECK(step.notes[3].volts == (127.0f - 60.0f) / 12.0f);
}

/* ---- groove: metadata version 3, velocities and offsets ---- */

static void test_metadata_v3(void) {
    /* the version 2 percussion fields of test_metadata_v2, then channels 3: hits, velocity, offset */
    static const uint8_t perc[] = {'x', 'e', 'n', ':', 'p', 'e', 'r', 'd', 'e', 'c', 3,  16,  3, 2, 1, 2,
                                   'r', 'v', 3,   0,   3,   89,  102, 26,  36,  42,  255, 3,  0, 1, 2};
    /* a note model (version 2 adds the threshold alone) with hits and offset, then a later field (9) */
    static const uint8_t note[] = {'x', 'e', 'n', ':', 's', 'e', 'q', 'd', 'e', 'c', 4, 16, 3,
                                   'r', 'v', 4,   60,  3,   77,  2,   0,   2,   9};
    uint8_t tail[sizeof perc + 4];
    rv_metadata meta;
    size_t len;
    unsigned c, a, b, d, valid = 0, refused = 0;
    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    CHECK(meta.extension_version == 3 && meta.channels == 3);
    CHECK(meta.channel_ids[0] == RV_CHANNEL_HITS && meta.channel_ids[1] == RV_CHANNEL_VELOCITY &&
          meta.channel_ids[2] == RV_CHANNEL_OFFSET);
    /* the version 2 fields read as before */
    CHECK(meta.threshold == 89.0f / 255.0f && meta.row_notes[2] == RV_ACCENT_ROW && meta.rows == 3);
    /* the extension declares version 3: every cut inside its fields is refused (27 bytes: version 2's) */
    for (len = 19; len < sizeof perc; len++) {
        CHECK_STATUS(parse_exact(perc, len, &meta), RV_ERR_METADATA);
    }
    CHECK_STATUS(parse_exact(note, sizeof note, &meta), RV_OK);
    CHECK(meta.extension_version == 4 && meta.threshold == 77.0f / 255.0f);
    CHECK(meta.channels == 2 && meta.channel_ids[0] == RV_CHANNEL_HITS && meta.channel_ids[1] == RV_CHANNEL_OFFSET);
    CHECK_STATUS(parse_exact(note, sizeof note - 1, &meta), RV_OK); /* without the later field */
    CHECK_STATUS(parse_exact(note, sizeof note - 2, &meta), RV_ERR_METADATA); /* the second id cut */
    CHECK_STATUS(parse_exact(note, sizeof note - 3, &meta), RV_ERR_METADATA); /* ids cut */
    CHECK_STATUS(parse_exact(note, sizeof note - 4, &meta), RV_ERR_METADATA); /* channels cut */

    /* every channel count 0..5 with every id 0..4 in the first three places: valid exactly when
       1 <= channels <= 3, the first id is the hits and each id is a known channel at most once */
    memcpy(tail, perc, sizeof perc - 4);
    for (c = 0; c <= 5; c++) {
        for (a = 0; a <= 4; a++) {
            for (b = 0; b <= 4; b++) {
                for (d = 0; d <= 4; d++) {
                    const unsigned ids[3] = {a, b, d};
                    unsigned k, seen = 0, ok = c >= 1 && c <= 3 && a == 0;
                    for (k = 0; k < c && k < 3; k++) {
                        ok &= ids[k] < 3 && !(seen >> ids[k] & 1u);
                        seen |= 1u << ids[k];
                    }
                    tail[sizeof perc - 4] = (uint8_t)c;
                    tail[sizeof perc - 3] = (uint8_t)a;
                    tail[sizeof perc - 2] = (uint8_t)b;
                    tail[sizeof perc - 1] = (uint8_t)d;
                    tail[sizeof perc] = (uint8_t)d; /* room for a fourth id (channels 4) */
                    tail[sizeof perc + 1] = 0;
                    /* exactly channels ids follow (at least one byte) */
                    len = sizeof perc - 3 + (c > 0 ? c : 1);
                    if (parse_exact(tail, len, &meta) == RV_OK) {
                        valid++;
                        CHECK(ok && meta.channels == c && meta.channel_ids[0] == a);
                        CHECK(c < 2 || meta.channel_ids[1] == b);
                        CHECK(c < 3 || meta.channel_ids[2] == d);
                    } else {
                        refused++;
                        CHECK(!ok);
                    }
                }
            }
        }
    }
    /* valid: 25 x 1 (hits alone, any later bytes), 5 x 2 (hits + velocity or offset), 2 (all three) */
    CHECK(valid == 25 + 2 * 5 + 2 && refused == 6 * 125 - valid);

    /* rv_metadata_check: rows * ticks * channels outputs; channels and ids as a file must hold them */
    CHECK_STATUS(parse_exact(perc, sizeof perc, &meta), RV_OK);
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 3), RV_OK);
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16), RV_ERR_METADATA);
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 2), RV_ERR_METADATA);
    meta.channel_ids[2] = RV_CHANNEL_VELOCITY; /* twice */
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 3), RV_ERR_METADATA);
    meta.channel_ids[2] = 3; /* unknown */
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 3), RV_ERR_METADATA);
    meta.channel_ids[2] = RV_CHANNEL_OFFSET;
    meta.channel_ids[0] = RV_CHANNEL_VELOCITY; /* hits not first */
    meta.channel_ids[1] = RV_CHANNEL_HITS;
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 3), RV_ERR_METADATA);
    meta.channel_ids[0] = RV_CHANNEL_HITS;
    meta.channel_ids[1] = RV_CHANNEL_VELOCITY;
    meta.channels = RV_MAX_CHANNELS + 1;
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 4), RV_ERR_METADATA);
    /* C arrays from before version 3 leave channels 0: the hits alone */
    memset(meta.channel_ids, 0, sizeof meta.channel_ids);
    meta.channels = 0;
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16), RV_OK);
    CHECK_STATUS(rv_metadata_check(&meta, 3, 3 * 16 * 3), RV_ERR_METADATA);
}

/* Percussion metadata of `rows` rows in groups {1, rows - 1}, `ticks` ticks, with these channels. */
static rv_metadata groove_meta(uint8_t rows, uint8_t ticks, uint8_t channels, const uint8_t *ids) {
    rv_metadata meta;
    memset(&meta, 0, sizeof meta);
    meta.kind = RV_KIND_PERC;
    meta.rows = rows;
    meta.ticks = ticks;
    meta.latent_scale = 3;
    meta.n_groups = 2;
    meta.group_sizes[0] = 1;
    meta.group_sizes[1] = (uint8_t)(rows - 1);
    meta.channels = channels;
    memcpy(meta.channel_ids, ids, channels);
    return meta;
}

static void test_postprocess_groove(void) {
    static const uint8_t all[3] = {RV_CHANNEL_HITS, RV_CHANNEL_VELOCITY, RV_CHANNEL_OFFSET};
    static const uint8_t hits_offset[2] = {RV_CHANNEL_HITS, RV_CHANNEL_OFFSET};
    /* 4 rows, 2 ticks: [hits][velocity][offset], each tick-major */
    static const float outputs[3 * 2 * 4] = {
        0.9f, 0.5f, 0.1f, 0.6f,   0.0f, 0.0f, 0.8f, 0.0f,     /* hits: tick 0 rows 0 1 3, tick 1 row 2 */
        0.5f, 1.0f, 0.7f, 0.0f,   0.0f, 0.0f, 0.2f, 0.0f,     /* velocity sigmoids */
        0.75f, 0.25f, 0.5f, 0.125f, 0.5f, 0.5f, 0.5f, 0.5f,  /* offset sigmoids */
    };
    /* int8 outputs (q + 128) / 256 for q = -128, -126, -124, -1, 0, 127 as velocity and offset */
    static const int8_t q[6] = {-128, -126, -124, -1, 0, 127};
    static const uint8_t q_velocity[6] = {1, 1, 2, 63, 64, 127}; /* round(127 (q + 128) / 256), >= 1 */
    static const float q_offset[6] = {-0.5f, -0.4921875f, -0.484375f, -0.00390625f, 0.0f, 0.49609375f};
    float quantised[3 * 6];
    rv_metadata meta = groove_meta(4, 2, 3, all);
    rv_post_config config = rv_post_config_default();
    rv_sequence sequence;
    rv_step step;
    unsigned k;
    config.threshold = 0.3f;
    CHECK_STATUS(rv_postprocess(&meta, outputs, &config, &sequence), RV_OK);
    CHECK(sequence.steps[0].count == 3 && sequence.steps[1].count == 1);
    /* round(127 * 0.5 = 63.5) = 64, 127 * 1 = 127, 127 * 0 = 0 -> at least 1; 127 * 0.2 = 25.4 -> 25 */
    CHECK(sequence.steps[0].notes[0].row == 0 && sequence.steps[0].notes[0].velocity == 64);
    CHECK(sequence.steps[0].notes[1].row == 1 && sequence.steps[0].notes[1].velocity == 127);
    CHECK(sequence.steps[0].notes[2].row == 3 && sequence.steps[0].notes[2].velocity == 1);
    CHECK(sequence.steps[1].notes[0].row == 2 && sequence.steps[1].notes[0].velocity == 25);
    CHECK(sequence.steps[0].notes[0].offset == 0.25f && sequence.steps[0].notes[1].offset == -0.25f);
    CHECK(sequence.steps[0].notes[2].offset == -0.375f && sequence.steps[1].notes[0].offset == 0.0f);
    /* the hits decide alone: same rows, probabilities and accents as the hits-only model */
    meta.channels = 1;
    CHECK_STATUS(rv_postprocess_step(&meta, outputs, &config, &step), RV_OK);
    CHECK(step.count == 3 && step.notes[2].row == 3 && step.notes[2].probability == 0.6f);
    CHECK(step.notes[0].velocity == RV_DEFAULT_VELOCITY && step.notes[2].offset == 0.0f);
    /* step by step: the pointer into the whole vector at tick 1 */
    meta.channels = 3;
    CHECK_STATUS(rv_postprocess_step(&meta, outputs + 4, &config, &step), RV_OK);
    CHECK(step.count == 1 && step.notes[0].row == 2 && step.notes[0].velocity == 25 && step.notes[0].offset == 0.0f);
    /* hits and offset (block 1 is the offset): default velocity */
    {
        float two[2 * 2 * 4];
        meta = groove_meta(4, 2, 2, hits_offset);
        memcpy(two, outputs, sizeof(float) * 8);
        memcpy(two + 8, outputs + 16, sizeof(float) * 8);
        CHECK_STATUS(rv_postprocess(&meta, two, &config, &sequence), RV_OK);
        CHECK(sequence.steps[0].count == 3 && sequence.steps[0].notes[0].velocity == RV_DEFAULT_VELOCITY);
        CHECK(sequence.steps[0].notes[0].offset == 0.25f && sequence.steps[0].notes[2].offset == -0.375f);
    }
    /* int8 outputs: 6 rows, 1 tick, every row a hit */
    meta = groove_meta(6, 1, 3, all);
    config.max_notes = 6;
    for (k = 0; k < 6; k++) {
        quantised[k] = 1.0f;
        quantised[6 + k] = (float)(q[k] + 128) / 256.0f;
        quantised[12 + k] = (float)(q[k] + 128) / 256.0f;
    }
    CHECK_STATUS(rv_postprocess_step(&meta, quantised, &config, &step), RV_OK);
    CHECK(step.count == 6);
    for (k = 0; k < 6 && k < step.count; k++) {
        CHECK(step.notes[k].velocity == q_velocity[k] && step.notes[k].offset == q_offset[k]);
    }
}

static void test_step_groups_groove(void) {
    rv_step step;
    uint32_t mask;
    float accents[RV_MAX_GROUPS], offsets[RV_MAX_GROUPS];
    uint8_t velocities[RV_MAX_GROUPS];
    /* group 0: one note; group 3: velocities 50, 80, 80 (the 80s tie: the more probable, 0.7, wins)
       and the accent of the most probable (0.9); a note of no group; group 5: 90 and 30 */
    static const struct {
        int8_t group;
        float p, accent, offset;
        uint8_t velocity;
    } notes[7] = {{0, 0.5f, 0.0f, 0.25f, 40},  {3, 0.9f, 0.0f, -0.125f, 50}, {3, 0.6f, 0.5f, 0.375f, 80},
                  {3, 0.7f, 1.0f, -0.25f, 80}, {-1, 1.0f, 0.0f, 0.5f, 127},   {5, 0.4f, 0.0f, 0.0625f, 90},
                  {5, 0.95f, 1.0f, -0.5f, 30}};
    unsigned k;
    memset(&step, 0, sizeof step);
    step.count = 7;
    for (k = 0; k < 7; k++) {
        step.notes[k].group = notes[k].group;
        step.notes[k].probability = notes[k].p;
        step.notes[k].accent = notes[k].accent;
        step.notes[k].offset = notes[k].offset;
        step.notes[k].velocity = notes[k].velocity;
    }
    memset(velocities, 0xff, sizeof velocities);
    for (k = 0; k < RV_MAX_GROUPS; k++) accents[k] = offsets[k] = 9.0f;
    rv_step_groups(&step, &mask, accents, velocities, offsets);
    CHECK(mask == ((1u << 0) | (1u << 3) | (1u << 5)));
    CHECK(velocities[0] == 40 && offsets[0] == 0.25f && accents[0] == 0.0f);
    CHECK(velocities[3] == 80 && offsets[3] == -0.25f && accents[3] == 0.0f);
    CHECK(velocities[5] == 90 && offsets[5] == 0.0625f && accents[5] == 1.0f);
    for (k = 0; k < RV_MAX_GROUPS; k++) {
        if (!(mask >> k & 1u)) CHECK(velocities[k] == 0 && offsets[k] == 0.0f && accents[k] == 0.0f);
    }
    /* equal velocity and probability: the first (lower row) keeps it */
    step.notes[3].probability = 0.6f;
    rv_step_groups(&step, &mask, accents, velocities, NULL);
    CHECK(velocities[3] == 80 && accents[3] == 0.0f);
    rv_step_groups(&step, &mask, accents, NULL, offsets);
    CHECK(offsets[3] == 0.375f && offsets[5] == 0.0625f);
}

/* The engine on a groove model: 3 -> 13 -> 40 read as hits and velocity of 4 ticks x 5 rows. */
static void test_engine_groove(void) {
    static rv_model model;
    static uint8_t scratch[16384];
    static rv_engine engine;
    static float outputs[L1_OUT], scratch_decode[4096];
    const float latent[3] = {2.0f, -1.0f, 0.5f};
    const rv_post_config config = rv_post_config_default();
    const rv_sequence *sequence;
    int t, k, notes = 0;
    make_model(&model, RV_LAYOUT_IN_OUT);
    model.metadata.ticks = TICKS / 2;
    model.metadata.channels = 2;
    model.metadata.channel_ids[1] = RV_CHANNEL_VELOCITY;
    CHECK(rv_model_output_size(&model) == L1_OUT);
    CHECK_STATUS(rv_model_check(&model), RV_OK);
    CHECK(rv_engine_scratch_size(&model) == ((rv_scratch_size(&model) + 3u) & ~(size_t)3u) + L1_OUT * sizeof(float));
    CHECK_STATUS(rv_decode(&model, latent, 1, outputs, scratch_decode, sizeof scratch_decode), RV_OK);
    CHECK_STATUS(rv_engine_init(&engine, &model, scratch, sizeof scratch, &config), RV_OK);
    CHECK_STATUS(rv_engine_run_inference(&engine, latent, config.threshold), RV_OK);
    rv_engine_clock(&engine, NULL);
    sequence = rv_engine_sequence(&engine);
    CHECK(sequence != NULL && sequence->ticks == TICKS / 2);
    for (t = 0; sequence != NULL && t < sequence->ticks; t++) {
        for (k = 0; k < sequence->steps[t].count; k++) {
            const rv_note *note = &sequence->steps[t].notes[k];
            const float hit = outputs[t * ROWS + note->row];
            const float velocity = outputs[(TICKS / 2 + t) * ROWS + note->row];
            const long want = lroundf(127.0f * velocity);
            CHECK(note->probability == hit && note->offset == 0.0f);
            CHECK(note->velocity == (want < 1 ? 1 : want));
            notes++;
        }
    }
    CHECK(notes > 4);
}

static void test_controls(void) {
    CHECK(rv_latent_from_controls(0.0f, 0.0f, 3.0f) == 0.0f);
    CHECK(rv_latent_from_controls(5.0f, 0.0f, 3.0f) == 3.0f);
    CHECK(rv_latent_from_controls(2.5f, 0.0f, 3.0f) == 1.5f);
    CHECK(rv_latent_from_controls(5.0f, 5.0f, 3.0f) == 3.0f);     /* clamped */
    CHECK(rv_latent_from_controls(-5.0f, -2.0f, 2.0f) == -2.0f);   /* clamped, own scale */
    CHECK(rv_latent_from_controls(NAN, 0.0f, 3.0f) == -3.0f);
    CHECK(rv_threshold_from_controls(-5.0f, 0.0f) == 0.0f);
    CHECK(fabsf(rv_threshold_from_controls(5.0f, 0.0f) - 0.3f) < 1e-7f);
    CHECK(fabsf(rv_threshold_from_controls(0.0f, 0.0f) - 0.15f) < 1e-7f);
    CHECK(fabsf(rv_threshold_from_controls(5.0f, 5.0f) - 0.6f) < 1e-6f);
    CHECK(rv_threshold_from_controls(-5.0f, -5.0f) == 0.0f);
}

/* ---- engine ---- */

/* Same notes in every step (field by field: structs have padding). */
static int same_sequence(const rv_sequence *a, const rv_sequence *b) {
    int t, k;
    if (a == NULL || b == NULL || a->ticks != b->ticks) return 0;
    for (t = 0; t < a->ticks; t++) {
        const rv_step *x = &a->steps[t], *y = &b->steps[t];
        if (x->count != y->count) return 0;
        for (k = 0; k < x->count; k++) {
            const rv_note *p = &x->notes[k], *q = &y->notes[k];
            if (p->row != q->row || p->probability != q->probability || p->midi_note != q->midi_note ||
                p->group != q->group || p->accent != q->accent || p->volts != q->volts)
                return 0;
        }
    }
    return 1;
}

/* The first note's row of a step, or -1. */
static int first_row(const rv_step *step) { return (step == NULL || step->count == 0) ? -1 : step->notes[0].row; }

static void test_engine(void) {
    static rv_model model;
    static uint8_t scratch[16384];
    static rv_engine engine;
    static float probs[L1_OUT], scratch_decode[4096];
    rv_sequence expect_a, expect_b;
    const float latent_a[3] = {2.0f, -1.0f, 0.5f}, latent_b[3] = {-2.5f, 2.0f, -1.0f};
    const rv_post_config config = rv_post_config_default();
    const rv_step *step;
    int tick, k, same;
    make_model(&model, RV_LAYOUT_IN_OUT);
    /* the sequences the engine should play, computed directly */
    CHECK_STATUS(rv_decode(&model, latent_a, 1, probs, scratch_decode, sizeof scratch_decode), RV_OK);
    CHECK_STATUS(rv_postprocess(&model.metadata, probs, &config, &expect_a), RV_OK);
    CHECK_STATUS(rv_decode(&model, latent_b, 1, probs, scratch_decode, sizeof scratch_decode), RV_OK);
    CHECK_STATUS(rv_postprocess(&model.metadata, probs, &config, &expect_b), RV_OK);
    same = 1;
    for (k = 0; k < TICKS; k++) same &= first_row(&expect_a.steps[k]) == first_row(&expect_b.steps[k]);
    CHECK(!same); /* the two latents give different sequences */

    CHECK_STATUS(rv_engine_init(&engine, &model, scratch, 16, NULL), RV_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(rv_engine_init(&engine, &model, scratch, sizeof scratch, NULL), RV_OK);
    CHECK(rv_engine_inference_pending(&engine));
    /* nothing to play before the first inference, but the clock counts */
    CHECK(rv_engine_clock(&engine, &tick) == NULL && tick == -1);
    CHECK(rv_engine_clock(&engine, &tick) == NULL);
    CHECK(engine.tick == 1);
    CHECK_STATUS(rv_engine_run_inference(&engine, latent_a, config.threshold), RV_OK);
    CHECK(!rv_engine_inference_pending(&engine));
    CHECK(rv_engine_sequence(&engine) == NULL); /* published, not yet swapped in */
    /* the first sequence starts at once, mid-cycle, and the next one is asked for */
    step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 2 && step == &rv_engine_sequence(&engine)->steps[2]);
    CHECK(first_row(step) == first_row(&expect_a.steps[2]));
    CHECK(rv_engine_inference_pending(&engine));
    CHECK_STATUS(rv_engine_run_inference(&engine, latent_b, config.threshold), RV_OK);
    /* automatic mode: B waits for step 0; A plays out its cycle */
    for (k = 3; k < TICKS; k++) {
        step = rv_engine_clock(&engine, &tick);
        CHECK(tick == k && step == &rv_engine_sequence(&engine)->steps[k]);
        CHECK(same_sequence(rv_engine_sequence(&engine), &expect_a));
    }
    CHECK(!rv_engine_inference_pending(&engine));
    step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 0 && same_sequence(rv_engine_sequence(&engine), &expect_b));
    CHECK(rv_engine_inference_pending(&engine));
    /* an inference not finished by step 0: the current sequence repeats */
    for (k = 1; k <= TICKS; k++) step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 0 && same_sequence(rv_engine_sequence(&engine), &expect_b));

    /* pause until reset: clock edges are ignored; reset goes back to before step 0 */
    step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 1);
    rv_engine_pause_until_reset(&engine);
    CHECK(rv_engine_clock(&engine, &tick) == NULL && tick == -1);
    CHECK(rv_engine_clock(&engine, &tick) == NULL);
    CHECK(engine.tick == 1);
    rv_engine_reset(&engine);
    CHECK(engine.tick == -1);
    step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 0 && step != NULL);

    /* manual mode: no automatic requests; a requested inference plays from the next edge */
    CHECK_STATUS(rv_engine_run_inference(&engine, latent_b, config.threshold), RV_OK); /* clear pending */
    for (k = 1; k < TICKS; k++) step = rv_engine_clock(&engine, &tick);
    rv_engine_set_manual(&engine, 1);
    step = rv_engine_clock(&engine, &tick); /* B, published earlier, swaps in at once in manual mode */
    CHECK(tick == 0);
    for (k = 0; k < 2 * TICKS; k++) rv_engine_clock(&engine, NULL);
    CHECK(!rv_engine_inference_pending(&engine));
    rv_engine_request_inference(&engine);
    CHECK(rv_engine_inference_pending(&engine));
    CHECK_STATUS(rv_engine_run_inference(&engine, latent_a, config.threshold), RV_OK);
    step = rv_engine_clock(&engine, &tick);
    CHECK(tick == 1 && first_row(step) == first_row(&expect_a.steps[1]));
    CHECK(same_sequence(rv_engine_sequence(&engine), &expect_a));
    CHECK(engine.latent[0] == latent_a[0]);
    /* back to automatic: an inference is wanted again */
    rv_engine_set_manual(&engine, 0);
    CHECK(rv_engine_inference_pending(&engine));
    /* a higher threshold gives fewer notes */
    CHECK_STATUS(rv_engine_run_inference(&engine, latent_a, 1.5f), RV_OK);
    for (k = 0; k < TICKS; k++) step = rv_engine_clock(&engine, &tick);
    for (k = 0; k < TICKS; k++) CHECK(rv_engine_sequence(&engine)->steps[k].count == 0);
    CHECK(rv_engine_clock(NULL, &tick) == NULL);

    /* another model: clock position (modulo its ticks), manual mode and pause stay; nothing plays
       until its first inference, which is requested */
    {
        static rv_model shorter;
        static uint8_t scratch2[16384];
        shorter = model;
        shorter.metadata.ticks = TICKS / 2;
        shorter.metadata.rows = ROWS * 2;
        rv_engine_set_manual(&engine, 1);
        rv_engine_reset(&engine);
        for (k = 0; k < TICKS; k++) rv_engine_clock(&engine, NULL);
        CHECK(engine.tick == TICKS - 1);
        rv_engine_pause_until_reset(&engine);
        CHECK_STATUS(rv_engine_set_model(&engine, &shorter, scratch2, 16), RV_ERR_BUFFER_TOO_SMALL);
        CHECK(engine.model == &model && engine.tick == TICKS - 1); /* unchanged on an error */
        CHECK_STATUS(rv_engine_set_model(&engine, &shorter, scratch2, sizeof scratch2), RV_OK);
        CHECK(engine.model == &shorter && engine.tick == (TICKS - 1) % (TICKS / 2));
        CHECK(engine.manual && engine.paused && rv_engine_inference_pending(&engine));
        CHECK(rv_engine_sequence(&engine) == NULL);
        CHECK(rv_engine_clock(&engine, &tick) == NULL); /* still paused */
        rv_engine_reset(&engine);
        CHECK(rv_engine_clock(&engine, &tick) == NULL && engine.tick == 0); /* no sequence yet */
        CHECK_STATUS(rv_engine_run_inference(&engine, latent_a, config.threshold), RV_OK);
        step = rv_engine_clock(&engine, &tick);
        CHECK(tick == 1 && step != NULL && rv_engine_sequence(&engine)->ticks == TICKS / 2);
        CHECK_STATUS(rv_engine_set_model(NULL, &shorter, scratch2, sizeof scratch2), RV_ERR_ARGUMENT);
    }
}

/* ---- real files (optional corpus directory) ---- */

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long n;
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (uint8_t *)malloc((size_t)n + 1);
    *size = fread(data, 1, (size_t)n, f);
    fclose(f);
    return data;
}

static rv_status load(rv_model *model, const uint8_t *bytes, size_t len, uint8_t *aux, size_t aux_len) {
    size_t needed;
    return rv_model_load_tflite(model, bytes, len, aux, aux_len, &needed);
}

static void test_file(const char *path) {
    static uint8_t aux[1 << 16];
    static rv_model model, packed;
    static float latents[3 * 9], a[9 * 8192], b[9 * 8192];
    static float scratch[65536];
    size_t size, len, needed, k, flips = 0, bad_flips = 0;
    uint8_t *bytes = read_file(path, &size), *damaged, *mem;
    int all_errors = 1;
    for (k = 0; k < 27; k++) latents[k] = (float)k / 4.5f - 3.0f;
    if (bytes == NULL) {
        CHECK(bytes != NULL);
        return;
    }
    CHECK_STATUS(rv_model_load_tflite(&model, bytes, size, NULL, 0, &needed),
                 needed > 0 ? RV_ERR_BUFFER_TOO_SMALL : RV_OK);
    CHECK_STATUS(load(&model, bytes, size, aux, sizeof aux), RV_OK);
    CHECK_STATUS(rv_decode(&model, latents, 9, a, scratch, sizeof scratch), RV_OK);
    CHECK_STATUS(rv_model_repack(&model, &packed, NULL, 0, &needed), needed ? RV_ERR_BUFFER_TOO_SMALL : RV_OK);
    mem = (uint8_t *)malloc(needed + 4);
    CHECK_STATUS(rv_model_repack(&model, &packed, mem, needed, &needed), RV_OK);
    CHECK_STATUS(rv_decode(&packed, latents, 9, b, scratch, sizeof scratch), RV_OK);
    CHECK(memcmp(a, b, sizeof(float) * 9 * rv_model_output_size(&model)) == 0);
    free(mem);
    if (model.dtype == RV_S8) { /* only rv_model_repack writes the M7 kernel's streams */
        packed = model;
        packed.layers[0].layout = RV_LAYOUT_S8_ROWS4;
        CHECK_STATUS(rv_model_check(&packed), RV_ERR_MODEL);
    }
    /* every truncation fails cleanly (an exactly sized copy: ASan catches a read past its end) */
    for (len = 0; len < size; len += 1 + len / 64) {
        damaged = (uint8_t *)malloc(len ? len : 1);
        memcpy(damaged, bytes, len);
        all_errors &= load(&model, damaged, len, aux, sizeof aux) != RV_OK;
        free(damaged);
    }
    CHECK(all_errors);
    /* single byte changes anywhere: whatever loads must decode */
    damaged = (uint8_t *)malloc(size);
    for (k = 0; k < size; k += 1 + k / 16) {
        memcpy(damaged, bytes, size);
        damaged[k] ^= 0xa5u;
        flips++;
        if (load(&model, damaged, size, aux, sizeof aux) == RV_OK) {
            (void)rv_decode(&model, latents, 2, a, scratch, sizeof scratch);
        } else {
            bad_flips++;
        }
    }
    CHECK(bad_flips > 0);
    free(damaged);
    free(bytes);
    printf("  %s: ok (%zu bytes, %zu of %zu byte flips refused)\n", path, size, bad_flips, flips);
}

static void test_corpus(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *entry;
    int files = 0;
    CHECK(d != NULL);
    while (d != NULL && (entry = readdir(d)) != NULL) {
        char path[4096];
        if (strstr(entry->d_name, ".tflite") == NULL) continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        test_file(path);
        files++;
    }
    if (d != NULL) closedir(d);
    CHECK(files > 0);
}

int main(int argc, char **argv) {
    test_status_strings();
    test_metadata();
    test_half_to_float();
    test_sigmoid();
    test_quantize_multiplier();
    test_scale_sum();
    test_s8_requantisation();
    test_logistic_table();
    test_decode_float();
    test_model_errors();
    test_row_groups();
    test_postprocess_step();
    test_metadata_v3();
    test_postprocess_groove();
    test_step_groups_groove();
    test_controls();
    test_engine();
    test_engine_groove();
    if (argc > 1) {
        test_corpus(argv[1]);
    }
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
