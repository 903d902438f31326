/* The core on a Cortex-M0+ without FPU (QEMU microbit), driven by tests/test_mcu_families.py and
 * bench/bench_mcu.py. The model is compiled in: the exporter's C arrays, descriptor rv_mcu_model, in
 * flash (16 KiB of RAM holds no .tflite file). Run QEMU in a directory holding
 *   latents.bin        N x latent_dim float32, little endian
 * and it writes probabilities.bin (N x ticks * rows float32) decoded one latent at a time with
 * rv_decode, and prints over semihosting the memory the decode took:
 *   scratch <bytes>    rv_scratch_size of the model
 *   stack <bytes>      the deepest stack of the first decode (painted words overwritten below the top)
 * The first decode runs between two calls of rv_bench_mark (the instruction-counting plugin's marker).
 * The exit status is 0, the rv_status of a failed decode, or 1 for a file error. */
#include <stdint.h>

#include "rackvae.h"
#include "semihost.h"

extern const rv_model rv_mcu_model;
extern uint32_t __bss_end, __stack_top;

#define STACK_PAINT 0xA5A5A5A5u

static uint32_t scratch[1024];
static float latent[RV_MAX_LATENT];
static float probabilities[2048];

/* The instruction-counting plugin records each call (bench/qemu_plugin/insn_count.c). */
__attribute__((noinline)) void rv_bench_mark(void) { __asm__ volatile("" ::: "memory"); }

static void print_value(const char *name, uint32_t value)
{
    char text[12];
    int n = (int)sizeof text - 1;
    text[n] = '\0';
    do {
        text[--n] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    sh_write0(name);
    sh_write0(" ");
    sh_write0(&text[n]);
    sh_write0("\n");
}

/* Paints the free stack below this frame; stack_used() finds the lowest word a call overwrote. */
__attribute__((noinline)) static void paint_stack(void)
{
    volatile uint32_t *word = &__bss_end;
    uint32_t here;
    while ((uintptr_t)word < (uintptr_t)&here - 256u) {
        *word++ = STACK_PAINT;
    }
}

static uint32_t stack_used(void)
{
    const uint32_t *word = &__bss_end;
    while (*word == STACK_PAINT) {
        word++;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)word);
}

int main(void)
{
    const rv_model *model = &rv_mcu_model;
    const size_t latent_size = rv_model_latent_dim(model) * sizeof(float);
    const size_t output_size = rv_model_output_size(model) * sizeof(float);
    int input = sh_open_read("latents.bin"), output, result = 0;
    long remaining;
    uint32_t first = 1;
    if (input < 0) {
        return sh_fail("latents.bin", "cannot read", 1);
    }
    if (output_size > sizeof probabilities || rv_scratch_size(model) > sizeof scratch) {
        return sh_fail("model", "too large for this program's buffers", 1);
    }
    output = sh_open_write("probabilities.bin");
    if (output < 0) {
        return sh_fail("probabilities.bin", "cannot open for writing", 1);
    }
    for (remaining = sh_flen(input); remaining >= (long)latent_size && result == 0; remaining -= (long)latent_size) {
        rv_status status;
        if (sh_read(input, latent, latent_size) != (long)latent_size) {
            result = sh_fail("latents.bin", "read failed", 1);
            break;
        }
        if (first) {
            paint_stack();
            rv_bench_mark();
        }
        status = rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch);
        if (first) {
            rv_bench_mark();
            print_value("scratch", (uint32_t)rv_scratch_size(model));
            print_value("stack", stack_used());
            first = 0;
        }
        if (status != RV_OK) {
            result = sh_fail("decode", rv_status_str(status), (int)status);
        } else if (sh_write(output, probabilities, output_size) != 0) {
            result = sh_fail("probabilities.bin", "write failed", 1);
        }
    }
    sh_close(input);
    sh_close(output);
    return result;
}
