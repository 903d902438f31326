// The board HAL for the original xen_quantizer hardware (Teensy 4.1): pins as in its hwconfig.h and
// Hardware.h, two DAC8164 for the eight output jacks, the SD card, EEPROM for the settings, the
// ST7735 160x80 display, pin-change interrupts on the gate inputs (the clock plays its step inside
// the interrupt), a 1 kHz timer interrupt that ends the trigger pulses, a 20 kHz timer interrupt that
// fires the app's timer (internal clock, multiplied 1 and 2 ppqn clocks, groove-timed triggers) and USB MIDI out
// (build with USB type MIDI + Serial). The app (../app) runs on top through hal.h / app.h.
//
// The DACs and the display share one SPI bus: SPI.usingInterrupt() holds the gate and timer
// interrupts off during each display transaction. Every display transaction is therefore at most one
// chunk of DISPLAY_CHUNK_PIXELS pixels (rectangles are split, text is drawn one unclipped 6x8 glyph
// per transaction), so a clock edge waits for at most one chunk (~32 us at 27 MHz) plus the pulse
// timer's DAC writes, whatever is being drawn (bench/bench_mcu.py states the bound).
//
// Calibration: the voltage constants below assume linear input and output stages spanning -5..5 V;
// adjust them to the module's measured stages.
#include <Arduino.h>
#include <EEPROM.h>
#include <Encoder.h>
#include <IntervalTimer.h>
#include <SD.h>
#include <SPI.h>
#include <TFT_eSPI.h>

extern "C" {
#include "app.h"
#include "hal.h"
}

namespace {

// ---- pins (xen_quantizer hwconfig.h / Hardware.h) ----
constexpr int SD_CS_PIN = 1;
constexpr int DAC1_CS_PIN = 9;
constexpr int DAC2_CS_PIN = 8;
constexpr int ENCODER_PIN1 = 22, ENCODER_PIN2 = 23;
constexpr int GATE_PINS[3] = {36, 35, 34};  // clock, reset, inference trigger
constexpr int BUTTON_PINS[HAL_BUTTONS] = {28, 38, 39};
constexpr int LED_PINS[HAL_BUTTONS] = {30, 31, 32};
constexpr int POT_PINS[HAL_KNOBS] = {A7, A2, A3, A6};
constexpr int CV_PINS[HAL_KNOBS] = {A11, A10, A1, A0};
// Output jack -> (DAC, channel), as the original's cvOutputPins.
constexpr int JACK_DAC_CS[HAL_OUTPUTS] = {DAC2_CS_PIN, DAC2_CS_PIN, DAC2_CS_PIN, DAC2_CS_PIN,
                                          DAC1_CS_PIN, DAC1_CS_PIN, DAC1_CS_PIN, DAC1_CS_PIN};
constexpr int JACK_DAC_CHANNEL[HAL_OUTPUTS] = {1, 2, 3, 0, 3, 0, 1, 2};

// ---- calibration and timing ----
constexpr float ADC_FULL_SCALE = 4095.0f;  // 12-bit reads
constexpr float INPUT_MIN_VOLTS = -5.0f, INPUT_SPAN_VOLTS = 10.0f;
constexpr float OUTPUT_MIN_VOLTS = -5.0f, OUTPUT_SPAN_VOLTS = 10.0f;
constexpr float DAC_FULL_SCALE = 16383.0f;  // DAC8164: 14 bits
constexpr float TRIGGER_VOLTS = 5.0f;
constexpr uint32_t TRIGGER_MS = 10;
constexpr uint32_t PULSE_TIMER_US = 1000;  // trigger pulse timing, as the original's SAMPLE_RATE
// The app's timer is polled at 20 kHz: internal-clock steps and groove-timed triggers land within 50 us
// of their time. Its interrupt (the PIT, like the pulse timer) has the gates' priority: an edge waits
// for at most one check (a few dozen instructions) or, in the internal or multiplied clock modes, one
// timer step.
constexpr uint32_t STEP_TIMER_US = 50;
// Pixels per display transaction: one 6x8 glyph cell (TFT_eSPI draws an unclipped size-1 glyph with a
// background in one transaction of exactly this many pixels).
constexpr int DISPLAY_CHUNK_PIXELS = 6 * 8;
constexpr int GLYPH_WIDTH = 6, GLYPH_HEIGHT = 8;
constexpr uint32_t BUTTON_DEBOUNCE_MS = 20;
constexpr int ENCODER_COUNTS_PER_DETENT = 4;
constexpr size_t REPORT_QUEUE = 16;

// Model files live in OCRAM (DMAMEM), never in the 512 KB DTCM that holds the stack and variables.
DMAMEM uint8_t model_buffer[448 * 1024] __attribute__((aligned(16)));

IntervalTimer pulse_timer;
IntervalTimer step_timer;
Encoder encoder(ENCODER_PIN1, ENCODER_PIN2);
TFT_eSPI tft;
SPISettings dac_spi(20000000, MSBFIRST, SPI_MODE1);

volatile uint32_t trigger_remaining_ms[HAL_OUTPUTS];
bool button_level[HAL_BUTTONS];
uint32_t button_changed_ms[HAL_BUTTONS];
long encoder_detents;

// Reports may come from the timer interrupt: queued, printed from loop().
char report_queue[REPORT_QUEUE][96];
volatile uint32_t report_head, report_tail;

// What the display should show; drawn from loop().
struct {
    char type[8];
    char name[64];
    char message[96];
    char status[96];
    char labels[128][5];
    uint8_t cells[64 * 128];
    int rows, ticks;
    volatile int cursor;
    int drawn_cursor;
    volatile bool dirty;
} screen;

void dac_write(int jack, float volts) {
    float code = (volts - OUTPUT_MIN_VOLTS) / OUTPUT_SPAN_VOLTS * DAC_FULL_SCALE;
    uint32_t value = code <= 0.0f ? 0u : code >= DAC_FULL_SCALE ? 16383u : (uint32_t)(code + 0.5f);
    // DAC8164 frame: LD = 01 (update this channel now), channel select, 14 data bits.
    uint32_t frame = (1u << 20) | ((uint32_t)JACK_DAC_CHANNEL[jack] << 17) | (value << 2);
    SPI.beginTransaction(dac_spi);
    digitalWriteFast(JACK_DAC_CS[jack], LOW);
    SPI.transfer((uint8_t)(frame >> 16));
    SPI.transfer((uint8_t)(frame >> 8));
    SPI.transfer((uint8_t)frame);
    digitalWriteFast(JACK_DAC_CS[jack], HIGH);
    SPI.endTransaction();
}

// Gate edges go straight into the app, which plays the clock's step before returning.
template <int gate>
void on_gate_change() {
    app_gate_edge((app_gate)gate, digitalReadFast(GATE_PINS[gate]));
}

// 1 kHz: ends trigger pulses.
void end_pulses() {
    for (int jack = 0; jack < HAL_OUTPUTS; ++jack) {
        if (trigger_remaining_ms[jack] > 0 && --trigger_remaining_ms[jack] == 0) {
            dac_write(jack, 0.0f);
        }
    }
}

// 20 kHz: the app's timer (steps of the internal or a multiplied clock, triggers timed by the groove),
// when due: what is due fires within 50 us of its time.
void fire_step_timer() {
    uint32_t due, now = micros();
    if (app_timer_due(&due) && (int32_t)(now - due) >= 0) {
        app_timer(now);
    }
}

float read_volts(int pin) {
    return INPUT_MIN_VOLTS + analogRead(pin) / ADC_FULL_SCALE * INPUT_SPAN_VOLTS;
}

void copy_text(char *to, size_t capacity, const char *from) {
    strncpy(to, from, capacity - 1);
    to[capacity - 1] = '\0';
}

// A filled rectangle in transactions of at most DISPLAY_CHUNK_PIXELS pixels: bands of whole rows when a
// row fits in a chunk, else pieces of one row.
void fill_chunked(int x, int y, int w, int h, uint16_t colour) {
    if (w <= 0 || h <= 0) {
        return;
    }
    if (w <= DISPLAY_CHUNK_PIXELS) {
        int band = DISPLAY_CHUNK_PIXELS / w;
        for (int top = y; top < y + h; top += band) {
            tft.fillRect(x, top, w, min(band, y + h - top), colour);
        }
        return;
    }
    for (int row = y; row < y + h; ++row) {
        for (int left = x; left < x + w; left += DISPLAY_CHUNK_PIXELS) {
            tft.fillRect(left, row, min(DISPLAY_CHUNK_PIXELS, x + w - left), 1, colour);
        }
    }
}

// Text one glyph per transaction. Only glyphs wholly on screen: TFT_eSPI draws a clipped glyph pixel by
// pixel inside one long transaction.
void draw_text(const char *text, int x, int y, uint16_t colour) {
    for (; *text != '\0' && x + GLYPH_WIDTH < TFT_HEIGHT && y + GLYPH_HEIGHT < TFT_WIDTH; ++text) {
        tft.drawChar(x, y, (uint8_t)*text, colour, TFT_BLACK, 1);
        x += GLYPH_WIDTH;
    }
}

// Pitch-class rows like the original's 12 visible notes when the model has more rows than pixels.
void draw_screen() {
    static const uint16_t colours[10] = {TFT_WHITE,   TFT_YELLOW, TFT_MAGENTA, TFT_GREEN, TFT_BLUE,
                                         TFT_CYAN,    TFT_ORANGE, TFT_RED,     TFT_PINK,  TFT_LIGHTGREY};
    const int view_top = 40, view_height = 40;
    if (screen.dirty) {
        screen.dirty = false;
        fill_chunked(0, 0, TFT_HEIGHT, TFT_WIDTH, TFT_BLACK);  // rotated: TFT_HEIGHT pixels wide
        draw_text(screen.type, 0, 0, TFT_ORANGE);
        draw_text(screen.name, 0, 12, TFT_WHITE);
        draw_text(screen.message[0] != '\0' ? screen.message : screen.status, 0, 24, TFT_WHITE);
        screen.drawn_cursor = -1;
    }
    int cursor = screen.cursor;
    if (screen.ticks <= 0 || cursor == screen.drawn_cursor) {
        return;
    }
    int shown_rows = screen.rows > view_height / 2 ? 12 : screen.rows;
    // A label column (4 glyphs) left of the steps; rows too thin for a glyph are labelled every few.
    const int label_width = 4 * GLYPH_WIDTH;
    int tick_width = (TFT_HEIGHT - label_width) / screen.ticks, row_height = view_height / shown_rows;
    if (screen.drawn_cursor == -1) {
        int stride = (GLYPH_HEIGHT + row_height - 1) / row_height;
        for (int row = 0; row < shown_rows; row += stride) {
            int top = view_top + view_height - (row + 1) * row_height;
            draw_text(screen.labels[row], 0, top, TFT_LIGHTGREY);
        }
    }
    for (int tick = 0; tick < screen.ticks; ++tick) {
        if (tick != cursor && tick != screen.drawn_cursor && screen.drawn_cursor != -1) {
            continue;  // only the cursor's old and new columns change
        }
        int left = label_width + tick * tick_width;
        fill_chunked(left, view_top, tick_width - 1, view_height, tick == cursor ? TFT_MAROON : TFT_BLACK);
        for (int row = 0; row < screen.rows; ++row) {
            uint8_t cell = screen.cells[tick * screen.rows + row];
            if (cell != 0) {
                int shown = row % shown_rows;
                int top = view_top + view_height - (shown + 1) * row_height;
                fill_chunked(left, top, tick_width - 1, row_height, colours[(cell - 1) % 10]);
            }
        }
    }
    screen.drawn_cursor = cursor;
}

}  // namespace

// ---- hal.h ----
extern "C" {

void hal_trigger(int output) {
    dac_write(output, TRIGGER_VOLTS);
    trigger_remaining_ms[output] = TRIGGER_MS;
}

void hal_cv(int output, float volts) { dac_write(output, volts); }

void hal_led(int led, bool on) { digitalWriteFast(LED_PINS[led], on ? HIGH : LOW); }

float hal_knob_volts(int knob) { return read_volts(POT_PINS[knob]); }

float hal_cv_volts(int input) { return read_volts(CV_PINS[input]); }

int hal_list_files(const char *dir, hal_file_found found, void *context) {
    File folder = SD.open(dir);
    if (!folder || !folder.isDirectory()) {
        return -1;
    }
    int count = 0;
    for (File entry = folder.openNextFile(); entry; entry = folder.openNextFile()) {
        if (!entry.isDirectory()) {
            found(entry.name(), context);
            ++count;
        }
        entry.close();
    }
    folder.close();
    return count;
}

long hal_read_file(const char *path, uint8_t *buffer, size_t capacity) {
    File file = SD.open(path, FILE_READ);
    if (!file) {
        return -1;
    }
    size_t size = file.size();
    long result = size > capacity ? -2 : (file.read(buffer, size) == (int)size ? (long)size : -1);
    file.close();
    return result;
}

uint8_t *hal_model_buffer(size_t *capacity) {
    *capacity = sizeof model_buffer;
    return model_buffer;
}

// EEPROM layout: one size byte, then the settings.
bool hal_settings_load(void *data, size_t size) {
    if (size + 1 > (size_t)EEPROM.length() || EEPROM.read(0) != size) {
        return false;
    }
    for (size_t i = 0; i < size; ++i) {
        static_cast<uint8_t *>(data)[i] = EEPROM.read(1 + i);
    }
    return true;
}

void hal_settings_save(const void *data, size_t size) {
    if (size + 1 > (size_t)EEPROM.length()) {
        return;
    }
    EEPROM.update(0, (uint8_t)size);
    for (size_t i = 0; i < size; ++i) {
        EEPROM.update(1 + i, static_cast<const uint8_t *>(data)[i]);  // update: no wear when unchanged
    }
}

void hal_display_title(const char *type, const char *name) {
    copy_text(screen.type, sizeof screen.type, type);
    copy_text(screen.name, sizeof screen.name, name);
    screen.dirty = true;
}

void hal_display_message(const char *text) {
    copy_text(screen.message, sizeof screen.message, text);
    screen.dirty = true;
}

void hal_display_sequence(const uint8_t *cells, int rows, int ticks) {
    if (rows * ticks > (int)sizeof screen.cells) {
        return;
    }
    memcpy(screen.cells, cells, (size_t)(rows * ticks));
    screen.rows = rows;
    screen.ticks = ticks;
    screen.dirty = true;
}

void hal_display_cursor(int tick) { screen.cursor = tick; }

void hal_display_row_label(int row, const char *label) {
    if (row >= 0 && row < (int)(sizeof screen.labels / sizeof screen.labels[0])) {
        copy_text(screen.labels[row], sizeof screen.labels[row], label);
        screen.dirty = true;
    }
}

void hal_display_status(const char *text) {
    copy_text(screen.status, sizeof screen.status, text);
    screen.dirty = true;
}

uint32_t hal_micros(void) { return micros(); }

void hal_midi_note(int channel, int note, int velocity) {
    if (velocity > 0) {
        usbMIDI.sendNoteOn(note, velocity, channel);
    } else {
        usbMIDI.sendNoteOff(note, 0, channel);
    }
}

void hal_report(const char *line) {
    uint32_t head = report_head;
    if (head - report_tail < REPORT_QUEUE) {
        copy_text(report_queue[head % REPORT_QUEUE], sizeof report_queue[0], line);
        report_head = head + 1;
    }
}

}  // extern "C"

void setup() {
    Serial.begin(115200);
    analogReadResolution(12);
    for (int pin : GATE_PINS) pinMode(pin, INPUT);
    for (int pin : BUTTON_PINS) pinMode(pin, INPUT_PULLUP);
    for (int pin : LED_PINS) pinMode(pin, OUTPUT);
    for (int pin : {DAC1_CS_PIN, DAC2_CS_PIN}) {
        pinMode(pin, OUTPUT);
        digitalWrite(pin, HIGH);
    }
    SPI.begin();
    // The display shares the SPI bus: its transactions (each at most one chunk, see draw_screen) hold off
    // the interrupts that write the DACs. Gate and pulse-timer interrupts keep their equal default
    // priority, so neither pre-empts the other inside a DAC write.
    SPI.usingInterrupt(IRQ_PIT);
    for (int pin : GATE_PINS) SPI.usingInterrupt(digitalPinToInterrupt(pin));
    tft.init();
    tft.setRotation(1);
    if (!SD.begin(SD_CS_PIN)) {
        Serial.println("no SD card: playing the built-in model");
    }
    app_power_on();
    pulse_timer.begin(end_pulses, PULSE_TIMER_US);
    step_timer.begin(fire_step_timer, STEP_TIMER_US);
    attachInterrupt(digitalPinToInterrupt(GATE_PINS[0]), on_gate_change<0>, CHANGE);
    attachInterrupt(digitalPinToInterrupt(GATE_PINS[1]), on_gate_change<1>, CHANGE);
    attachInterrupt(digitalPinToInterrupt(GATE_PINS[2]), on_gate_change<2>, CHANGE);
}

void loop() {
    uint32_t now = millis();
    for (int button = 0; button < HAL_BUTTONS; ++button) {
        bool pressed = digitalReadFast(BUTTON_PINS[button]) == LOW;  // to ground, pulled up
        if (pressed != button_level[button] && now - button_changed_ms[button] >= BUTTON_DEBOUNCE_MS) {
            button_level[button] = pressed;
            button_changed_ms[button] = now;
            app_button((app_button_id)button, pressed, now);
        }
    }
    long detents = encoder.read() / ENCODER_COUNTS_PER_DETENT;
    if (detents != encoder_detents) {
        app_select((int)(detents - encoder_detents));
        encoder_detents = detents;
    }
    app_poll(now);
    usbMIDI.send_now();
    while (usbMIDI.read()) {
        // incoming MIDI is not used; reading keeps the host's buffer from filling
    }
    while (report_tail != report_head) {
        Serial.println(report_queue[report_tail % REPORT_QUEUE]);
        report_tail = report_tail + 1;
    }
    draw_screen();
}
