/* Row labels for the display: General MIDI drum names for percussion rows (metadata version 2), note
   names for note models. */
#ifndef RV_LABELS_H
#define RV_LABELS_H

#include "rackvae.h"
#include "text.h"

/* label of a row: "BD1", "SD1", "CHH"... (GM drums 35-81), "ACC" (accent row), "N<note>" (another
   drum note), "R<row>" (percussion files without row notes), or "C4", "F#2"... (note models). */
void label_row(const rv_metadata *meta, int row, text_line *label);

#endif
