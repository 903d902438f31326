/* The module app: model selection, inputs -> latent -> decoder core -> outputs on a clock.
 *
 * A target calls app_power_on once, feeds gate and button edges as they happen (gate edges may come from
 * an interrupt: they only advance the sequencer and write outputs, never wait for an inference), and
 * calls app_poll from its main loop, where model loading and inference run.
 */
#ifndef RV_APP_H
#define RV_APP_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    APP_GATE_CLOCK = 0,
    APP_GATE_RESET = 1,
    APP_GATE_INFERENCE = 2, /* runs an inference in manual-inference mode */
} app_gate;

/* The buttons are also shift keys: while one is held, turning a pot sets a value of its layer instead
   of the pot's own function (README, module section). */
typedef enum {
    APP_BUTTON_PAUSE = 0,     /* release (no pot turned): pause until the next reset; held: density layer */
    APP_BUTTON_RESET = 1,     /* press: manual reset; held: groove layer */
    APP_BUTTON_INFERENCE = 2, /* press: inference (manual mode) and tap tempo (internal clock); hold 1 s:
                                 toggle manual mode; held: play layer */
} app_button_id;

/* Lists the models on the card, restores the saved selection and loads it (or the built-in model). */
void app_power_on(void);

/* A gate input changed level (interrupt context). */
void app_gate_edge(app_gate gate, bool high);

/* A button changed state at time now_ms. */
void app_button(app_button_id button, bool pressed, uint32_t now_ms);

/* The model-select encoder turned by delta detents. */
void app_select(int delta);

/* Main-loop work: button holds, shift layers, model loading, pending inference, the played step's
   report and MIDI, settings saving. */
void app_poll(uint32_t now_ms);

/* The app's own timer (the steps of the internal clock and between the pulses of a 1 or 2 ppqn clock;
   the triggers the groove and swing move off the clock edge): true when it wants app_timer called at
   *due_us (microseconds on hal_micros' clock) or as soon as possible after. The virtual module calls it
   exactly then; the board polls it from a fast timer interrupt. */
bool app_timer_due(uint32_t *due_us);

/* The timer fired at now_us (interrupt context, like a clock edge): what is due by then plays. */
void app_timer(uint32_t now_us);

#endif
