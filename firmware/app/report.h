/* What the module tells its user through hal_report (USB serial on the board, the log of the virtual
   module) and the display's status line. */
#ifndef RV_REPORT_H
#define RV_REPORT_H

#include "rackvae.h"

/* "load DRUM|NOTE rows R ticks T zero Z name NAME" (Z: the MIDI note at 0 V on the pitch jacks). */
void report_model_loaded(const rv_metadata *meta, int zero_volt_note, const char *name);

/* "skip NAME: REASON", also shown on the display. */
void report_model_skipped(const char *name, const char *reason);

/* "tick N": the step the clock just played. */
void report_tick(int tick);

/* "infer latent Z0 Z1 Z2 threshold T" in thousandths, or "infer failed: REASON". */
void report_inference(const float *latent, int latent_dim, float threshold, rv_status status);

#endif
