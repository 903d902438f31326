/* The module: one instance, driven by the target through app.h. Gate edges (possibly in an interrupt)
 * only touch the sequencer engine and the jacks; loading, inference and the display run in app_poll. */
#include "app.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "default_model.h"
#include "hal.h"
#include "labels.h"
#include "model_list.h"
#include "panel.h"
#include "rackvae.h"
#include "report.h"
#include "text.h"

#define HOLD_TO_TOGGLE_MS 1000u
#define LED_PAUSE 0
#define LED_LAYER 1 /* lit while a shift layer is held */
#define LED_MANUAL 2
#define SETTINGS_MAGIC 0x33535652u /* "RVS3": this layout; other sizes or magics are ignored */
#define SAVE_DELAY_MS 2000u        /* a changed setting is saved once the pots rest this long */
#define CATCH_VOLTS 0.1f           /* a pot moved this far from where it was when shift went down */
#define THRESHOLD_SPAN 0.25f       /* the threshold pot and CV each add +-this to the model's threshold */
#define DENSITY_STEP 0.0025f       /* threshold offset per percent of density */
#define MUTE_OFFSET 2.0f           /* density -100: above every probability */
#define CHAOS_SEED 0x9E3779B9u
#define CLOCK_INTERNAL 4 /* clock setting: 0-3 an external clock of clock_ppqn[] pulses per quarter */
#define STEP_US_PER_BPM 15000000u /* a step is a 16th note: 60 s / 4 */
#define TAP_MIN_MS 250u           /* taps 250..1500 ms apart: 240..40 BPM */
#define TAP_MAX_MS 1500u
#define TEMPO_CHANGE_SHIFT 2      /* an interval 1/4 off the estimate is a new tempo */
#define FIRE_ALL 0x40000000u /* fire(now + FIRE_ALL): every pending output, due up to 2^30 us (18 min)
                                before or after now (0x7FFFFFFF kept one overdue by 2 us or more) */

enum { LAYER_NONE = 0, LAYER_DENSITY = 1, LAYER_PLAY = 2, LAYER_GROOVE = 3 };

static const uint8_t clock_ppqn[CLOCK_INTERNAL] = {1, 2, 4, 24};

/* Everything a power cycle keeps. */
typedef struct {
    uint32_t magic;
    char model_path[MODEL_PATH_CAPACITY];
    int8_t density[PANEL_PERC_TRIGGERS]; /* per group, -100..100 percent (0: the model's threshold) */
    int8_t note_density;                 /* note models, likewise */
    uint8_t max_notes;                   /* note models: 1..PANEL_NOTE_VOICES per tick */
    uint8_t chaos;                       /* 0..100 percent of the latent range */
    uint8_t length;                      /* pattern length, 1..RV_MAX_TICKS (the model's ticks at most) */
    uint8_t clock;                       /* 0-3: external at clock_ppqn[clock]; CLOCK_INTERNAL */
    uint8_t bpm;                         /* internal clock, 40..240 */
    uint8_t groove;                      /* 0..200 percent of the learned offsets (100: as learned) */
    uint8_t swing;                       /* 0..75 percent of a step, the odd steps' extra delay */
} settings;

/* An output waiting for its time (a late note, or an early one of the next step), then fired and
   waiting for its MIDI notes from the main loop. Its step is never rewritten while it waits: a model
   change waits for the MIDI of what fired and drops what waits (start_model); an inference waits for
   early notes planned from the buffer it rewrites, and sends the MIDI of what fired first (back_free). */
typedef struct {
    panel_output out;
    uint32_t due_us;
    const rv_step *step; /* for its MIDI notes */
    uint8_t count;       /* played_count of its step, for the MIDI note-offs */
} timed_output;

/* Fired outputs waiting for their MIDI notes. No size is enough for a main loop held up (a card load,
   a long inference) under a fast clock, so a full ring takes no more: an output fired then plays on
   its jack without MIDI; the ring is never overwritten (a power of 2: the 8-bit indices wrap with it). */
#define FIRED_RING 16


/* Small fields first, within reach of 16-bit loads and stores from the struct's base: the bytes (up to
   offset 31), then the words (up to 124); the arrays (queues, model list, model, engine, display cells)
   after them. */
static struct {
    volatile bool engine_ready; /* false while a model loads: the clock must not touch the engine */
    bool manual;
    bool led_on[HAL_BUTTONS];
    bool inference_button_down;
    bool inference_button_held;
    /* clock: divider of a 24 ppqn clock, step timer (internal clock, multiplied 1 and 2 ppqn pulses) */
    volatile uint8_t length;     /* pattern length of this model */
    volatile uint8_t pulse_skip; /* pulses to ignore before the next step */
    volatile uint8_t timer_left; /* multiplied steps still due before the next pulse */
    volatile bool pulse_seen;
    /* groove timing */
    uint8_t tempo;                /* since the last reset or tempo change: 1 an edge, 2 an interval */
    uint8_t slot;
    volatile uint8_t early_note;  /* 1: an early note fired on its edge (no tempo), 2: reported */
    uint8_t timed;                /* outputs waiting in queue */
    uint8_t planned_count;        /* outputs in planned_out */
    bool perc;                    /* a percussion model (else notes) */
    bool velocity_cv;             /* the model has a velocity channel: accents carry it */
    bool offsets;                 /* and an offset channel: notes may come early */
    uint8_t fired_head; /* fired[]: written by the clock and the timer (interrupts), read from tail on */
    uint8_t fired_tail; /* by the main loop, which never interrupts them */
    /* settings and shift layers */
    bool dirty;
    bool layer_used;    /* a pot was turned while the layer's button was held */
    bool tapped;
    uint8_t midi_on_count;
    uint8_t midi_channel;
    int selected;
    volatile int select_steps; /* encoder detents not yet acted on */
    volatile int missed_clocks; /* clock steps during a load, replayed onto the new model's tick */
    uint32_t inference_button_since_ms;
    const rv_sequence *shown_sequence;
    int shown_tick;
    volatile uint32_t last_pulse_us;
    volatile uint32_t timer_due_us;
    volatile uint32_t timer_period_us;
    /* the clock's period: median of the last 4 step intervals */
    uint32_t edge_us;
    uint32_t period_us;           /* the estimate; 0 before the first interval */
    uint32_t interval_us[4];
    const rv_step *volatile planned; /* the step whose early notes the last edge queued */
    /* the last step played, for its report in the main loop */
    volatile int played_tick;
    volatile unsigned played_count;
    unsigned reported_count;
    uint32_t changed_ms;
    int layer;
    unsigned turned;    /* bit k: pot k left its position of when the button went down */
    uint32_t rng;       /* chaos generator, reseeded by reset */
    uint32_t last_tap_ms;
    uint16_t midi_on[2 * RV_MAX_NOTES]; /* notes still sounding on midi_channel | their step's
                                           played_count (low 8 bits) << 8 */
    timed_output queue[2 * PANEL_OUTPUTS];
    timed_output fired[FIRED_RING];
    panel_output planned_out[PANEL_OUTPUTS]; /* planned's outputs, from the edge that planned it */
    float held_knob[HAL_KNOBS];
    /* the model's own thresholds: the threshold pot's centre and each group's offset from it */
    float centre;
    float model_offsets[PANEL_PERC_TRIGGERS];
    settings s;
    rv_engine engine;
    rv_model model;
    uint8_t cells[RV_MAX_TICKS * RV_MAX_ROWS];
    model_list models;
} app;

static void set_led(int led, bool on)
{
    if (app.led_on[led] != on) {
        app.led_on[led] = on;
        hal_led(led, on);
    }
}

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
        *problem = size == -2 ? "file too large" : "cannot read";
        return RV_ERR_ARGUMENT;
    }
    /* An int8 model's constants follow the file (one call: float models need none). Weights repacked
       row-per-input run the faster kernels (the same scratch size); skipped when they do not fit
       before the scratch (the repack then fails and changes nothing). */
    size_t used = align_up((size_t)size), aux_needed;
    rv_status status = rv_model_load_tflite(model, buffer, (size_t)size, buffer + used, capacity - used, &aux_needed);
    used = align_up(used + aux_needed);
    *scratch_len = rv_engine_scratch_size(model);
    if (status == RV_OK && *scratch_len > capacity - used) {
        status = RV_ERR_BUFFER_TOO_SMALL;
    }
    if (status != RV_OK) {
        if (status == RV_ERR_BUFFER_TOO_SMALL) {
            *problem = "out of memory";
        }
        return status;
    }
    size_t repack_needed = 0;
    rv_model packed;
    if (rv_model_repack(model, &packed, buffer + used, (capacity - used - *scratch_len) & ~(size_t)15u,
                        &repack_needed) == RV_OK) {
        *model = packed;
        used = align_up(used + repack_needed);
    }
    *scratch = buffer + used;
    return RV_OK;
}

/* ---- clock ---- */

/* The engine's next step, wrapping at the pattern length. */
static const rv_step *advance(int *tick)
{
    if (app.engine.tick + 1 >= app.length) {
        app.engine.tick = -1; /* paused: reset sets it so anyway */
    }
    return rv_engine_clock(&app.engine, tick);
}

/* An output's CV, then its trigger; the main loop sends its MIDI notes. */
static void fire_output(const timed_output *t)
{
    if (t->out.cv >= 0) {
        hal_cv(t->out.cv, t->out.volts);
    }
    hal_trigger(t->out.trigger);
    unsigned head = app.fired_head;
    if (((head - app.fired_tail) & (0x100u - FIRED_RING)) == 0) { /* fewer than FIRED_RING waiting */
        app.fired[head % FIRED_RING] = *t;
        app.fired_head = (uint8_t)(head + 1u);
    }
}

/* Fires the waiting outputs due at limit or before, in the order they were queued. */
static void fire(uint32_t limit)
{
    int kept = 0;
    for (int i = 0; i < app.timed; ++i) {
        const timed_output *t = &app.queue[i];
        if ((int32_t)(t->due_us - limit) > 0) {
            app.queue[kept++] = *t;
        } else {
            fire_output(t);
        }
    }
    app.timed = (uint8_t)kept;
}

/* Queues a step's outputs at edge_us + (offset * groove + swing on odd steps) * period: at this edge
   (ahead false) the late ones, firing the on-time ones and the early ones that the last edge did not
   queue (no tempo to predict it by) now; at the predicted next edge (ahead true) the early ones.
   A jack plays its steps in order: an early note never fires before a note of the step before still
   waiting on the same jack (queued before it; at 200 % groove and swing a late note can reach past the
   next step's early one). It waits and fires right after it, at its time: the pulse restarts with the
   later note's CV, MIDI ends the first note and plays the second, which the next step ends.
   A planned step's outputs are computed once, at the edge that plans it (planned_out). */
static void queue_step(const rv_step *step, int tick, uint32_t edge_us, bool ahead, unsigned count)
{
    panel_output unplanned[PANEL_OUTPUTS], *out = app.planned_out;
    int n = app.planned_count, waiting = app.timed;
    if (!ahead && step != app.planned) {
        n = panel_outputs(step, app.perc, app.velocity_cv, out = unplanned);
    } else if (ahead) {
        n = app.planned_count = (uint8_t)panel_outputs(step, app.perc, app.velocity_cv, out);
    }
    float swing = (float)((tick & 1) * app.s.swing) * 0.01f, groove = (float)app.s.groove * 0.01f;
    for (int i = 0; i < n; ++i) {
        float delay = out[i].offset * groove + swing;
        bool early = delay < 0.0f;
        if (ahead ? !early : early && step == app.planned) {
            continue;
        }
        if (early && !ahead) {
            delay = 0.0f;
            app.early_note |= 1;
        }
        /* offsets -0.5..0.5 and groove 0..2: no earlier than the last edge. Clamped before the
           conversion (a float beyond int32 converts undefined; a NaN offset lands on the next edge). */
        int32_t after = (int32_t)fmaxf(fminf(delay * (float)app.period_us, 1e9f), -1e9f);
        uint32_t due = edge_us + (uint32_t)after;
        for (int w = 0; w < waiting; ++w) {
            const timed_output *before = &app.queue[w];
            if (before->out.trigger == out[i].trigger && (int32_t)(before->due_us - due) > 0) {
                due = before->due_us;
            }
        }
        timed_output *t = &app.queue[app.timed];
        t->out = out[i];
        t->due_us = due;
        t->step = step;
        t->count = (uint8_t)count;
        if (after == 0 && !ahead) {
            fire_output(t);
        } else {
            app.timed++;
        }
    }
}

/* No tempo to predict the next edge by until a step interval has been measured again. */
static void forget_tempo(void)
{
    app.tempo = 0;
    app.early_note = 0;
}

/* The clock's period: the median of the last 4 intervals between steps (the mean of the middle two).
   The first interval after a reset, and one 1/4 off the estimate (a new tempo), stands for all 4. A
   clock that stopped for over two periods restarts like after a reset: the pause is no period (this
   step's late notes keep the old one). */
static void measure(uint32_t now)
{
    uint32_t interval = now - app.edge_us;
    if (app.tempo == 2 && interval / 2u > app.period_us) {
        forget_tempo();
    }
    if (app.tempo) {
        uint32_t off = app.period_us >> TEMPO_CHANGE_SHIFT;
        bool fill = app.tempo < 2 || interval > app.period_us + off || interval < app.period_us - off;
        uint32_t sum = 0, low = UINT32_MAX, high = 0;
        for (int k = 0; k < 4; ++k) {
            if (fill || k == (int)(app.slot & 3u)) {
                app.interval_us[k] = interval;
            }
            uint32_t v = app.interval_us[k];
            sum += v;
            low = v < low ? v : low;
            high = v > high ? v : high;
        }
        app.slot++;
        app.period_us = (sum - low - high) / 2u;
    }
    app.tempo = app.tempo ? 2 : 1;
    app.edge_us = now;
}

/* The step the next edge plays, as rv_engine_clock will choose it (NULL: none). */
static const rv_step *next_step(int *tick)
{
    const rv_engine *e = &app.engine;
    int next = e->tick + 1, sequence = e->front;
    next = next < app.length ? next : 0;
    if (e->back_ready && (!e->front_valid || e->manual || next == 0)) {
        sequence ^= 1;
    } else if (!e->front_valid) {
        return NULL;
    }
    *tick = next;
    return e->paused ? NULL : &e->sequences[sequence].steps[next];
}

/* A step of the clock (interrupt context): what is still waiting fires, then this step's on-time
   outputs; late ones and the next step's early ones wait for their times; report and MIDI from the main
   loop. */
static void play_step(void)
{
    uint32_t now = hal_micros();
    measure(now);
    fire(now + FIRE_ALL);
    if (!app.engine_ready) {
        app.missed_clocks++;
        app.planned = NULL;
        return;
    }
    int tick;
    const rv_step *step = advance(&tick);
    unsigned count = app.played_count;
    if (step != NULL) {
        queue_step(step, tick, now, false, ++count);
        app.played_tick = tick;
        app.played_count = count;
    }
    app.planned = NULL;
    step = app.offsets && app.s.groove ? next_step(&tick) : NULL;
    if (step != NULL && app.tempo == 2) {
        queue_step(step, tick, now + app.period_us, true, count + 1);
        app.planned = step;
    }
}

/* An external clock pulse: 24 ppqn plays every 6th, 4 ppqn each (a step per pulse), 2 and 1 ppqn
   each and 1 or 3 more steps spread over the last pulse interval by the step timer. */
static void clock_pulse(void)
{
    uint8_t setting = app.s.clock;
    if (setting >= CLOCK_INTERNAL) {
        return;
    }
    if (app.pulse_skip > 0) {
        app.pulse_skip--;
        return;
    }
    app.pulse_skip = clock_ppqn[setting] == 24 ? 5 : 0;
    if (setting < 2) {
        uint32_t now = hal_micros();
        if (app.pulse_seen) {
            app.timer_period_us = (now - app.last_pulse_us) >> (2 - setting);
            app.timer_due_us = now + app.timer_period_us;
            app.timer_left = (uint8_t)((1u << (2 - setting)) - 1u);
        }
        app.last_pulse_us = now;
        app.pulse_seen = true;
    }
    play_step();
}

static void restart_clock(void)
{
    app.pulse_skip = 0;
    app.timer_left = 0;
    app.pulse_seen = false;
    app.timer_period_us = STEP_US_PER_BPM / app.s.bpm;
    app.timer_due_us = hal_micros(); /* internal clock: the next step now */
    forget_tempo();
}

static bool step_timer_wanted(void) { return app.s.clock >= CLOCK_INTERNAL || app.timer_left > 0; }

bool app_timer_due(uint32_t *due_us)
{
    bool wanted = step_timer_wanted();
    uint32_t due = app.timer_due_us;
    for (int i = 0; i < app.timed; ++i) {
        if (!wanted || (int32_t)(app.queue[i].due_us - due) < 0) {
            due = app.queue[i].due_us;
            wanted = true;
        }
    }
    *due_us = due;
    return wanted;
}

void app_timer(uint32_t now_us)
{
    fire(now_us);
    if (!step_timer_wanted() || (int32_t)(app.timer_due_us - now_us) > 0) {
        return;
    }
    if (app.s.clock < CLOCK_INTERNAL) {
        app.timer_left--;
    }
    app.timer_due_us += app.timer_period_us;
    play_step();
}

static void reset(void)
{
    rv_engine_reset(&app.engine);
    set_led(LED_PAUSE, false);
    app.timed = 0; /* the waiting outputs belong to steps that will not play now */
    app.planned = NULL;
    restart_clock();
    app.rng = CHAOS_SEED; /* a performance repeats from a reset */
}

/* ---- settings ---- */

static void save_settings(void)
{
    strncpy(app.s.model_path, model_list_name(&app.models, app.selected), MODEL_PATH_CAPACITY - 1);
    hal_settings_save(&app.s, sizeof app.s);
    app.dirty = false;
}

/* The values of settings from density on, in order, and the range the panel sets each in. */
static const struct {
    uint8_t count;
    int8_t low;
    uint8_t high;
} ranges[] = {{PANEL_PERC_TRIGGERS + 1, -100, 100}, {1, 1, PANEL_NOTE_VOICES}, {1, 0, 100},
              {1, 1, RV_MAX_TICKS},                {1, 0, CLOCK_INTERNAL},     {1, 40, 240},
              {1, 0, 200},                         {1, 0, 75}};

/* A blob of the right size is used only when every value is one the panel can set. */
static bool valid_settings(const settings *s)
{
    const uint8_t *value = (const uint8_t *)s->density;
    bool valid = s->magic == SETTINGS_MAGIC;
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; ++r) {
        for (int n = 0; n < ranges[r].count; ++n, ++value) {
            int v = ranges[r].low < 0 ? (int8_t)*value : *value;
            valid = valid && v >= ranges[r].low && v <= ranges[r].high;
        }
    }
    return valid;
}

/* ---- starting a model ---- */

/* Loads entry index and starts the engine on it, keeping the clock position, mode and pause. */
static rv_status start_model(int index, const char **problem)
{
    app.engine_ready = false; /* the clock queues nothing more */
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
    /* The old model's outputs waiting when the load began fired on time; none fires after its sequences
       go, and the MIDI of those that fired meanwhile (app_poll sent the others) is dropped: it would
       read them. (After the load's calls: the compiler keeps these stores after engine_ready's.) */
    app.timed = 0;
    app.planned = NULL;
    app.fired_tail = app.fired_head;
    app.model = model;
    app.perc = model.metadata.kind == RV_KIND_PERC;
    const rv_metadata *meta = &app.model.metadata;
    /* The model's own thresholds (metadata version 2; else the documented default). Note models play
       at most max_notes per tick (one per voice); percussion as many rows as the core keeps, so that
       the groups' densities act independently (each group has its own jack). */
    rv_post_config config = rv_post_config_for_model(meta);
    config.max_notes = app.perc ? RV_MAX_NOTES : app.s.max_notes;
    app.centre = config.threshold;
    memcpy(app.model_offsets, config.group_offsets, sizeof app.model_offsets);
    if (app.engine.model == NULL) {
        status = rv_engine_init(&app.engine, &app.model, scratch, scratch_len, &config);
    } else {
        /* keeps the clock position, manual mode and pause */
        status = rv_engine_set_model(&app.engine, &app.model, scratch, scratch_len);
    }
    if (status != RV_OK) {
        return status;
    }
    app.engine.config = config; /* this model's thresholds (the clock does not read the config) */
    app.velocity_cv = app.offsets = false;
    for (int k = 1; k < meta->channels; ++k) {
        app.velocity_cv |= meta->channel_ids[k] == RV_CHANNEL_VELOCITY;
        app.offsets |= meta->channel_ids[k] == RV_CHANNEL_OFFSET;
    }
    app.length = app.s.length < meta->ticks ? app.s.length : meta->ticks;
    /* The next clock edge continues where the rack is, not at step 0. */
    for (int missed = app.missed_clocks; missed > 0; --missed) {
        (void)advance(NULL);
    }
    app.selected = index;
    app.shown_sequence = NULL;
    app.reported_count = app.played_count; /* no report of the old model's last step; its notes end as usual */
    app.engine_ready = true;
    const char *type = app.perc ? "DRUM" : "NOTE";
    report("load %s rows %d ticks %d zero %d name %s", type, meta->rows, meta->ticks,
           app.engine.config.zero_volt_note, name);
    hal_display_title(type, name);
    for (int row = 0; row < meta->rows; ++row) {
        text_line label;
        label_row(meta, row, &label);
        hal_display_row_label(row, label.text);
    }
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
        text_line line;
        text_clear(&line);
        text_format(&line, "skip %s: %s", model_list_name(&app.models, index),
                    problem ? problem : rv_status_str(status));
        hal_report(line.text);
        hal_display_message(line.text);
        index = (index + step + app.models.count) % app.models.count;
    }
}

/* ---- shift layers ---- */

/* floor((volts + shift) * scale + 0.5), clamped: the value a pot position selects. */
static int pot_value(float volts, float shift, float scale, int low, int high)
{
    float x = (volts + shift) * scale + 0.5f;
    long value = (long)x;
    value -= (float)value > x;
    return value < low ? low : value > high ? high : (int)value;
}

static void changed(uint32_t now_ms)
{
    app.dirty = true;
    app.changed_ms = now_ms;
}

static void set_value(uint8_t *value, int set, const char *name, int index, uint32_t now_ms)
{
    if (*value != (uint8_t)set) {
        *value = (uint8_t)set;
        changed(now_ms);
        report(index >= 0 ? "set %s %d %d" : "set %s %d", name, index >= 0 ? index : set, set);
    }
}

/* Clock setting (0-3 external, CLOCK_INTERNAL) and tempo. */
static void set_clock(int clock, int bpm, uint32_t now_ms)
{
    if (clock == app.s.clock && bpm == app.s.bpm) {
        return;
    }
    bool was_internal = app.s.clock >= CLOCK_INTERNAL;
    app.s.clock = (uint8_t)clock;
    app.s.bpm = (uint8_t)bpm;
    changed(now_ms);
    if (clock < CLOCK_INTERNAL) {
        restart_clock();
        report("set ppqn %d", clock_ppqn[clock]);
        return;
    }
    app.timer_period_us = STEP_US_PER_BPM / (uint32_t)bpm;
    if (!was_internal) {
        app.timer_due_us = hal_micros();
    }
    forget_tempo();
    report("set bpm %d", bpm);
}

static void show_status(void)
{
    text_line line;
    text_clear(&line);
    text_format(&line, "z");
    for (int k = 0; k < rv_model_latent_dim(&app.model) && k < HAL_KNOBS - 1; ++k) {
        text_format(&line, " %c", app.engine.latent[k]);
    }
    static const char layer_names[][6] = {"", " DENS", " PLAY", " GROV"};
    text_format(&line, layer_names[app.layer]);
    hal_display_status(line.text);
}

/* What a pot sets on a layer: floor((volts + shift) * scale + 0.5), clamped to low..high (high 0: the
   model's ticks, scale ticks / 10). */
typedef struct {
    uint8_t offset; /* of the value in settings */
    int8_t shift;
    int8_t low;
    uint8_t high;
    float scale;
    const char *name;
} pot_setting;

enum {
    POT_DENSITY,
    POT_NOTE_DENSITY,
    POT_MAX_NOTES,
    POT_CHAOS,
    POT_LENGTH,
    POT_GROOVE,
    POT_SWING,
    POT_CLOCK,
    POT_NONE
};
static const pot_setting pot_settings[] = {
    {offsetof(settings, density), 0, -100, 100, 20.0f, "density"},
    {offsetof(settings, note_density), 0, -100, 100, 20.0f, "density"},
    {offsetof(settings, max_notes), 5, 1, PANEL_NOTE_VOICES, 0.35f, "max-notes"},
    {offsetof(settings, chaos), 5, 0, 100, 10.0f, "chaos"},
    {offsetof(settings, length), 5, 1, 0, 0.0f, "length"},
    {offsetof(settings, groove), 5, 0, 200, 20.0f, "groove"},
    {offsetof(settings, swing), 5, 0, 75, 7.5f, "swing"},
};

/* What pot k sets on each layer, for note and percussion models. The density layer: percussion
   groups 0-3, or a note model's density and max notes; the play layer: chaos, group 4's density,
   pattern length, clock; the groove layer: groove amount and swing. */
static const uint8_t layer_pots[3][2][HAL_KNOBS] = {
    {{POT_NOTE_DENSITY, POT_MAX_NOTES, POT_NONE, POT_NONE}, {POT_DENSITY, POT_DENSITY, POT_DENSITY, POT_DENSITY}},
    {{POT_CHAOS, POT_NONE, POT_LENGTH, POT_CLOCK}, {POT_CHAOS, POT_DENSITY, POT_LENGTH, POT_CLOCK}},
    {{POT_GROOVE, POT_SWING, POT_NONE, POT_NONE}, {POT_GROOVE, POT_SWING, POT_NONE, POT_NONE}},
};

/* Pot k turned to volts while a layer is held. */
static void turn(int k, float volts, uint32_t now_ms)
{
    int ticks = app.model.metadata.ticks;
    int which = layer_pots[app.layer - LAYER_DENSITY][app.perc][k];
    if (which == POT_CLOCK) {
        if (volts < -3.0f) { /* -5..-3 V: external clock at 1, 2, 4, 24 ppqn */
            set_clock(pot_value(volts, 4.75f, 2.0f, 0, 3), app.s.bpm, now_ms);
        } else { /* -3..5 V: internal clock, 40..240 BPM */
            set_clock(CLOCK_INTERNAL, 40 + pot_value(volts, 3.0f, 25.0f, 0, 200), now_ms);
        }
        return;
    }
    if (which == POT_NONE) {
        return;
    }
    int group = which != POT_DENSITY ? -1 : app.layer == LAYER_DENSITY ? k : 4;
    const pot_setting *pot = &pot_settings[which];
    float scale = pot->high ? pot->scale : (float)ticks * 0.1f;
    int set = pot_value(volts, pot->shift, scale, pot->low, pot->high ? pot->high : ticks);
    set_value((uint8_t *)&app.s + pot->offset + (group > 0 ? group : 0), set, pot->name, group, now_ms);
    app.length = app.s.length < ticks ? app.s.length : ticks;
}

static void set_layer(int layer)
{
    app.layer = layer;
    app.layer_used = false;
    app.turned = 0;
    for (int k = 0; k < HAL_KNOBS; ++k) {
        app.held_knob[k] = hal_knob_volts(k);
    }
    set_led(LED_LAYER, layer != LAYER_NONE);
    show_status();
}

/* While a layer is held, a pot that left its position sets the layer's value from then on. */
static void poll_layer(uint32_t now_ms)
{
    for (int k = 0; k < HAL_KNOBS && app.layer != LAYER_NONE; ++k) {
        float volts = hal_knob_volts(k), moved = volts - app.held_knob[k];
        if (moved > CATCH_VOLTS || moved < -CATCH_VOLTS) {
            app.turned |= 1u << k;
        }
        if (app.turned >> k & 1u) {
            app.layer_used = true;
            turn(k, volts, now_ms);
        }
    }
}

/* A pot's main function: the position it had when a layer went down, while the layer is held. */
static float knob_volts(int k) { return app.layer != LAYER_NONE ? app.held_knob[k] : hal_knob_volts(k); }

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
    int index = 0;
    bool restored = hal_settings_load(&app.s, sizeof app.s) && valid_settings(&app.s);
    if (restored) {
        app.s.model_path[MODEL_PATH_CAPACITY - 1] = '\0';
        int found = model_list_find(&app.models, app.s.model_path);
        index = found >= 0 ? found : 0;
    } else { /* the defaults: densities 0, no chaos, whole patterns, one clock pulse per step */
        memset(&app.s, 0, sizeof app.s);
        app.s.magic = SETTINGS_MAGIC;
        app.s.max_notes = PANEL_NOTE_VOICES;
        app.s.length = RV_MAX_TICKS;
        app.s.clock = 2;
        app.s.bpm = 120;
        app.s.groove = 100;
    }
    report(restored ? "settings restored" : "settings default");
    reset();
    select_model(index, +1);
}

void app_gate_edge(app_gate gate, bool high)
{
    if (!high) {
        return;
    }
    if (gate == APP_GATE_CLOCK) {
        clock_pulse();
        return;
    }
    if (!app.engine_ready) {
        return;
    }
    if (gate == APP_GATE_RESET) {
        reset();
    } else if (app.manual) {
        rv_engine_request_inference(&app.engine);
    }
}

/* Tap tempo: two presses 250..1500 ms apart set the internal clock's tempo. */
static void tap(uint32_t now_ms)
{
    uint32_t since = now_ms - app.last_tap_ms;
    if (app.tapped && since >= TAP_MIN_MS && since <= TAP_MAX_MS) {
        set_clock(CLOCK_INTERNAL, (int)((60000u + since / 2u) / since), now_ms);
    }
    app.tapped = true;
    app.last_tap_ms = now_ms;
}

void app_button(app_button_id button, bool pressed, uint32_t now_ms)
{
    if (!app.engine_ready) {
        return;
    }
    switch (button) {
    case APP_BUTTON_PAUSE:
        if (pressed) {
            set_layer(LAYER_DENSITY);
        } else if (app.layer == LAYER_DENSITY) {
            if (!app.layer_used) {
                rv_engine_pause_until_reset(&app.engine);
                set_led(LED_PAUSE, true);
            }
            set_layer(LAYER_NONE);
        }
        break;
    case APP_BUTTON_RESET:
        if (pressed) {
            reset();
            set_layer(LAYER_GROOVE);
        } else if (app.layer == LAYER_GROOVE) {
            set_layer(LAYER_NONE);
        }
        break;
    case APP_BUTTON_INFERENCE:
        if (pressed) {
            app.inference_button_down = true;
            app.inference_button_held = false;
            app.inference_button_since_ms = now_ms;
            if (app.s.clock >= CLOCK_INTERNAL) {
                tap(now_ms);
            }
            set_layer(LAYER_PLAY);
        } else if (app.inference_button_down) {
            app.inference_button_down = false;
            /* A press shorter than the hold runs an inference in manual mode. */
            if (!app.inference_button_held && !app.layer_used && app.manual) {
                rv_engine_request_inference(&app.engine);
            }
            if (app.layer == LAYER_PLAY) {
                set_layer(LAYER_NONE);
            }
        }
        break;
    }
}

void app_select(int delta) { app.select_steps += delta; }

static float clamp(float value, float low, float high) { return value < low ? low : value > high ? high : value; }

/* Chaos: a uniform draw in [-1, 1) from a xorshift32 generator (24 bits, exact in a float). */
static float chaos_draw(void)
{
    uint32_t x = app.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    app.rng = x;
    return (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

static float density_offset(int percent) { return percent == -100 ? MUTE_OFFSET : (float)-percent * DENSITY_STEP; }

static void run_inference(void)
{
    const rv_metadata *meta = &app.model.metadata;
    float latent[RV_MAX_LATENT] = {0};
    float scale = (float)meta->latent_scale, amount = (float)app.s.chaos * 0.01f * scale;
    int latent_dim = rv_model_latent_dim(&app.model);
    for (int k = 0; k < latent_dim && k < HAL_KNOBS - 1; ++k) {
        latent[k] = rv_latent_from_controls(knob_volts(k), hal_cv_volts(k), scale);
        if (app.s.chaos > 0) {
            latent[k] = clamp(latent[k] + amount * chaos_draw(), -scale, scale);
        }
    }
    /* The pot's centre is the model's threshold; pot and CV each add +-THRESHOLD_SPAN. */
    float full = RV_CONTROL_FULL_SCALE_VOLTS;
    float threshold = clamp(app.centre + clamp(knob_volts(HAL_KNOBS - 1) / full, -1.0f, 1.0f) * THRESHOLD_SPAN +
                                clamp(hal_cv_volts(HAL_KNOBS - 1) / full, -1.0f, 1.0f) * THRESHOLD_SPAN,
                            0.0f, 1.0f);
    float played = threshold;
    rv_post_config *config = &app.engine.config;
    if (app.perc) {
        for (int g = 0; g < PANEL_PERC_TRIGGERS; ++g) {
            config->group_offsets[g] = app.model_offsets[g] + density_offset(app.s.density[g]);
        }
    } else {
        played += density_offset(app.s.note_density);
        config->max_notes = app.s.max_notes;
    }
    rv_status status = rv_engine_run_inference(&app.engine, latent, played);
    if (status != RV_OK) {
        report("infer failed: %s", rv_status_str(status));
    } else {
        text_line line;
        text_clear(&line);
        text_format(&line, "infer latent");
        for (int k = 0; k < latent_dim; ++k) {
            text_format(&line, " %m", latent[k]);
        }
        text_format(&line, " threshold %m", threshold);
        hal_report(line.text);
    }
    show_status();
}

/* The step the clock played last: its report and the note-offs of the steps before it; then the notes
   of the outputs fired since the last call as MIDI, with their velocities (a note still sounding is
   ended first). */
static void send_played_step(void)
{
    unsigned count = app.played_count;
    int channel = app.midi_channel, on_count = app.midi_on_count;
    if (count != app.reported_count) {
        app.reported_count = count;
        report("tick %d", app.played_tick);
        int kept = 0;
        for (int n = 0; n < on_count; ++n) {
            uint16_t on = app.midi_on[n];
            if ((int8_t)((on >> 8) - count) < 0) {
                hal_midi_note(channel, on & 0xFF, 0);
            } else {
                app.midi_on[kept++] = on;
            }
        }
        on_count = kept;
        /* after a model change: the new model's channel from now on */
        app.midi_channel = (uint8_t)(channel = app.perc ? 10 : 1);
    }
    if (app.early_note == 1) {
        app.early_note = 2;
        report("early notes on the edge: no tempo yet");
    }
    for (uint8_t tail = app.fired_tail; tail != app.fired_head; app.fired_tail = ++tail) {
        const timed_output *f = &app.fired[tail % FIRED_RING];
        for (int n = 0; n < f->step->count; ++n) {
            const rv_note *note = &f->step->notes[n];
            if (note->midi_note > 127 || (app.perc ? note->group : n) != f->out.output) {
                continue; /* an accent row, or another output's note */
            }
            int slot = 0;
            while (slot < on_count && (app.midi_on[slot] & 0xFF) != note->midi_note) {
                ++slot;
            }
            if (slot < on_count) {
                hal_midi_note(channel, note->midi_note, 0);
            } else if (slot == 2 * RV_MAX_NOTES) {
                continue; /* no room to remember its note-off */
            } else {
                on_count++;
            }
            hal_midi_note(channel, note->midi_note, note->velocity);
            app.midi_on[slot] = (uint16_t)(note->midi_note | f->count << 8);
        }
    }
    app.midi_on_count = (uint8_t)on_count;
}

/* An inference rewrites the back buffer: false while early notes planned from it still wait (the edge
   before step 0 plans them from a finished back buffer; automatic mode, then a request in manual mode
   within that step). It is withdrawn first, so the clock neither swaps it in nor plans from it (`front`
   stays) and the MIDI sent next (send_played_step) reads nothing of it; when planned from, it is put
   back, plays as planned, and the inference waits for that edge. */
static bool back_free(void)
{
    rv_engine *e = &app.engine;
    e->back_ready = 0;
    const rv_step *planned = app.planned;
    bool front = planned == NULL || ((const char *)planned >= (const char *)&e->sequences[1]) == e->front;
    e->back_ready = !front;
    return front;
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
                int colour = app.perc ? note->group : note->midi_note / 12;
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
    if (app.inference_button_down && !app.inference_button_held && !app.layer_used &&
        now_ms - app.inference_button_since_ms >= HOLD_TO_TOGGLE_MS) {
        app.inference_button_held = true;
        app.manual = !app.manual;
        if (app.engine_ready) {
            rv_engine_set_manual(&app.engine, app.manual);
        }
        set_led(LED_MANUAL, app.manual);
    }
    poll_layer(now_ms);
    if (app.select_steps != 0 && app.fired_tail == app.fired_head) { /* after the MIDI of what fired */
        int steps = app.select_steps;
        app.select_steps = 0;
        int count = app.models.count;
        hal_display_message("");
        select_model(((app.selected + steps) % count + count) % count, steps > 0 ? +1 : -1);
        save_settings();
    }
    if (app.dirty && now_ms - app.changed_ms >= SAVE_DELAY_MS) {
        save_settings();
    }
    if (app.engine_ready) {
        bool infer = rv_engine_inference_pending(&app.engine) && back_free();
        send_played_step();
        if (infer) {
            run_inference();
        }
        update_display();
    }
}
