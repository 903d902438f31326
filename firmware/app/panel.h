/* Where a step's notes go on the panel, as on the original module so its users find them:
 * percussion group g triggers jack panel_perc_trigger_jack[g] (groups 0-4 -> jacks 0, 4, 1, 2, 3) and
 * the accents of groups 2, 3, 4 are on jacks 5, 6, 7: the velocity of the group's loudest hit, 0-5 V
 * for 0-127, for models with a velocity channel; for hits-only models the accent of its most probable
 * row (its position in the group) as 0-3 V. Note models gate jacks 0-3 and put the pitches
 * (1 V/octave) on jacks 4-7, lowest note first. The groups come from the model's metadata; groups
 * without a jack stay silent.
 */
#ifndef RV_PANEL_H
#define RV_PANEL_H

#include <stdbool.h>

#include "rackvae.h"

#define PANEL_PERC_TRIGGERS 5
#define PANEL_NOTE_VOICES 4
#define PANEL_OUTPUTS PANEL_PERC_TRIGGERS /* outputs of one step at most: groups or voices */
#define PANEL_ACCENT_FULL_SCALE_VOLTS 3.0f
#define PANEL_VELOCITY_FULL_SCALE_VOLTS 5.0f

#define PANEL_NOTE_TRIGGER_JACK 0 /* voice v: gate on jack 0 + v, pitch on jack 4 + v */
#define PANEL_NOTE_PITCH_JACK 4

extern const int8_t panel_perc_trigger_jack[PANEL_PERC_TRIGGERS];
extern const int8_t panel_perc_accent_jack[PANEL_PERC_TRIGGERS]; /* -1: no accent output */

/* One output of a step: a percussion group or a note voice. Its CV (accent or pitch) is set just
   before its trigger, both at the step's edge + its offset (in steps; the app times them). */
typedef struct {
    float volts;
    float offset;
    int8_t trigger; /* jack */
    int8_t cv;      /* jack, -1: none */
    uint8_t output; /* percussion: the group; notes: the voice (index in the step's notes) */
} panel_output;

/* The step's outputs in group (voice) order; returns their number. velocity: accents carry the
   velocity (the model has a velocity channel). */
int panel_outputs(const rv_step *step, bool perc, bool velocity, panel_output out[PANEL_OUTPUTS]);

#endif
