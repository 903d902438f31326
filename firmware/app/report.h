/* What the module tells its user through hal_report (USB serial on the board, the log of the virtual
   module) and the display's status line. */
#ifndef RV_REPORT_H
#define RV_REPORT_H

/* One line (text_format's format and arguments) through hal_report. The module's lines:
   "load DRUM|NOTE rows R ticks T zero Z name NAME" (Z: the MIDI note at 0 V on the pitch jacks),
   "skip NAME: REASON" (also shown on the display), "tick N" (the step the clock played last, from the
   main loop), "infer latent Z0 Z1 Z2 threshold T" in thousandths or "infer failed: REASON",
   "set NAME [INDEX] VALUE" (a shift-layer value or the clock changed: density GROUP percent,
   max-notes, chaos percent, length steps, ppqn, bpm, groove percent, swing percent), "settings
   restored" (a valid saved blob) or "settings default" at power-on, "early notes on the edge: no tempo
   yet" (once after a power-on, reset or tempo change: notes the groove moves ahead of their step played
   on its edge, since no interval had been measured to predict the edge by). */
void report(const char *format, ...);

#endif
