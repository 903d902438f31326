/* The sequencer engine: a tick counter driven by the clock, two sequence buffers so that inference
 * (main loop) never delays a clock edge (interrupt), manual and automatic inference, pause-until-reset. */
#include <string.h>

#include "rv_internal.h"

static size_t outputs_offset(const rv_model *model) { return (rv_scratch_size(model) + 3u) & ~(size_t)3u; }

size_t rv_engine_scratch_size(const rv_model *model) {
    if (rv_model_ready(model) != RV_OK) {
        return 0;
    }
    return outputs_offset(model) + (size_t)rv_model_output_size(model) * sizeof(float);
}

/* Model, scratch and fresh sequence buffers; everything else stays as the caller left it. */
static rv_status attach_model(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len) {
    rv_status status;
    if (engine == NULL || scratch == NULL || ((uintptr_t)scratch % 4) != 0) {
        return RV_ERR_ARGUMENT;
    }
    status = rv_model_ready(model);
    if (status != RV_OK) {
        return status;
    }
    if (scratch_len < rv_engine_scratch_size(model)) {
        return RV_ERR_BUFFER_TOO_SMALL;
    }
    engine->model = NULL; /* the clock ignores the engine while it changes */
    RV_COMPILER_BARRIER();
    engine->scratch = (uint8_t *)scratch;
    engine->scratch_len = scratch_len;
    memset(engine->sequences, 0, sizeof(engine->sequences));
    memset(engine->latent, 0, sizeof(engine->latent));
    engine->front = 0;
    engine->front_valid = 0;
    engine->back_ready = 0;
    engine->pending = 1;
    if (engine->tick >= (int)model->metadata.ticks) {
        engine->tick = (int16_t)(engine->tick % model->metadata.ticks);
    }
    RV_COMPILER_BARRIER();
    engine->model = model;
    return RV_OK;
}

rv_status rv_engine_init(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len,
                         const rv_post_config *config) {
    if (engine == NULL) {
        return RV_ERR_ARGUMENT;
    }
    engine->model = NULL;
    engine->config = config != NULL ? *config : rv_post_config_default();
    if (engine->config.max_notes < 1 || engine->config.max_notes > RV_MAX_NOTES ||
        engine->config.zero_volt_note > 127) {
        return RV_ERR_ARGUMENT;
    }
    engine->manual = 0;
    engine->paused = 0;
    engine->tick = -1;
    return attach_model(engine, model, scratch, scratch_len);
}

rv_status rv_engine_set_model(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len) {
    return attach_model(engine, model, scratch, scratch_len);
}

const rv_step *rv_engine_clock(rv_engine *engine, int *tick) {
    int next;
    if (tick != NULL) {
        *tick = -1;
    }
    if (engine == NULL || engine->model == NULL || engine->paused) {
        return NULL;
    }
    next = engine->tick + 1;
    if (next >= engine->model->metadata.ticks) {
        next = 0;
    }
    engine->tick = (int16_t)next;
    /* a finished sequence starts at step 0 (automatic), at once (manual), or when nothing plays yet */
    if (engine->back_ready && (!engine->front_valid || engine->manual || next == 0)) {
        engine->front = (uint8_t)(engine->front ^ 1u);
        engine->front_valid = 1;
        engine->back_ready = 0;
        if (!engine->manual) {
            engine->pending = 1; /* compute the next cycle's sequence during this one */
        }
    }
    if (!engine->front_valid) {
        return NULL;
    }
    if (tick != NULL) {
        *tick = next;
    }
    return &engine->sequences[engine->front].steps[next];
}

void rv_engine_reset(rv_engine *engine) {
    if (engine != NULL) {
        engine->tick = -1;
        engine->paused = 0;
    }
}

void rv_engine_pause_until_reset(rv_engine *engine) {
    if (engine != NULL) {
        engine->paused = 1;
    }
}

void rv_engine_set_manual(rv_engine *engine, int manual) {
    if (engine != NULL) {
        engine->manual = manual ? 1 : 0;
        if (!manual) {
            engine->pending = 1;
        }
    }
}

void rv_engine_request_inference(rv_engine *engine) {
    if (engine != NULL) {
        engine->pending = 1;
    }
}

int rv_engine_inference_pending(const rv_engine *engine) {
    return engine != NULL && engine->model != NULL && engine->pending;
}

rv_status rv_engine_run_inference(rv_engine *engine, const float *latent, float threshold) {
    const rv_model *model;
    size_t decode_scratch_len;
    unsigned back;
    rv_status status;
    if (engine == NULL || latent == NULL) {
        return RV_ERR_ARGUMENT;
    }
    model = engine->model;
    if (model == NULL) {
        return RV_ERR_NOT_READY;
    }
    engine->pending = 0;
    /* withdraw an unplayed back buffer before writing it; only then is `front` stable for us */
    engine->back_ready = 0;
    RV_COMPILER_BARRIER();
    back = engine->front ^ 1u;
    decode_scratch_len = outputs_offset(model); /* the outputs (all channels) follow the decoder's scratch */
    status = rv_decode(model, latent, 1, (float *)(engine->scratch + decode_scratch_len), engine->scratch,
                       decode_scratch_len);
    if (status != RV_OK) {
        return status;
    }
    engine->config.threshold = threshold; /* read here only: the knob's value of this inference */
    status = rv_postprocess(&model->metadata, (const float *)(engine->scratch + decode_scratch_len),
                            &engine->config, &engine->sequences[back]);
    if (status != RV_OK) {
        return status;
    }
    memcpy(engine->latent, latent, rv_model_latent_dim(model) * sizeof(float));
    RV_COMPILER_BARRIER();
    engine->back_ready = 1;
    return RV_OK;
}

const rv_sequence *rv_engine_sequence(const rv_engine *engine) {
    if (engine == NULL || engine->model == NULL || !engine->front_valid) {
        return NULL;
    }
    return &engine->sequences[engine->front];
}
