#include "text.h"

void text_clear(text_line *line)
{
    line->length = 0;
    line->text[0] = '\0';
}

void text_add(text_line *line, const char *text)
{
    while (*text && line->length + 1 < TEXT_LINE_CAPACITY) {
        line->text[line->length++] = *text++;
    }
    line->text[line->length] = '\0';
}

void text_add_uint(text_line *line, unsigned long value)
{
    /* Digits written backwards from the end of the buffer. unsigned long, not long long: a 64-bit
       division would pull libgcc's __aeabi_uldivmod (~750 B) into the Cortex-M7 image and slow the
       clock handler's "tick N" line. */
    char text[24], *digit = text + sizeof text - 1;
    *digit = '\0';
    do {
        *--digit = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    text_add(line, digit);
}

void text_add_int(text_line *line, long value)
{
    if (value < 0) {
        text_add(line, "-");
    }
    text_add_uint(line, value < 0 ? 0ul - (unsigned long)value : (unsigned long)value);
}

long text_milli(float value)
{
    /* Floor of value * 1000 + 0.5 in float arithmetic: the same on every IEEE target under -std=c99. */
    float scaled = value * 1000.0f + 0.5f;
    long truncated = (long)scaled;
    return (float)truncated > scaled ? truncated - 1 : truncated;
}

void text_add_centi(text_line *line, float value)
{
    long centi = text_milli(value * 0.1f);
    unsigned long magnitude = centi < 0 ? 0ul - (unsigned long)centi : (unsigned long)centi;
    text_add(line, centi < 0 ? "-" : "");
    text_add_uint(line, magnitude / 100u);
    text_add(line, magnitude % 100u < 10u ? ".0" : ".");
    text_add_uint(line, magnitude % 100u);
}
