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

void text_add_int(text_line *line, long long value)
{
    /* Digits written backwards from the end of the buffer, then the sign. */
    char text[24], *digit = text + sizeof text - 1;
    unsigned long long magnitude = value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    *digit = '\0';
    do {
        *--digit = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0) {
        *--digit = '-';
    }
    text_add(line, digit);
}

long text_milli(float value)
{
    /* Floor of value * 1000 + 0.5 in float arithmetic: the same on every IEEE target under -std=c99. */
    float scaled = value * 1000.0f + 0.5f;
    long truncated = (long)scaled;
    return (float)truncated > scaled ? truncated - 1 : truncated;
}
