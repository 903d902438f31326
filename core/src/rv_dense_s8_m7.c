/* Cortex-M7 fast path of the int8 dense layers (ARMv7E-M DSP extension, GCC/Clang), used by
 * rv_dense_s8. int8 layers repacked into RV_LAYOUT_S8_ROWS4 take ldm + smlad only (~0.7 instructions
 * per multiply-add) and a requantisation of eight instructions per output from constants prepared by
 * rv_model_repack; the numbers are TFLite-Micro's reference int8 kernel's.
 * Elsewhere this file holds nothing; rv_internal.h then makes the hooks return 0.
 */
#include "rv_internal.h"

#if defined(RV_TARGET_M7)

/* ---- int8 (DSP extension). TFLite's OUT_IN rows are left to the portable kernel: the module runs
   int8 layers repacked (rv_model_repack), and a second DSP kernel for the unpacked fallback would cost
   more flash than it saves time where memory is too short to repack. ---- */

size_t rv_dense_s8_fast(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    (void)layer, (void)x16, (void)nb, (void)y;
    return 0;
}

#if defined(__ARM_FEATURE_DSP)
/* ---- int8 in RV_LAYOUT_S8_ROWS4 with the requantisation constants rv_model_repack writes after the
   weights (rv_s8_rows4_consts): one asm function runs a whole latent through the layer, four rows per
   group with the sums pinned in r0-r3.
   - Sums: four inputs of the four rows take three ldm (an input pair each for two rows-by-pair blocks)
     and eight smlad; eight quads per loop pass, entered part-way for the remainder (a computed entry
     instead of a count test), then a tail for the last 1-3 inputs (zero weights pad the rows).
   - Requantisation: eight instructions per output from the registers (see rv_s8_rows4_consts).
   - Per group: the next group's biases come with the constants (one ldm), the input pointer, pass
     count and the constant / output pointers live in four stack words (ldrd / strd). ---- */

/* What the asm function reads (field offsets are used there). */
typedef struct s8_run {
    const int16_t *w;     /* 0: the layer's packed weights */
    const int32_t *k;     /* 4: the constant stream after its header word */
    int8_t *y;            /* 8 */
    const int16_t *x;     /* 12: offset inputs, word-aligned */
    uint32_t groups;      /* 16: full groups of four rows (>= 1) */
    uint32_t quads;       /* 20: in / 4 */
    uint32_t tail;        /* 24: in % 4 */
} s8_run;

void rv_s8_rows4_m7(const s8_run *run);

/* One quad: 11 instructions of 32 bits (44 bytes; the computed entry relies on it). */
#define RV_S8_SMLAD4(xr)                                                                                   \
    "smlad r0, r9, " xr ", r0\n\tsmlad r1, r10, " xr ", r1\n\tsmlad r2, r11, " xr ", r2\n\t"               \
    "smlad r3, r12, " xr ", r3\n\t"
#define RV_S8_QUAD                                                                                         \
    "ldm.w r5!, {r7, r8}\n\tldm.w r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r7")                          \
    "ldm.w r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r8")
/* Output of the sum in register a: constants {multiplier, high addend, shift} (rv_s8_rows4_consts). */
#define RV_S8_REQUANTIZE(a)                                                                                \
    "ldm r5!, {r7, r8, r9}\n\t"                                                                            \
    "and r10, " a ", #0x80000000\n\t"                                                                      \
    "orr r10, r10, #0x40000000\n\t"                                                                        \
    "add r11, r8, " a ", asr #31\n\t"                                                                      \
    "smlal r10, r11, " a ", r7\n\t"                                                                        \
    "asr r11, r11, r9\n\t"                                                                                 \
    "ssat r11, #8, r11\n\t"                                                                                \
    "strb r11, [r6], #1\n\t"

/* Stack words: [sp] input start, [sp, 4] passes, [sp, 8] constants, [sp, 12] output, [sp, 16] loop
   entry, [sp, 20] tail (code addresses with the Thumb bit). */
__asm__(".pushsection .text.rv_s8_rows4_m7, \"ax\", %progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global rv_s8_rows4_m7\n\t"
        ".type rv_s8_rows4_m7, %function\n\t"
        ".thumb_func\n"
        "rv_s8_rows4_m7:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #28\n\t"
        "ldrd r4, r5, [r0]\n\t"       /* w, k */
        "ldrd r6, r7, [r0, #8]\n\t"   /* y, x */
        "ldr lr, [r0, #16]\n\t"       /* groups */
        "ldrd r8, r9, [r0, #20]\n\t"  /* quads, tail */
        "adr.w r10, .Lrv_s8_tails\n\t"
        "ldr r10, [r10, r9, lsl #2]\n\t"
        "str r10, [sp, #20]\n\t"
        "cmp r8, #0\n\t"
        "beq .Lrv_s8_no_quads\n\t"
        "rsb r9, r8, #0\n\t"          /* entry quad: (-quads) mod 8 */
        "and r9, r9, #7\n\t"
        "add r8, r8, #7\n\t"
        "lsr r8, r8, #3\n\t"          /* passes */
        "adr.w r10, .Lrv_s8_body\n\t"
        "add r10, r10, #1\n\t"
        "mov r11, #44\n\t"
        "mla r10, r9, r11, r10\n"
        ".Lrv_s8_no_quads:\n\t"
        "str r10, [sp, #16]\n\t"
        "strd r7, r8, [sp]\n\t"
        "ldm r5!, {r0-r3}\n\t"        /* the first group's biases */
        "strd r5, r6, [sp, #8]\n"
        ".Lrv_s8_group:\n\t"
        "ldrd r5, r6, [sp]\n\t"       /* input pointer, passes */
        "ldr pc, [sp, #16]\n"
        ".Lrv_s8_body:\n\t"
        RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD RV_S8_QUAD
        ".if . - .Lrv_s8_body != 8 * 44\n\t"
        ".error \"rv_s8_rows4_m7: a quad is not 44 bytes\"\n\t"
        ".endif\n\t"
        "subs r6, r6, #1\n\t"
        "bne .Lrv_s8_body\n\t"
        "ldr pc, [sp, #20]\n"
        ".Lrv_s8_tail1:\n\t"          /* the last input alone: the pair's other weight is 0 */
        "ldrsh r7, [r5]\n\t"
        "ldm r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r7")
        "add r4, r4, #16\n\t"
        "b .Lrv_s8_requantize\n"
        ".Lrv_s8_tail2:\n\t"
        "ldr r7, [r5]\n\t"
        "ldm r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r7")
        "add r4, r4, #16\n\t"
        "b .Lrv_s8_requantize\n"
        ".Lrv_s8_tail3:\n\t"
        "ldr r7, [r5]\n\t"
        "ldrsh r8, [r5, #4]\n\t"
        "ldm r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r7")
        "ldm r4!, {r9, r10, r11, r12}\n\t" RV_S8_SMLAD4("r8")
        ".Lrv_s8_requantize:\n\t"
        "ldrd r5, r6, [sp, #8]\n\t"   /* constants, output */
        RV_S8_REQUANTIZE("r0") RV_S8_REQUANTIZE("r1") RV_S8_REQUANTIZE("r2") RV_S8_REQUANTIZE("r3")
        "ldm r5!, {r0-r3}\n\t"        /* the next group's biases */
        "strd r5, r6, [sp, #8]\n\t"
        "subs lr, lr, #1\n\t"
        "bne .Lrv_s8_group\n\t"
        "add sp, sp, #28\n\t"
        "pop {r4-r11, pc}\n\t"
        ".p2align 2\n"
        ".Lrv_s8_tails:\n\t"
        ".word .Lrv_s8_requantize + 1, .Lrv_s8_tail1 + 1, .Lrv_s8_tail2 + 1, .Lrv_s8_tail3 + 1\n\t"
        ".size rv_s8_rows4_m7, . - rv_s8_rows4_m7\n\t"
        ".popsection");

size_t rv_dense_s8_rows4_fast(const rv_layer *layer, const int16_t *x16, size_t nb, int8_t *y) {
    const size_t in = layer->in, out = layer->out;
    const int32_t *consts = rv_s8_rows4_consts(layer);
    s8_run run;
    size_t b;
    /* ldm needs words (an odd width in a block of latents); other constants take the portable kernel */
    if (consts == NULL || out < 4 || (uintptr_t)x16 % 4 != 0 || (in % 2 != 0 && nb > 1)) {
        return 0;
    }
    run.groups = (uint32_t)(out / 4);
    run.quads = (uint32_t)(in / 4);
    run.tail = (uint32_t)(in % 4);
    for (b = 0; b < nb; b++, x16 += in, y += out) {
        run.w = (const int16_t *)layer->weights;
        run.k = consts;
        run.y = y;
        run.x = x16;
        rv_s8_rows4_m7(&run);
    }
    return out & ~(size_t)3;
}
#endif

#endif
