#include "labels.h"

#include <string.h>

#define GM_FIRST 35
#define GM_LAST 81

/* Three letters per General MIDI drum note from GM_FIRST (the Level 1 percussion map). */
static const char gm_drums[] = "BD2BD1RIMSD1CLPSD2LFTCHHHFTPHHLTMOHHLMTHMTCR1HTMRD1CHNRBLTMBSPLCWBCR2VSL"
                               "RD2HBGLBGMHCOHCLCGHTBLTBHAGLAGCABMRCSWHLWHSGULGUCLVHWBLWBMCUOCUMTROTR";
/* Each note name in 3 bytes, NUL-padded. */
static const char note_names[] = "C\0\0C#\0D\0\0D#\0E\0\0F\0\0F#\0G\0\0G#\0A\0\0A#\0B\0";

void label_row(const rv_metadata *meta, int row, text_line *label)
{
    unsigned note = meta->row_notes[row];
    text_clear(label);
    if (meta->kind == RV_KIND_NOTE) {
        /* base_note + row, at most 127 (C arrays written before metadata version 2 hold no row notes);
           octave -1 holds MIDI notes 0-11 (note 60 is C4) */
        note = meta->base_note + (unsigned)row < 127u ? meta->base_note + (unsigned)row : 127u;
        text_format(label, "%s%d", &note_names[note % 12u * 3u], (int)(note / 12u) - 1);
    } else if (meta->extension_version < 2) {
        text_format(label, "R%d", row);
    } else if (note == RV_ACCENT_ROW) {
        text_format(label, "ACC");
    } else if (note >= GM_FIRST && note <= GM_LAST) {
        memcpy(label->text, &gm_drums[(note - GM_FIRST) * 3u], 3);
        label->text[3] = '\0';
    } else {
        text_format(label, "N%d", (int)note);
    }
}
