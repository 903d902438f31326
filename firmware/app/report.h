/* What the module tells its user through hal_report (USB serial on the board, the log of the virtual
   module) and the display's status line. */
#ifndef RV_REPORT_H
#define RV_REPORT_H

#include <stdbool.h>

#include "rackvae.h"

/* "load DRUM|NOTE rows R ticks T zero Z name NAME" (Z: the MIDI note at 0 V on the pitch jacks). */
void report_model_loaded(const rv_metadata *meta, int zero_volt_note, const char *name);

/* "skip NAME: REASON", also shown on the display. */
void report_model_skipped(const char *name, const char *reason);

/* "tick N": the step the clock played last (from the main loop). */
void report_tick(int tick);

/* "infer latent Z0 Z1 Z2 threshold T" in thousandths, or "infer failed: REASON". */
void report_inference(const float *latent, int latent_dim, float threshold, rv_status status);

/* "set NAME [INDEX] VALUE": a shift-layer value or the clock changed (density GROUP percent,
   max-notes, chaos percent, length steps, ppqn, bpm). */
void report_setting(const char *name, int index, int value);

/* "settings restored" (a valid saved blob) or "settings default", at power-on. */
void report_settings(bool restored);

#endif
