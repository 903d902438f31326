#include "labels.h"

#define GM_FIRST 35
#define GM_LAST 81

/* Three letters per General MIDI drum note from GM_FIRST (the Level 1 percussion map). */
static const char gm_drums[] = "BD2BD1RIMSD1CLPSD2LFTCHHHFTPHHLTMOHHLMTHMTCR1HTMRD1CHNRBLTMBSPLCWBCR2VSL"
                               "RD2HBGLBGMHCOHCLCGHTBLTBHAGLAGCABMRCSWHLWHSGULGUCLVHWBLWBMCUOCUMTROTR";
static const char note_names[] = "C C#D D#E F F#G G#A A#B ";

/* Writes the decimal digits of value (0..999) at text; returns the end. */
static char *digits(char *text, unsigned value)
{
    if (value >= 10u) {
        text = digits(text, value / 10u);
    }
    *text++ = (char)('0' + value % 10u);
    return text;
}

void label_row(const rv_metadata *meta, int row, char label[LABEL_CAPACITY])
{
    unsigned note = meta->row_notes[row];
    char *end = label;
    if (meta->kind == RV_KIND_NOTE) {
        /* base_note + row, at most 127 (C arrays written before metadata version 2 hold no row notes) */
        note = meta->base_note + (unsigned)row < 127u ? meta->base_note + (unsigned)row : 127u;
        const char *name = &note_names[note % 12u * 2u];
        *end++ = name[0];
        if (name[1] != ' ') {
            *end++ = name[1];
        }
        if (note < 12u) {
            *end++ = '-'; /* octave -1: MIDI note 60 is C4 */
        }
        end = digits(end, note < 12u ? 1u : note / 12u - 1u);
    } else if (meta->extension_version < 2) {
        *end++ = 'R';
        end = digits(end, (unsigned)row);
    } else if (note == RV_ACCENT_ROW) {
        *end++ = 'A', *end++ = 'C', *end++ = 'C';
    } else if (note >= GM_FIRST && note <= GM_LAST) {
        const char *name = &gm_drums[(note - GM_FIRST) * 3u];
        *end++ = name[0], *end++ = name[1], *end++ = name[2];
    } else {
        *end++ = 'N';
        end = digits(end, note);
    }
    *end = '\0';
}
