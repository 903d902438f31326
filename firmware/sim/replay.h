/* The virtual module: replays an event script into the app and logs what the app does.
 *
 * Shared by the desktop build (firmware/sim) and the QEMU build (firmware/qemu) so both print the same
 * log for the same script. The script is text, one event per line, times in milliseconds (up to 3
 * decimals), voltages in volts (up to 6 decimals), '#' starts a comment:
 *
 *   <ms> clock|reset|trigger 0|1    gate input level (trigger = the inference-trigger gate)
 *   <ms> knob <0-3> <volts>         pot 0-2 latent, 3 threshold; the pot reads -5..5 V
 *   <ms> cv <0-3> <volts>           CV input beside that pot
 *   <ms> button <0-2> 0|1           0 pause-until-reset (on release) / held: density layer, 1 reset /
 *                                   held: groove layer, 2 inference, tap tempo / hold 1 s: manual mode /
 *                                   held: play layer
 *   <ms> select <+-n>               model-select encoder
 *   <ms> power                      power cycle (settings and pot positions kept)
 *   <ms> busy <ms>                  the main loop is held up that long from now (a long inference or
 *                                   card load): clock edges and the app's timer go on (interrupts);
 *                                   reports, MIDI, loading and inference wait until it is free
 *   <ms> timer <ms>                 the app's timer is serviced only on this grid from then on (times
 *                                   that are multiples of it), as a board's periodic interrupt polls
 *                                   it late; 0 (the default): at its due times
 *   <ms> screen                     print the display's content into the log
 *
 * Events must come in time order; events at one instant act together, and the main loop (model
 * loading, inference, the played step's report and MIDI) runs between instants. The app's timer
 * (internal clock, 1 and 2 ppqn clocks, triggers the groove or swing moves off the edge) fires at its
 * exact times between events (unless a "timer" grid is set), each time followed by the main loop
 * (unless "busy" holds it up); times are those of hal_micros
 * (microseconds since the script's start). The log has one line per thing the module did,
 * "<us> <what> ...", in the order it did them (times in microseconds):
 *
 *   <us> trig <jack>                trigger pulse on an output jack
 *   <us> cv <jack> <millivolts>     control voltage on an output jack (set just before its trigger)
 *   <us> led <n> 0|1
 *   <us> tick <n>                   the step the clock played (logged by the main loop, after its jacks)
 *   <us> midi <channel> <note> <velocity>   USB MIDI note on (velocity 0: off), at the time its
 *                                   trigger fired (the main loop runs right after each firing;
 *                                   after a "busy" span, when it ends)
 *   <us> set <name> [<index>] <value>       a shift-layer value or the clock changed
 *   <us> settings restored|default          at power-on: the saved settings, or none valid
 *   <us> load DRUM|NOTE rows <r> ticks <t> zero <midi note at 0 V> name <path or built-in>
 *   <us> skip <path>: <reason>      a model file that cannot be played
 *   <us> infer latent <z...> threshold <t>   inference inputs, in thousandths
 *   <us> screen title|message|status|cursor|row ... display content, on a "screen" event
 *                                   (row <n> <label> <cells>)
 */
#ifndef RV_REPLAY_H
#define RV_REPLAY_H

#include <stddef.h>

/* Provided by the platform (desktop or QEMU): writes one NUL-terminated chunk of the log. */
void replay_write(const char *text);

/* Replays the script; returns 0, or 2 after logging "error line N: reason" for a malformed script. */
int replay_run(const char *script, size_t length);

#endif
