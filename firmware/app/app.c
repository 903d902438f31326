/* The module: one instance, driven by the target through app.h. Gate edges (possibly in an interrupt)
 * only touch the sequencer engine and the jacks; loading, inference and the display run in app_poll. */
#include "app.h"

#include <string.h>

#include "default_model.h"
#include "hal.h"
#include "model_list.h"
#include "panel.h"
#include "rackvae.h"
#include "report.h"

#define HOLD_TO_TOGGLE_MS 1000u
#define LED_PAUSE 0
#define LED_MANUAL 2
#define SETTINGS_MAGIC 0x31535652u /* "RVS1" */

typedef struct {
    uint32_t magic;
    char model_path[MODEL_PATH_CAPACITY];
} settings;

static struct {
    model_list models;
    int selected;
    volatile int select_steps; /* encoder detents not yet acted on */
    rv_model model;
    rv_engine engine;
    volatile bool engine_ready; /* false while a model loads: the clock must not touch the engine */
    volatile int missed_clocks; /* clock edges during a load, replayed onto the new model's tick */
    bool manual;
    bool led_on[HAL_BUTTONS];
    bool inference_button_down;
    bool inference_button_held;
    uint32_t inference_button_since_ms;
    const rv_sequence *shown_sequence;
    int shown_tick;
    uint8_t cells[RV_MAX_TICKS * RV_MAX_ROWS];
} app;

static void set_led(int led, bool on)
{
    if (app.led_on[led] != on) {
        app.led_on[led] = on;
        hal_led(led, on);
    }
}

static rv_kind model_kind(void) { return (rv_kind)app.model.metadata.kind; }

/* ---- loading ---- */

static size_t align_up(size_t offset) { return (offset + 15u) & ~(size_t)15u; }

/* Loads a card file into the board's model buffer: the file, the int8 constants, the weights repacked
   for the fast kernels when they fit, then the engine's scratch. */
static rv_status load_card_model(const char *path, rv_model *model, uint8_t **scratch, size_t *scratch_len,
                                 const char **problem)
{
    size_t capacity;
    uint8_t *buffer = hal_model_buffer(&capacity);
    long size = hal_read_file(path, buffer, capacity);
    if (size < 0) {
        *problem = size == -2 ? "file larger than the model buffer" : "cannot read the file";
        return RV_ERR_ARGUMENT;
    }
    size_t used = align_up((size_t)size), aux_needed = 0;
    rv_status status = rv_model_load_tflite(model, buffer, (size_t)size, NULL, 0, &aux_needed);
    if (status == RV_ERR_BUFFER_TOO_SMALL) { /* an int8 model: its constants follow the file */
        if (aux_needed > capacity - used) {
            *problem = "not enough memory for the model";
            return RV_ERR_BUFFER_TOO_SMALL;
        }
        status = rv_model_load_tflite(model, buffer, (size_t)size, buffer + used, capacity - used, &aux_needed);
        used = align_up(used + aux_needed);
    }
    if (status != RV_OK) {
        return status;
    }
    /* Weights repacked row-per-input run the faster kernels; skipped when memory is short. */
    size_t repack_needed = 0;
    rv_model packed;
    rv_model_repack(model, &packed, NULL, 0, &repack_needed);
    size_t repacked_end = align_up(used + repack_needed);
    if (repack_needed > 0 && repacked_end <= capacity &&
        rv_engine_scratch_size(model) <= capacity - repacked_end &&
        rv_model_repack(model, &packed, buffer + used, repack_needed, &repack_needed) == RV_OK) {
        *model = packed;
        used = repacked_end;
    }
    *scratch_len = rv_engine_scratch_size(model);
    if (*scratch_len > capacity - used) {
        *problem = "not enough memory for the model";
        return RV_ERR_BUFFER_TOO_SMALL;
    }
    *scratch = buffer + used;
    return RV_OK;
}

/* Loads entry index and starts the engine on it, keeping the clock position, mode and pause. */
static rv_status start_model(int index, const char **problem)
{
    app.engine_ready = false;
    app.missed_clocks = 0;
    rv_model model;
    uint8_t *scratch;
    size_t scratch_len;
    rv_status status;
    *problem = NULL;
    const char *name = model_list_name(&app.models, index);
    if (model_list_is_built_in(&app.models, index)) {
        /* Weights stay in flash; the model buffer, free while no card model plays, holds the scratch
           (the engine refuses a scratch too small for it). */
        model = rv_default_model;
        scratch = hal_model_buffer(&scratch_len);
        status = rv_model_verify(&model);
    } else {
        status = load_card_model(name, &model, &scratch, &scratch_len, problem);
    }
    if (status != RV_OK) {
        return status;
    }
    app.model = model;
    if (app.engine.model == NULL) {
        /* At most 4 notes per tick, as the original: one per voice of a note model. */
        rv_post_config config = rv_post_config_default();
        config.max_notes = PANEL_NOTE_VOICES;
        status = rv_engine_init(&app.engine, &app.model, scratch, scratch_len, &config);
    } else {
        /* keeps the clock position, manual mode and pause */
        status = rv_engine_set_model(&app.engine, &app.model, scratch, scratch_len);
    }
    if (status != RV_OK) {
        return status;
    }
    /* The next clock edge continues where the rack is, not at step 0. */
    for (int missed = app.missed_clocks; missed > 0; --missed) {
        (void)rv_engine_clock(&app.engine, NULL);
    }
    app.selected = index;
    app.shown_sequence = NULL;
    app.engine_ready = true;
    report_model_loaded(&app.model.metadata, app.engine.config.zero_volt_note, name);
    hal_display_title(model_kind() == RV_KIND_PERC ? "DRUM" : "NOTE", name);
    return RV_OK;
}

/* Starts entry index, or the next one that loads in direction step (+1/-1); the built-in model
   always loads, so this ends. Every skipped file is reported and its reason shown. */
static void select_model(int index, int step)
{
    for (int tries = 0; tries < app.models.count; ++tries) {
        const char *problem;
        rv_status status = start_model(index, &problem);
        if (status == RV_OK) {
            return;
        }
        report_model_skipped(model_list_name(&app.models, index), problem ? problem : rv_status_str(status));
        index = (index + step + app.models.count) % app.models.count;
    }
}

static void save_selection(void)
{
    settings saved;
    memset(&saved, 0, sizeof saved);
    saved.magic = SETTINGS_MAGIC;
    strncpy(saved.model_path, model_list_name(&app.models, app.selected), MODEL_PATH_CAPACITY - 1);
    hal_settings_save(&saved, sizeof saved);
}

/* ---- entry points ---- */

void app_power_on(void)
{
    memset(&app, 0, sizeof app);
    app.shown_tick = -2;
    hal_display_message("");
    for (int led = 0; led < HAL_BUTTONS; ++led) {
        hal_led(led, false);
    }
    model_list_scan(&app.models);
    settings saved;
    int index = 0;
    if (hal_settings_load(&saved, sizeof saved) && saved.magic == SETTINGS_MAGIC) {
        saved.model_path[MODEL_PATH_CAPACITY - 1] = '\0';
        int found = model_list_find(&app.models, saved.model_path);
        index = found >= 0 ? found : 0;
    }
    select_model(index, +1);
}

void app_gate_edge(app_gate gate, bool high)
{
    if (!high) {
        return;
    }
    if (!app.engine_ready) {
        app.missed_clocks += gate == APP_GATE_CLOCK;
        return;
    }
    switch (gate) {
    case APP_GATE_CLOCK: {
        int tick;
        const rv_step *step = rv_engine_clock(&app.engine, &tick);
        if (step != NULL) {
            report_tick(tick);
            panel_play_step(step, model_kind());
        }
        break;
    }
    case APP_GATE_RESET:
        rv_engine_reset(&app.engine);
        set_led(LED_PAUSE, false);
        break;
    case APP_GATE_INFERENCE:
        if (app.manual) {
            rv_engine_request_inference(&app.engine);
        }
        break;
    }
}

void app_button(app_button_id button, bool pressed, uint32_t now_ms)
{
    if (!app.engine_ready) {
        return;
    }
    switch (button) {
    case APP_BUTTON_PAUSE:
        if (pressed) {
            rv_engine_pause_until_reset(&app.engine);
            set_led(LED_PAUSE, true);
        }
        break;
    case APP_BUTTON_RESET:
        if (pressed) {
            rv_engine_reset(&app.engine);
            set_led(LED_PAUSE, false);
        }
        break;
    case APP_BUTTON_INFERENCE:
        if (pressed) {
            app.inference_button_down = true;
            app.inference_button_held = false;
            app.inference_button_since_ms = now_ms;
        } else if (app.inference_button_down) {
            app.inference_button_down = false;
            /* A press shorter than the hold runs an inference in manual mode. */
            if (!app.inference_button_held && app.manual) {
                rv_engine_request_inference(&app.engine);
            }
        }
        break;
    }
}

void app_select(int delta) { app.select_steps += delta; }

static void run_inference(void)
{
    const rv_metadata *meta = &app.model.metadata;
    float latent[RV_MAX_LATENT] = {0};
    int latent_dim = rv_model_latent_dim(&app.model);
    for (int k = 0; k < latent_dim && k < HAL_KNOBS - 1; ++k) {
        latent[k] = rv_latent_from_controls(hal_knob_volts(k), hal_cv_volts(k), (float)meta->latent_scale);
    }
    float threshold = rv_threshold_from_controls(hal_knob_volts(HAL_KNOBS - 1), hal_cv_volts(HAL_KNOBS - 1));
    rv_status status = rv_engine_run_inference(&app.engine, latent, threshold);
    report_inference(latent, latent_dim, threshold, status);
}

static void update_display(void)
{
    const rv_sequence *sequence = rv_engine_sequence(&app.engine);
    if (sequence != NULL && sequence != app.shown_sequence) {
        int rows = app.model.metadata.rows, ticks = sequence->ticks;
        memset(app.cells, 0, (size_t)(rows * ticks));
        for (int t = 0; t < ticks; ++t) {
            const rv_step *step = &sequence->steps[t];
            for (int n = 0; n < step->count; ++n) {
                const rv_note *note = &step->notes[n];
                int colour = model_kind() == RV_KIND_PERC ? note->group : note->midi_note / 12;
                app.cells[t * rows + note->row] = (uint8_t)(1 + colour);
            }
        }
        hal_display_sequence(app.cells, rows, ticks);
        app.shown_sequence = sequence;
    }
    if (app.engine.tick != app.shown_tick) {
        app.shown_tick = app.engine.tick;
        hal_display_cursor(app.shown_tick);
    }
}

void app_poll(uint32_t now_ms)
{
    if (app.inference_button_down && !app.inference_button_held &&
        now_ms - app.inference_button_since_ms >= HOLD_TO_TOGGLE_MS) {
        app.inference_button_held = true;
        app.manual = !app.manual;
        if (app.engine_ready) {
            rv_engine_set_manual(&app.engine, app.manual);
        }
        set_led(LED_MANUAL, app.manual);
    }
    if (app.select_steps != 0) {
        int steps = app.select_steps;
        app.select_steps = 0;
        int count = app.models.count;
        hal_display_message("");
        select_model(((app.selected + steps) % count + count) % count, steps > 0 ? +1 : -1);
        save_selection();
    }
    if (app.engine_ready && rv_engine_inference_pending(&app.engine)) {
        run_inference();
    }
    if (app.engine_ready) {
        update_display();
    }
}
