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
    char reversed[24], text[24];
    int count = 0;
    unsigned long long magnitude = value < 0 ? 0ull - (unsigned long long)value : (unsigned long long)value;
    do {
        reversed[count++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    int length = 0;
    if (value < 0) {
        text[length++] = '-';
    }
    while (count > 0) {
        text[length++] = reversed[--count];
    }
    text[length] = '\0';
    text_add(line, text);
}

long text_milli(float value)
{
    /* Floor of value * 1000 + 0.5 in float arithmetic: the same on every IEEE target under -std=c99. */
    float scaled = value * 1000.0f + 0.5f;
    long truncated = (long)scaled;
    return (float)truncated > scaled ? truncated - 1 : truncated;
}
