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
 * interrupt handlers queue them.
 */
#include <stdint.h>
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

uint32_t hal_micros(void) { return 0; }

void hal_midi_note(int channel, int note, int velocity) { (void)channel, (void)note, (void)velocity; }

void hal_report(const char *line)
{
    uint32_t slot = report_head++ % REPORT_QUEUE;
    strncpy(reports[slot], line, sizeof reports[slot] - 1);
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
    return 0;
}
