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

typedef enum {
    APP_BUTTON_PAUSE = 0,     /* pause the clock until the next reset */
    APP_BUTTON_RESET = 1,     /* manual reset */
    APP_BUTTON_INFERENCE = 2, /* press: inference (manual mode); hold 1 s: toggle manual mode */
} app_button_id;

/* Lists the models on the card, restores the saved selection and loads it (or the built-in model). */
void app_power_on(void);

/* A gate input changed level (interrupt context). */
void app_gate_edge(app_gate gate, bool high);

/* A button changed state at time now_ms. */
void app_button(app_button_id button, bool pressed, uint32_t now_ms);

/* The model-select encoder turned by delta detents. */
void app_select(int delta);

/* Main-loop work: button holds, model loading, pending inference. */
void app_poll(uint32_t now_ms);

#endif
