#include "report.h"

#include "hal.h"
#include "text.h"

void report(const char *format, ...)
{
    text_line line;
    va_list args;
    text_clear(&line);
    va_start(args, format);
    text_vformat(&line, format, args);
    va_end(args);
    hal_report(line.text);
}
