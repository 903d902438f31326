/* Where a step's notes go on the panel, as on the original module so its users find them:
 * percussion group g triggers jack panel_perc_trigger_jack[g] (groups 0-4 -> jacks 0, 4, 1, 2, 3) and
 * the accents of groups 2, 3, 4 are 0-3 V on jacks 5, 6, 7; note models gate jacks 0-3 and put the
 * pitches (1 V/octave) on jacks 4-7, lowest note first. The groups come from the model's metadata;
 * groups without a jack stay silent.
 */
#ifndef RV_PANEL_H
#define RV_PANEL_H

#include "rackvae.h"

#define PANEL_PERC_TRIGGERS 5
#define PANEL_NOTE_VOICES 4
#define PANEL_ACCENT_FULL_SCALE_VOLTS 3.0f

extern const int8_t panel_perc_trigger_jack[PANEL_PERC_TRIGGERS];
extern const int8_t panel_perc_accent_jack[PANEL_PERC_TRIGGERS]; /* -1: no accent output */
extern const int8_t panel_note_trigger_jack[PANEL_NOTE_VOICES];
extern const int8_t panel_note_pitch_jack[PANEL_NOTE_VOICES];

/* Writes one step to the jacks: control voltages first, then the triggers they qualify. */
void panel_play_step(const rv_step *step, rv_kind kind);

#endif
