/* Instruction-count benchmark on the emulated Cortex-M7 (QEMU mps2-an500), read by bench/bench_mcu.py
 * through the TCG plugin bench/qemu_plugin/insn_count.c, which records its counter each time
 * rv_bench_mark() runs. Reads model.tflite from the directory QEMU runs in and prints its sizes. The
 * plugin's "mark i" line counts the instructions from mark i-1 to mark i; here mark i ends:
 *   mark 1       rv_decode of one latent, weights as in the file (row per output)
 *   mark 3       rv_decode of one latent, weights repacked (row per input; int8 rows widened and
 *                interleaved), as the module runs it; its output must equal mark 1's bit for bit
 *   mark 5       the same again (must count the same)
 *   mark 7       the module's whole inference in app_poll (knobs, decode, thresholds, notes)
 *   mark 9 + 2k  the module's clock handler for step k (engine, panel mapping, DAC writes)
 *   mark 9 + 2t  (t = ticks) the step timer's check when no step is due (the board's 20 kHz timer)
 * Its board HAL is the cheapest real one: DAC writes and reports land in memory, as the Teensy's
 * interrupt handlers queue them. Until then hal_micros() stays 0, so the counts do not depend on time.
 *
 * Then, after the last mark and for groove models (more than one output channel), the scheduling
 * jitter of the app's timer as the board drives it: CMSDK TIMER0 plays the clock edges every
 * JITTER_STEP_US (a pulse per step), TIMER1 polls app_timer_due at the board's 20 kHz, both interrupts
 * of one priority; the main loop runs app_poll; hal_micros() reads the free-running dual timer (25 MHz).
 * For each firing of the app's timer (the triggers the groove moves off the edge) the delay from its due
 * time to the poll that fired it is recorded, printed as jitter_min/median/max_us over timed_fires
 * firings. Deterministic under QEMU's -icount (bench/bench_mcu.py passes it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "hal.h"
#include "rackvae.h"
#include "semihost.h"
#include "text.h"

#define FILE_CAPACITY (4u << 20)
#define REPORT_QUEUE 16

__attribute__((section(".psram"), aligned(16))) static uint8_t file_bytes[FILE_CAPACITY];
__attribute__((section(".psram"), aligned(16))) static uint8_t aux[1u << 20];
__attribute__((section(".psram"), aligned(16))) static uint8_t repacked[FILE_CAPACITY];
__attribute__((section(".psram"), aligned(16))) static uint8_t scratch[1u << 20];
__attribute__((section(".psram"), aligned(16))) static uint8_t module_buffer[FILE_CAPACITY];
/* ---- the jitter run's hardware: QEMU mps2-an500 ---- */
#define CPU_HZ 25000000u /* SYSCLK: the CPU's SysTick clock and the APB timers' */
#define TIMER_BASE(n) (0x40000000u + 0x1000u * (n))
#define TIMER_CTRL(n) (*(volatile uint32_t *)(TIMER_BASE(n) + 0x0u)) /* bit 0 enable, bit 3 interrupt */
#define TIMER_VALUE(n) (*(volatile uint32_t *)(TIMER_BASE(n) + 0x4u))
#define TIMER_RELOAD(n) (*(volatile uint32_t *)(TIMER_BASE(n) + 0x8u))
#define TIMER_INTCLEAR(n) (*(volatile uint32_t *)(TIMER_BASE(n) + 0xCu))
#define TIMER_IRQ(n) (8 + (n))
#define DUALTIMER_VALUE (*(volatile uint32_t *)0x40002004u)
#define DUALTIMER_CONTROL (*(volatile uint32_t *)0x40002008u) /* bit 7 enable, bit 1 32-bit */
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define POLL_HZ 20000u            /* the board's step-timer interrupt */
#define JITTER_STEP_US 125000u    /* 16ths at 120 BPM */
#define JITTER_STEPS 16
#define JITTER_SAMPLES 256
typedef void (*vector)(void);
static vector ram_vectors[16 + 16] __attribute__((aligned(128)));
static volatile bool hardware_time;
static volatile unsigned fires;
static uint32_t jitter_us[JITTER_SAMPLES];
static long file_size;
static float probabilities[RV_MAX_TICKS * RV_MAX_ROWS];

/* The plugin's marker: its first instruction's address is passed as mark=. */
__attribute__((noinline)) void rv_bench_mark(void) { __asm__ volatile("" ::: "memory"); }

/* ---- a board HAL whose outputs land in memory ---- */

static volatile float dac_volts[HAL_OUTPUTS];
static volatile uint32_t trigger_count[HAL_OUTPUTS];
static char reports[REPORT_QUEUE][96];
static volatile uint32_t report_head;

void hal_trigger(int output)
{
    dac_volts[output] = 5.0f;
    trigger_count[output]++;
}

void hal_cv(int output, float volts) { dac_volts[output] = volts; }

void hal_led(int led, bool on) { (void)led, (void)on; }

float hal_knob_volts(int knob) { return 0.5f * (float)knob - 0.7f; }

float hal_cv_volts(int input) { return 0.1f * (float)input; }

int hal_list_files(const char *dir, hal_file_found found, void *context)
{
    if (strcmp(dir, "/models/note") != 0) {
        return 0;
    }
    found("bench.tflite", context);
    return 1;
}

long hal_read_file(const char *path, uint8_t *buffer, size_t capacity)
{
    if (strcmp(path, "/models/note/bench.tflite") != 0 || file_size < 0) {
        return -1;
    }
    if ((size_t)file_size > capacity) {
        return -2;
    }
    memcpy(buffer, file_bytes, (size_t)file_size);
    return file_size;
}

uint8_t *hal_model_buffer(size_t *capacity)
{
    *capacity = sizeof module_buffer;
    return module_buffer;
}

bool hal_settings_load(void *data, size_t size) { return (void)data, (void)size, false; }

void hal_settings_save(const void *data, size_t size) { (void)data, (void)size; }

void hal_display_title(const char *type, const char *name) { (void)type, (void)name; }

void hal_display_message(const char *text) { (void)text; }

void hal_display_sequence(const uint8_t *cells, int rows, int ticks) { (void)cells, (void)rows, (void)ticks; }

void hal_display_cursor(int tick) { (void)tick; }

void hal_display_row_label(int row, const char *label) { (void)row, (void)label; }

void hal_display_status(const char *text) { (void)text; }

uint32_t hal_micros(void) { return hardware_time ? (0xFFFFFFFFu - DUALTIMER_VALUE) / (CPU_HZ / 1000000u) : 0; }

void hal_midi_note(int channel, int note, int velocity) { (void)channel, (void)note, (void)velocity; }

void hal_report(const char *line)
{
    uint32_t slot = report_head++ % REPORT_QUEUE;
    strncpy(reports[slot], line, sizeof reports[slot] - 1);
}

static void print_value(const char *name, unsigned long value);

/* ---- the jitter run ---- */

/* TIMER1, 20 kHz: the board's fire_step_timer. */
static void poll_timer(void)
{
    TIMER_INTCLEAR(1) = 1;
    uint32_t due, now = hal_micros();
    if (app_timer_due(&due) && (int32_t)(now - due) >= 0) {
        if (fires < JITTER_SAMPLES) {
            jitter_us[fires] = now - due;
        }
        fires++;
        app_timer(now);
    }
}

/* TIMER0: a clock edge (a pulse per step). */
static void clock_edge(void)
{
    TIMER_INTCLEAR(0) = 1;
    app_gate_edge(APP_GATE_CLOCK, true);
    app_gate_edge(APP_GATE_CLOCK, false);
}

static int compare(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void measure_jitter(void)
{
    const vector *boot = (const vector *)SCB_VTOR;
    for (int i = 0; i < 32; ++i) {
        ram_vectors[i] = i < 7 ? boot[i] : boot[3]; /* the fault handler for what is not used */
    }
    ram_vectors[16 + TIMER_IRQ(0)] = clock_edge;
    ram_vectors[16 + TIMER_IRQ(1)] = poll_timer;
    SCB_VTOR = (uint32_t)ram_vectors;
    DUALTIMER_CONTROL = 0x82u; /* free-running from 0xFFFFFFFF */
    hardware_time = true;
    app_gate_edge(APP_GATE_RESET, true); /* from step 0, nothing pending from the counted steps */
    app_gate_edge(APP_GATE_RESET, false);
    TIMER_RELOAD(0) = JITTER_STEP_US * (CPU_HZ / 1000000u) - 1u;
    TIMER_RELOAD(1) = CPU_HZ / POLL_HZ - 1u;
    TIMER_CTRL(0) = TIMER_CTRL(1) = 1u | 8u; /* enabled, interrupt */
    NVIC_ISER0 = 1u << TIMER_IRQ(0) | 1u << TIMER_IRQ(1);
    __asm__ volatile("cpsie i" ::: "memory");
    /* The main loop never sleeps: under -icount, QEMU 7.2 loses every other timer interrupt that wakes a
       WFI. Until the last step's late triggers have fired. */
    uint32_t end = JITTER_STEPS * JITTER_STEP_US + JITTER_STEP_US / 2;
    while ((int32_t)(hal_micros() - end) < 0) {
        app_poll(hal_micros() / 1000u);
    }
    __asm__ volatile("cpsid i" ::: "memory");
    TIMER_CTRL(0) = TIMER_CTRL(1) = 0;
    unsigned n = fires < JITTER_SAMPLES ? fires : JITTER_SAMPLES;
    qsort(jitter_us, n, sizeof jitter_us[0], compare);
    print_value("timed_fires", fires);
    print_value("jitter_min_us", n ? jitter_us[0] : 0);
    print_value("jitter_median_us", n ? jitter_us[n / 2] : 0);
    print_value("jitter_max_us", n ? jitter_us[n - 1] : 0);
}

/* ---- the measurement ---- */

/* One decode between two marks; the same call path every time, so repeated runs count the same. */
__attribute__((noinline)) static rv_status measure_decode(const rv_model *model)
{
    static const float latent[RV_MAX_LATENT] = {0.25f, -1.5f, 0.75f};
    rv_bench_mark();
    rv_status status = rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch);
    rv_bench_mark();
    return status;
}

static void print_value(const char *name, unsigned long value)
{
    text_line line;
    text_clear(&line);
    text_add(&line, name);
    text_add(&line, " ");
    text_add_uint(&line, value);
    text_add(&line, "\n");
    sh_write0(line.text);
}

static int fail(const char *what, rv_status status)
{
    sh_write0(what);
    sh_write0(": ");
    sh_write0(rv_status_str(status));
    sh_write0("\n");
    return 1;
}

int main(void)
{
    int handle = sh_open_read("model.tflite");
    file_size = handle < 0 ? -1 : sh_flen(handle);
    if (file_size < 0 || (size_t)file_size > FILE_CAPACITY || sh_read(handle, file_bytes, (size_t)file_size) != file_size) {
        sh_write0("cannot read model.tflite\n");
        return 1;
    }
    sh_close(handle);

    rv_model model, fast;
    size_t aux_needed = 0, repack_needed = 0;
    rv_status status = rv_model_load_tflite(&model, file_bytes, (size_t)file_size, aux, sizeof aux, &aux_needed);
    if (status != RV_OK) {
        return fail("load", status);
    }
    status = rv_model_repack(&model, &fast, repacked, sizeof repacked, &repack_needed);
    if (status != RV_OK) {
        return fail("repack", status);
    }
    size_t macs = 0;
    for (int l = 0; l < model.n_layers; ++l) {
        macs += (size_t)model.layers[l].in * model.layers[l].out;
    }
    print_value("file_bytes", file_size);
    print_value("aux_bytes", (unsigned long)aux_needed);
    print_value("repack_bytes", (unsigned long)repack_needed);
    print_value("scratch_bytes", (unsigned long)rv_engine_scratch_size(&fast));
    print_value("engine_bytes", (unsigned long)sizeof(rv_engine));
    print_value("macs", (unsigned long)macs);
    print_value("outputs", rv_model_output_size(&model));
    print_value("ticks", model.metadata.ticks);

    const rv_model *measured[3] = {&model, &fast, &fast};
    static float as_file[RV_MAX_TICKS * RV_MAX_ROWS];
    for (int run = 0; run < 3; ++run) {
        status = measure_decode(measured[run]);
        if (status != RV_OK) {
            return fail("decode", status);
        }
        if (run == 0) {
            memcpy(as_file, probabilities, sizeof as_file);
        } else if (memcmp(as_file, probabilities, sizeof as_file) != 0) {
            /* the repacked weights run other kernels, which must compute the same bits */
            sh_write0("repacked decode differs from the file's\n");
            return 1;
        }
    }

    app_power_on();
    rv_bench_mark();
    app_poll(0);
    rv_bench_mark();
    for (int k = 0; k < model.metadata.ticks; ++k) {
        rv_bench_mark();
        app_gate_edge(APP_GATE_CLOCK, true);
        rv_bench_mark();
        app_gate_edge(APP_GATE_CLOCK, false);
    }
    uint32_t due;
    rv_bench_mark();
    bool timer_wanted = app_timer_due(&due);
    rv_bench_mark();
    uint32_t triggers = 0;
    for (int jack = 0; jack < HAL_OUTPUTS; ++jack) {
        triggers += trigger_count[jack];
    }
    print_value("triggers", triggers);
    print_value("timer_wanted", timer_wanted);
    if (model.metadata.channels > 1) { /* hits-only models time no triggers */
        measure_jitter();
    }
    return 0;
}
