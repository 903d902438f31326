/* Building short lines of text without printf: integers only, so every target prints the same bytes
   (and the Cortex-M7 image carries no floating-point printf). */
#ifndef RV_TEXT_H
#define RV_TEXT_H

#include <stdarg.h>
#include <stddef.h>

#define TEXT_LINE_CAPACITY 160

typedef struct {
    char text[TEXT_LINE_CAPACITY];
    size_t length;
} text_line;

void text_clear(text_line *line);

/* Appends, silently cutting what does not fit (the line stays NUL-terminated). */
void text_add(text_line *line, const char *text);
void text_add_uint(text_line *line, unsigned long value);
void text_add_int(text_line *line, long value);

/* Appends format, each %s replaced by a string argument, %d by an int, %m by a float in thousandths
   (text_milli) and %c by a float with two decimals ("-1.05", rounded half up in hundredths). One call
   instead of a text_add per piece keeps the app's report lines small in code. */
void text_format(text_line *line, const char *format, ...);
void text_vformat(text_line *line, const char *format, va_list args);

/* value * 1000 rounded half up, as an integer: volts -> millivolts, probabilities -> thousandths. */
long text_milli(float value);

#endif
