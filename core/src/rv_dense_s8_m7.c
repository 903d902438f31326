/* Cortex-M7 int8 decode (ARMv7E-M DSP extension, GCC/Clang): the layers of a model repacked into
 * RV_LAYOUT_S8_ROWS4 streams (format: rv_internal.h), one asm function per layer and latent, four rows
 * per group with the sums pinned in r0-r3. TFLite-Micro's reference FULLY_CONNECTED numbers:
 * - Sums: four inputs of the four rows take three ldm (the input pairs, then two rows-by-pair blocks)
 *   and eight smlad (~0.7 instructions per multiply-add); six quads per loop pass (the demo's 48
 *   inputs take two passes, as with eight, in 88 bytes less flash), entered part-way for the
 *   remainder. The stream's weights are doubled and its biases hold the input zero point, so r0-r3
 *   end at 2 * acc (|acc| < 2^30, rv_model_repack checks it).
 * - Requantisation, per output: smmlar gives floor((2 acc * multiplier + 2^31) / 2^32) = gemmlowp's
 *   SaturatingRoundingDoublingHighMul h (exact for multipliers >= 0: floor((acc * m + 2^30) / 2^31))
 *   plus the row's 2^(s-1) + zero_point * 2^s; minus 1 when acc < 0, an arithmetic shift right by s is
 *   RoundingDivideByPOT(h, s) + zero_point (ties away from zero; for acc < 0 with h = 0 both give 0);
 *   ssat clamps to int8. Hidden layers store the int8 values as int16 pairs, the next layer's input
 *   (pkhbt + strd); the last layer of rv_decode looks the probabilities up in the stream's table
 *   (LOGISTIC, then DEQUANTIZE) and stores four floats with one stm.
 * - Per group: its biases come with the previous group's constants (one ldm), the input start, pass
 *   count and loop entry with one ldm from the stack that also jumps there.
 * Elsewhere this file holds nothing.
 */
#include "rv_internal.h"

#if RV_REPACK_S8

/* What the asm function reads (field offsets are used there). */
typedef struct s8_run {
    const int32_t *stream; /* 0: the layer's stream */
    const int16_t *x;      /* 4: int16 inputs, word-aligned, read up to the padded width */
    void *y;               /* 8: int16 outputs (padded rows included) or float probabilities */
    uint32_t quads;        /* 12: padded inputs / 4 */
    uint32_t float_out;    /* 16: 1: y takes the table's floats */
} s8_run;

void rv_s8_rows4_m7(const s8_run *run);

/* One quad: 11 instructions of 32 bits (44 bytes; the computed entry relies on it). */
#define RV_S8_SMLAD4(xr)                                                                                   \
    "smlad r0, r9, " xr ", r0\n\tsmlad r1, r10, " xr ", r1\n\tsmlad r2, r11, " xr ", r2\n\t"               \
    "smlad r3, r12, " xr ", r3\n\t"
#define RV_S8_QUAD                                                                                         \
    "ldm.w r5!, {r7, r8}\n\tldm.w r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r7")                          \
    "ldm.w r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r8")
/* Sum register a (2 acc) -> its int8 output, from the row's {multiplier m, addend k, shift s}. */
#define RV_S8_REQUANTIZE(a, m, k, s)                                                                       \
    "smmlar " m ", " a ", " m ", " k "\n\t"                                                                \
    "add " a ", " m ", " a ", asr #31\n\t"                                                                 \
    "asr " a ", " a ", " s "\n\t"                                                                          \
    "ssat " a ", #8, " a "\n\t"
/* The group's four outputs into r0-r3; r5 = groups left, r12 = the table. */
#define RV_S8_REQUANTIZE4                                                                                  \
    "ldm r4!, {r5, r6, r7, r8, r9, r10, r11}\n\t"                                                          \
    RV_S8_REQUANTIZE("r0", "r6", "r7", "r8") RV_S8_REQUANTIZE("r1", "r9", "r10", "r11")                    \
    "ldm r4!, {r6, r7, r8, r9, r10, r11, r12}\n\t"                                                         \
    RV_S8_REQUANTIZE("r2", "r6", "r7", "r8") RV_S8_REQUANTIZE("r3", "r9", "r10", "r11")
/* The next group (its biases, then its first input pass) or the end. */
#define RV_S8_NEXT(done)                                                                                   \
    "cbz r5, " done "\n\t"                                                                                 \
    "ldm r4!, {r0, r1, r2, r3}\n\t"                                                                        \
    "ldm sp, {r5, r6, pc}\n"

/* Registers: r4 the stream, lr the output. Stack words: [sp] input start, [sp, 4] passes, [sp, 8] loop
   entry, [sp, 12] the store of the outputs (code addresses with the Thumb bit). */
__asm__(".pushsection .text.rv_s8_rows4_m7, \"ax\", %progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global rv_s8_rows4_m7\n\t"
        ".type rv_s8_rows4_m7, %function\n\t"
        ".thumb_func\n"
        "rv_s8_rows4_m7:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #16\n\t"
        "ldm r0, {r4, r5, lr}\n\t"   /* stream, x, y */
        "ldrd r8, r7, [r0, #12]\n\t" /* quads, float_out */
        "adr.w r10, .Lrv_s8_int16\n\t"
        "cbz r7, 1f\n\t"
        "adr.w r10, .Lrv_s8_float\n"
        "1:\n\t"
        "orr r10, r10, #1\n\t"
        "str r10, [sp, #12]\n\t"
        "mov r11, #6\n\t"
        "add r6, r8, #5\n\t"
        "udiv r6, r6, r11\n\t"       /* passes */
        "mls r9, r6, r11, r8\n\t"    /* -(entry quad): quads - 6 * passes */
        "rsb r9, r9, #0\n\t"
        "adr.w r10, .Lrv_s8_body\n\t"
        "orr r10, r10, #1\n\t"
        "mov r11, #44\n\t"
        "mla r7, r9, r11, r10\n\t"
        "stm sp, {r5, r6, r7}\n\t"
        "ldm r4!, {r0, r1, r2, r3}\n\t"
        "bx r7\n\t"
        ".p2align 2\n"
        ".Lrv_s8_body:\n\t"
        RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD
        ".if . - .Lrv_s8_body != 6 * 44\n\t"
        ".error \"rv_s8_rows4_m7: a quad is not 44 bytes\"\n\t"
        ".endif\n\t"
        "subs r6, r6, #1\n\t"
        "bne .Lrv_s8_body\n\t"
        RV_S8_REQUANTIZE4
        "ldr pc, [sp, #12]\n"
        ".Lrv_s8_float:\n\t"
        "ldr r0, [r12, r0, lsl #2]\n\t"
        "ldr r1, [r12, r1, lsl #2]\n\t"
        "ldr r2, [r12, r2, lsl #2]\n\t"
        "ldr r3, [r12, r3, lsl #2]\n\t"
        "stm lr!, {r0, r1, r2, r3}\n\t"
        RV_S8_NEXT(".Lrv_s8_done")
        ".Lrv_s8_int16:\n\t"
        "pkhbt r0, r0, r1, lsl #16\n\t"
        "pkhbt r2, r2, r3, lsl #16\n\t"
        "strd r0, r2, [lr], #8\n\t"
        RV_S8_NEXT(".Lrv_s8_done")
        ".Lrv_s8_done:\n\t"
        "add sp, sp, #16\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size rv_s8_rows4_m7, . - rv_s8_rows4_m7\n\t"
        ".popsection");

const int16_t *rv_s8_rows4_decode(const rv_model *model, const int8_t *latent, int16_t *x16, size_t width,
                                  float *probabilities) {
    s8_run run;
    unsigned l;
    for (l = 0; l < model->layers[0].in; l++) {
        x16[l] = latent[l];
    }
    for (l = 0; l < model->n_layers; l++) {
        run.stream = (const int32_t *)model->layers[l].weights;
        run.x = x16 + l % 2u * width;
        run.float_out = probabilities != NULL && l + 1u == model->n_layers;
        run.y = run.float_out ? (void *)probabilities : (void *)(x16 + (l + 1u) % 2u * width);
        run.quads = (uint32_t)rv_s8_pairs(&model->layers[l]) / 2u;
        rv_s8_rows4_m7(&run);
    }
    return x16 + model->n_layers % 2u * width;
}

#endif
