#include "report.h"

#include "hal.h"
#include "text.h"

void report_model_loaded(const rv_metadata *meta, int zero_volt_note, const char *name)
{
    text_line line;
    text_clear(&line);
    text_add(&line, meta->kind == RV_KIND_PERC ? "load DRUM rows " : "load NOTE rows ");
    text_add_int(&line, meta->rows);
    text_add(&line, " ticks ");
    text_add_int(&line, meta->ticks);
    text_add(&line, " zero ");
    text_add_int(&line, zero_volt_note);
    text_add(&line, " name ");
    text_add(&line, name);
    hal_report(line.text);
}

void report_model_skipped(const char *name, const char *reason)
{
    text_line line;
    text_clear(&line);
    text_add(&line, "skip ");
    text_add(&line, name);
    text_add(&line, ": ");
    text_add(&line, reason);
    hal_report(line.text);
    hal_display_message(line.text);
}

void report_tick(int tick)
{
    text_line line;
    text_clear(&line);
    text_add(&line, "tick ");
    text_add_int(&line, tick);
    hal_report(line.text);
}

void report_inference(const float *latent, int latent_dim, float threshold, rv_status status)
{
    text_line line;
    text_clear(&line);
    if (status != RV_OK) {
        text_add(&line, "infer failed: ");
        text_add(&line, rv_status_str(status));
        hal_report(line.text);
        return;
    }
    text_add(&line, "infer latent");
    for (int k = 0; k < latent_dim; ++k) {
        text_add(&line, " ");
        text_add_int(&line, text_milli(latent[k]));
    }
    text_add(&line, " threshold ");
    text_add_int(&line, text_milli(threshold));
    hal_report(line.text);
}

void report_setting(const char *name, int index, int value)
{
    text_line line;
    text_clear(&line);
    text_add(&line, "set ");
    text_add(&line, name);
    if (index >= 0) {
        text_add(&line, " ");
        text_add_int(&line, index);
    }
    text_add(&line, " ");
    text_add_int(&line, value);
    hal_report(line.text);
}

void report_settings(bool restored) { hal_report(restored ? "settings restored" : "settings default"); }
