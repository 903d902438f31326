#include "replay.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "app.h"
#include "hal.h"
#include "text.h"

#define SCREEN_MAX_CELLS (128 * 64) /* rows x ticks within the core's limits */
#define SCREEN_MAX_ROWS 128

static uint32_t now_us;
static uint32_t busy_until_us; /* the main loop is held up until then (a "busy" event) */
static uint32_t timer_poll_us; /* the app's timer is serviced on this grid (a "timer" event); 0: at its due times */
static float knob_volts[HAL_KNOBS];
static float cv_volts[HAL_KNOBS];

static struct {
    char type[8];
    char name[64];
    char message[96];
    char status[96];
    char labels[SCREEN_MAX_ROWS][8];
    uint8_t cells[SCREEN_MAX_CELLS];
    int rows, ticks, cursor;
} screen;

/* ---- log lines ---- */

static void start_line(text_line *line, const char *what)
{
    text_clear(line);
    text_add_uint(line, now_us);
    text_add(line, " ");
    text_add(line, what);
}

static void end_line(text_line *line)
{
    text_add(line, "\n");
    replay_write(line->text);
}

/* ---- the HAL's outputs, inputs and display, as the virtual module ---- */

void hal_trigger(int output)
{
    text_line line;
    start_line(&line, "trig ");
    text_add_int(&line, output);
    end_line(&line);
}

void hal_cv(int output, float volts)
{
    text_line line;
    start_line(&line, "cv ");
    text_add_int(&line, output);
    text_add(&line, " ");
    text_add_int(&line, text_milli(volts));
    end_line(&line);
}

void hal_led(int led, bool on)
{
    text_line line;
    start_line(&line, "led ");
    text_add_int(&line, led);
    text_add(&line, on ? " 1" : " 0");
    end_line(&line);
}

uint32_t hal_micros(void) { return now_us; }

void hal_midi_note(int channel, int note, int velocity)
{
    text_line line;
    start_line(&line, "midi ");
    text_add_int(&line, channel);
    text_add(&line, " ");
    text_add_int(&line, note);
    text_add(&line, " ");
    text_add_int(&line, velocity);
    end_line(&line);
}

float hal_knob_volts(int knob) { return knob >= 0 && knob < HAL_KNOBS ? knob_volts[knob] : 0.0f; }

float hal_cv_volts(int input) { return input >= 0 && input < HAL_KNOBS ? cv_volts[input] : 0.0f; }

static void copy_text(char *destination, size_t capacity, const char *source)
{
    size_t length = strlen(source);
    if (length >= capacity) {
        length = capacity - 1;
    }
    memcpy(destination, source, length);
    destination[length] = '\0';
}

void hal_display_title(const char *type, const char *name)
{
    copy_text(screen.type, sizeof screen.type, type);
    copy_text(screen.name, sizeof screen.name, name);
}

void hal_display_message(const char *text) { copy_text(screen.message, sizeof screen.message, text); }

void hal_display_sequence(const uint8_t *cells, int rows, int ticks)
{
    if (rows * ticks > SCREEN_MAX_CELLS || rows <= 0 || ticks <= 0) {
        screen.rows = screen.ticks = 0;
        return;
    }
    memcpy(screen.cells, cells, (size_t)(rows * ticks));
    screen.rows = rows;
    screen.ticks = ticks;
}

void hal_display_cursor(int tick) { screen.cursor = tick; }

void hal_display_row_label(int row, const char *label)
{
    if (row >= 0 && row < SCREEN_MAX_ROWS) {
        copy_text(screen.labels[row], sizeof screen.labels[row], label);
    }
}

void hal_display_status(const char *text) { copy_text(screen.status, sizeof screen.status, text); }

void hal_report(const char *text)
{
    text_line line;
    start_line(&line, text);
    end_line(&line);
}

/* Screen content as log lines: title, message, status, cursor, then one line per row (top row =
   highest): its label and cells. */
static void print_screen(void)
{
    text_line line;
    start_line(&line, "screen title ");
    text_add(&line, screen.type);
    text_add(&line, " ");
    text_add(&line, screen.name);
    end_line(&line);
    start_line(&line, "screen message ");
    text_add(&line, screen.message);
    end_line(&line);
    start_line(&line, "screen status ");
    text_add(&line, screen.status);
    end_line(&line);
    start_line(&line, "screen cursor ");
    text_add_int(&line, screen.cursor);
    end_line(&line);
    for (int row = screen.rows - 1; row >= 0; --row) {
        start_line(&line, "screen row ");
        text_add_int(&line, row);
        text_add(&line, " ");
        text_add(&line, screen.labels[row]);
        text_add(&line, " ");
        for (int tick = 0; tick < screen.ticks; ++tick) {
            uint8_t cell = screen.cells[tick * screen.rows + row];
            char mark[2] = {cell == 0 ? '.' : (char)(cell < 10 ? '0' + cell : '+'), '\0'};
            text_add(&line, mark);
        }
        end_line(&line);
    }
}

/* ---- script parsing ---- */

typedef struct {
    const char *at;
    const char *end;
} cursor;

static void skip_spaces(cursor *c)
{
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\r')) {
        ++c->at;
    }
}

static bool read_word(cursor *c, char *word, size_t capacity)
{
    skip_spaces(c);
    size_t length = 0;
    while (c->at < c->end && *c->at != ' ' && *c->at != '\t' && *c->at != '\r') {
        if (length + 1 >= capacity) {
            return false;
        }
        word[length++] = *c->at++;
    }
    word[length] = '\0';
    return length > 0;
}

/* A decimal number with at most `decimals` fraction digits, as an integer scaled by 10^decimals. */
static bool read_fixed(cursor *c, int decimals, long long *value)
{
    char word[24];
    if (!read_word(c, word, sizeof word)) {
        return false;
    }
    const char *p = word;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+') {
        ++p;
    }
    long long result = 0;
    int fraction_digits = -1;
    bool any_digit = false;
    for (; *p; ++p) {
        if (*p == '.' && fraction_digits < 0) {
            fraction_digits = 0;
        } else if (*p >= '0' && *p <= '9' && fraction_digits < decimals && result < 100000000000LL) {
            result = result * 10 + (*p - '0');
            any_digit = true;
            if (fraction_digits >= 0) {
                ++fraction_digits;
            }
        } else {
            return false;
        }
    }
    for (int i = fraction_digits < 0 ? 0 : fraction_digits; i < decimals; ++i) {
        result *= 10;
    }
    *value = negative ? -result : result;
    return any_digit;
}

static bool read_index(cursor *c, int limit, int *index)
{
    long long value;
    if (!read_fixed(c, 0, &value) || value < 0 || value >= limit) {
        return false;
    }
    *index = (int)value;
    return true;
}

static bool read_level(cursor *c, bool *high)
{
    int level;
    if (!read_index(c, 2, &level)) {
        return false;
    }
    *high = level == 1;
    return true;
}

/* Volts from integer microvolts: one correctly rounded division, the same on every target. */
static bool read_volts(cursor *c, float *volts)
{
    long long microvolts;
    if (!read_fixed(c, 6, &microvolts) || microvolts < -100000000LL || microvolts > 100000000LL) {
        return false;
    }
    *volts = (float)microvolts / 1e6f;
    return true;
}

/* Applies one event line; returns NULL or the reason it is malformed. */
static const char *apply_event(cursor *c)
{
    char event[12];
    if (!read_word(c, event, sizeof event)) {
        return "missing event name";
    }
    uint32_t now_ms = now_us / 1000u;
    bool high;
    int index;
    if (strcmp(event, "clock") == 0 || strcmp(event, "reset") == 0 || strcmp(event, "trigger") == 0) {
        if (!read_level(c, &high)) {
            return "gate level must be 0 or 1";
        }
        app_gate gate = event[0] == 'c' ? APP_GATE_CLOCK : event[0] == 'r' ? APP_GATE_RESET : APP_GATE_INFERENCE;
        app_gate_edge(gate, high);
    } else if (strcmp(event, "knob") == 0 || strcmp(event, "cv") == 0) {
        float volts;
        if (!read_index(c, HAL_KNOBS, &index) || !read_volts(c, &volts)) {
            return "expected <0-3> <volts>";
        }
        (event[0] == 'k' ? knob_volts : cv_volts)[index] = volts;
    } else if (strcmp(event, "button") == 0) {
        if (!read_index(c, HAL_BUTTONS, &index) || !read_level(c, &high)) {
            return "expected <0-2> 0|1";
        }
        app_button((app_button_id)index, high, now_ms);
    } else if (strcmp(event, "select") == 0) {
        long long delta;
        if (!read_fixed(c, 0, &delta) || delta < -1000 || delta > 1000) {
            return "expected a step count";
        }
        app_select((int)delta);
    } else if (strcmp(event, "busy") == 0 || strcmp(event, "timer") == 0) {
        long long span_us;
        if (!read_fixed(c, 3, &span_us) || span_us < 0 || span_us > 4000000000LL) {
            return "expected a time in milliseconds";
        }
        if (event[0] == 'b') {
            busy_until_us = now_us + (uint32_t)span_us;
        } else {
            timer_poll_us = (uint32_t)span_us;
        }
    } else if (strcmp(event, "power") == 0) {
        app_power_on(); /* the pots keep their positions */
    } else if (strcmp(event, "screen") == 0) {
        print_screen();
    } else {
        return "unknown event";
    }
    char extra[4];
    if (read_word(c, extra, sizeof extra)) {
        return "unexpected text after the event";
    }
    return NULL;
}

static int fail(long long line_number, const char *reason)
{
    text_line line;
    text_clear(&line);
    text_add(&line, "error line ");
    text_add_int(&line, line_number);
    text_add(&line, ": ");
    text_add(&line, reason);
    end_line(&line);
    return 2;
}

/* The main loop, unless held up. */
static void main_loop(void)
{
    if (now_us >= busy_until_us) {
        app_poll(now_us / 1000u);
    }
}

/* The main loop runs between instants: what the events so far asked for (inference, loading, the
   played step's report) happens before time moves on; events at one instant act together. The app's
   step timer fires at its due times before `end`, each followed by the main loop; a held-up main loop
   runs when it is free again. */
static void run_until(uint32_t end)
{
    main_loop();
    for (;;) {
        uint32_t due;
        bool timer = app_timer_due(&due), held = now_us < busy_until_us;
        if (timer && timer_poll_us > 0) { /* the first poll at or after its due time */
            due += (timer_poll_us - due % timer_poll_us) % timer_poll_us;
        }
        uint32_t next = timer && (!held || due < busy_until_us) ? due : busy_until_us;
        if (!(timer || held) || next >= end) {
            break;
        }
        if (next > now_us) {
            now_us = next;
        }
        if (timer && due <= now_us) {
            app_timer(now_us);
        }
        main_loop();
    }
    now_us = end;
}

int replay_run(const char *script, size_t length)
{
    now_us = busy_until_us = timer_poll_us = 0;
    app_power_on();
    const char *end = script + length;
    long long line_number = 0;
    for (const char *start = script; start < end;) {
        const char *stop = memchr(start, '\n', (size_t)(end - start));
        if (stop == NULL) {
            stop = end;
        }
        ++line_number;
        const char *comment = memchr(start, '#', (size_t)(stop - start));
        cursor c = {start, comment ? comment : stop};
        skip_spaces(&c);
        if (c.at < c.end) {
            long long time_us;
            if (!read_fixed(&c, 3, &time_us) || time_us < 0 || time_us > 4000000000LL) {
                return fail(line_number, "expected a time in milliseconds");
            }
            if ((uint32_t)time_us < now_us) {
                return fail(line_number, "events must come in time order");
            }
            if ((uint32_t)time_us > now_us) {
                run_until((uint32_t)time_us);
            }
            const char *reason = apply_event(&c);
            if (reason) {
                return fail(line_number, reason);
            }
        }
        start = stop + 1;
    }
    app_poll(now_us / 1000u);
    return 0;
}
