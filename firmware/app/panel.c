#include "panel.h"

const int8_t panel_perc_trigger_jack[PANEL_PERC_TRIGGERS] = {0, 4, 1, 2, 3};
const int8_t panel_perc_accent_jack[PANEL_PERC_TRIGGERS] = {-1, -1, 5, 6, 7};
const int8_t panel_note_trigger_jack[PANEL_NOTE_VOICES] = {0, 1, 2, 3};
const int8_t panel_note_pitch_jack[PANEL_NOTE_VOICES] = {4, 5, 6, 7};

int panel_outputs(const rv_step *step, rv_kind kind, bool velocity, panel_output out[PANEL_OUTPUTS])
{
    int n = 0;
    if (kind == RV_KIND_PERC) {
        uint32_t groups;
        float accents[RV_MAX_GROUPS], offsets[RV_MAX_GROUPS];
        uint8_t velocities[RV_MAX_GROUPS];
        rv_step_groups(step, &groups, accents, velocities, offsets);
        for (int g = 0; g < PANEL_PERC_TRIGGERS; ++g) {
            if (groups >> g & 1u) {
                out[n].volts = velocity ? (float)velocities[g] * (PANEL_VELOCITY_FULL_SCALE_VOLTS / 127.0f)
                                        : accents[g] * PANEL_ACCENT_FULL_SCALE_VOLTS;
                out[n].offset = offsets[g];
                out[n].trigger = panel_perc_trigger_jack[g];
                out[n].cv = panel_perc_accent_jack[g];
                out[n++].output = (uint8_t)g;
            }
        }
        return n;
    }
    for (; n < step->count && n < PANEL_NOTE_VOICES; ++n) {
        out[n].volts = step->notes[n].volts;
        out[n].offset = step->notes[n].offset;
        out[n].trigger = panel_note_trigger_jack[n];
        out[n].cv = panel_note_pitch_jack[n];
        out[n].output = (uint8_t)n;
    }
    return n;
}
