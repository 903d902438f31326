#include "panel.h"

const int8_t panel_perc_trigger_jack[PANEL_PERC_TRIGGERS] = {0, 4, 1, 2, 3};
const int8_t panel_perc_accent_jack[PANEL_PERC_TRIGGERS] = {-1, -1, 5, 6, 7};

int panel_outputs(const rv_step *step, bool perc, bool velocity, panel_output out[PANEL_OUTPUTS])
{
    uint32_t groups;
    float accents[RV_MAX_GROUPS], offsets[RV_MAX_GROUPS];
    uint8_t velocities[RV_MAX_GROUPS];
    if (perc) {
        rv_step_groups(step, &groups, accents, velocities, offsets);
    } else { /* voice v: the step's note v */
        groups = (1u << (step->count < PANEL_NOTE_VOICES ? step->count : PANEL_NOTE_VOICES)) - 1u;
    }
    int n = 0;
    for (int k = 0; k < PANEL_OUTPUTS; ++k) {
        if (groups >> k & 1u) {
            const rv_note *note = &step->notes[k];
            out[n].volts = !perc    ? note->volts
                           : velocity ? (float)velocities[k] * (PANEL_VELOCITY_FULL_SCALE_VOLTS / 127.0f)
                                      : accents[k] * PANEL_ACCENT_FULL_SCALE_VOLTS;
            out[n].offset = perc ? offsets[k] : note->offset;
            out[n].trigger = perc ? panel_perc_trigger_jack[k] : (int8_t)(PANEL_NOTE_TRIGGER_JACK + k);
            out[n].cv = perc ? panel_perc_accent_jack[k] : (int8_t)(PANEL_NOTE_PITCH_JACK + k);
            out[n++].output = (uint8_t)k;
        }
    }
    return n;
}
