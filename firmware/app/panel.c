#include "panel.h"

#include "hal.h"

const int8_t panel_perc_trigger_jack[PANEL_PERC_TRIGGERS] = {0, 4, 1, 2, 3};
const int8_t panel_perc_accent_jack[PANEL_PERC_TRIGGERS] = {-1, -1, 5, 6, 7};
const int8_t panel_note_trigger_jack[PANEL_NOTE_VOICES] = {0, 1, 2, 3};
const int8_t panel_note_pitch_jack[PANEL_NOTE_VOICES] = {4, 5, 6, 7};

static void play_percussion(const rv_step *step)
{
    uint32_t groups;
    float accents[RV_MAX_GROUPS];
    rv_step_groups(step, &groups, accents, NULL, NULL);
    for (int g = 0; g < PANEL_PERC_TRIGGERS; ++g) {
        if ((groups >> g & 1u) && panel_perc_accent_jack[g] >= 0) {
            hal_cv(panel_perc_accent_jack[g], accents[g] * PANEL_ACCENT_FULL_SCALE_VOLTS);
        }
    }
    for (int g = 0; g < PANEL_PERC_TRIGGERS; ++g) {
        if (groups >> g & 1u) {
            hal_trigger(panel_perc_trigger_jack[g]);
        }
    }
}

static void play_notes(const rv_step *step)
{
    int voices = step->count < PANEL_NOTE_VOICES ? step->count : PANEL_NOTE_VOICES;
    for (int v = 0; v < voices; ++v) {
        hal_cv(panel_note_pitch_jack[v], step->notes[v].volts);
    }
    for (int v = 0; v < voices; ++v) {
        hal_trigger(panel_note_trigger_jack[v]);
    }
}

void panel_play_step(const rv_step *step, rv_kind kind)
{
    if (kind == RV_KIND_PERC) {
        play_percussion(step);
    } else {
        play_notes(step);
    }
}
