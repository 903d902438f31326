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

void text_vformat(text_line *line, const char *format, va_list args)
{
    for (char c; (c = *format++) != '\0';) {
        if (c != '%') {
            char text[2] = {c, '\0'};
            text_add(line, text);
        } else if ((c = *format++) == 's') {
            text_add(line, va_arg(args, const char *));
        } else if (c == 'd') {
            text_add_int(line, va_arg(args, int));
        } else { /* a float, promoted to double: converting back is exact */
            float value = (float)va_arg(args, double);
            if (c == 'm') {
                text_add_int(line, text_milli(value));
            } else {
                long centi = text_milli(value * 0.1f);
                int magnitude = (int)(centi < 0 ? -centi : centi);
                text_format(line, "%s%d.%s%d", centi < 0 ? "-" : "", magnitude / 100,
                            magnitude % 100 < 10 ? "0" : "", magnitude % 100);
            }
        }
    }
}

void text_format(text_line *line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    text_vformat(line, format, args);
    va_end(args);
}
