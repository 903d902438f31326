/* The hardware-abstraction interface the module app (firmware/app) runs on.
 *
 * Each target implements these functions: firmware/sim (desktop, replaying an event script),
 * firmware/qemu (mps2-an500, the same replay over semihosting) and firmware/teensy (the board).
 * The app pushes outputs and pulls the analog inputs when an inference starts; gate and button edges
 * are pushed into the app by the target (see app.h). All voltages are at the jacks, in volts.
 */
#ifndef RV_HAL_H
#define RV_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Panel: 8 DAC-driven output jacks (triggers are pulses on them), 4 pots with 4 CV inputs beside them
   (0-2 latent, 3 threshold; shift layers, app.h), 3 buttons and their LEDs. */
#define HAL_OUTPUTS 8
#define HAL_KNOBS 4
#define HAL_BUTTONS 3

/* ---- outputs (called from the clock handler: must not block) ---- */

/* Fires a trigger pulse on an output jack. */
void hal_trigger(int output);

/* Sets an output jack to a control voltage. */
void hal_cv(int output, float volts);

void hal_led(int led, bool on);

/* ---- inputs (sampled when an inference starts) ---- */

/* Pot position as the voltage its ADC reads, -5..5 V. */
float hal_knob_volts(int knob);

/* Voltage at the CV input beside a pot, -5..5 V. */
float hal_cv_volts(int input);

/* Microseconds on a free-running clock (wraps after ~71 minutes): times the pulses of a 1 or 2 ppqn
   clock and re-phases the internal clock. */
uint32_t hal_micros(void);

/* ---- USB MIDI out (main loop) ---- */

/* One note message on channel 1..16: velocity 1..127 note on, 0 note off. */
void hal_midi_note(int channel, int note, int velocity);

/* ---- the SD card ---- */

/* Calls found(name, context) for each regular file in directory dir (e.g. "/models/perc"), in any
   order; returns the number of files, or -1 when the card or the directory is missing. */
typedef void (*hal_file_found)(const char *name, void *context);
int hal_list_files(const char *dir, hal_file_found found, void *context);

/* Reads a whole file into buffer; returns its size, -1 when it cannot be opened or read, -2 when it is
   larger than capacity. */
long hal_read_file(const char *path, uint8_t *buffer, size_t capacity);

/* The board's buffer for one model file (on the Teensy in OCRAM/PSRAM, never in DTCM). */
uint8_t *hal_model_buffer(size_t *capacity);

/* ---- settings kept across power cycles (EEPROM on the board) ---- */

/* Fills data with the saved settings; false when none were saved or their size differs. */
bool hal_settings_load(void *data, size_t size);
void hal_settings_save(const void *data, size_t size);

/* ---- display ---- */

/* Model type ("NOTE"/"DRUM") and file name of the playing model. */
void hal_display_title(const char *type, const char *name);

/* A status line, e.g. why a model file was skipped; "" clears it. */
void hal_display_message(const char *text);

/* The sequence view: cells[tick * rows + row] is 0 for silence, else 1 + the output group of the note
   (percussion) or 1 + its octave (notes), for colouring. */
void hal_display_sequence(const uint8_t *cells, int rows, int ticks);

/* The current-tick cursor, -1 before the first step. */
void hal_display_cursor(int tick);

/* A row's label (instrument or note name, at most 4 characters), set when a model loads. */
void hal_display_row_label(int row, const char *label);

/* The performance line under the message: the latent values played and the active shift layer. */
void hal_display_status(const char *text);

/* ---- diagnostics ---- */

/* One line of text about what the module did (model loaded or skipped, inference inputs); the virtual
   targets put it in their output log, the board prints it on USB serial. */
void hal_report(const char *line);

#endif
