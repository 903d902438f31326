/* Fuzz target of the model reader: any bytes are given to rv_model_load_tflite (and the metadata
 * parser); whatever loads is then repacked, decoded, post-processed and clocked through the engine.
 * Run by libFuzzer (clang -fsanitize=fuzzer) or by fuzz_driver.c; ASan/UBSan turn any out-of-bounds
 * read or undefined behaviour into a crash. Only this harness allocates; the core never does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rackvae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const rv_model *model) {
    const size_t n = 3;
    const uint16_t latent_dim = rv_model_latent_dim(model);
    const size_t outputs = rv_model_output_size(model);
    float *latents = (float *)calloc(n * latent_dim + 1, sizeof(float));
    float *probabilities = (float *)malloc((n * outputs + 1) * sizeof(float));
    int8_t *quantized = (int8_t *)calloc(n * latent_dim + 1, 1);
    int8_t *quantized_out = (int8_t *)malloc(n * outputs + 1);
    const size_t scratch_len = rv_scratch_size(model);
    void *scratch = malloc(scratch_len + 16);
    const size_t engine_len = rv_engine_scratch_size(model);
    void *engine_scratch = malloc(engine_len + 16);
    rv_engine *engine = (rv_engine *)malloc(sizeof(rv_engine));
    rv_sequence *sequence = (rv_sequence *)malloc(sizeof(rv_sequence));
    const rv_post_config config = rv_post_config_default();
    size_t k;
    int clock;
    for (k = 0; k < n * latent_dim; k++) {
        latents[k] = (float)k - 1.5f;
        quantized[k] = (int8_t)(k * 37);
    }
    if (rv_decode(model, latents, n, probabilities, scratch, scratch_len) == RV_OK) {
        (void)rv_postprocess(&model->metadata, probabilities, &config, sequence);
    }
    if (model->dtype == RV_S8) {
        (void)rv_decode_s8(model, quantized, n, quantized_out, scratch, scratch_len);
    }
    if (rv_engine_init(engine, model, engine_scratch, engine_len, &config) == RV_OK) {
        (void)rv_engine_run_inference(engine, latents, 0.2f);
        for (clock = 0; clock < 2 * RV_MAX_TICKS; clock++) {
            uint32_t mask;
            float accents[RV_MAX_GROUPS];
            const rv_step *step = rv_engine_clock(engine, NULL);
            if (step != NULL) {
                rv_step_groups(step, &mask, accents, NULL, NULL);
            }
        }
    }
    free(latents);
    free(probabilities);
    free(quantized);
    free(quantized_out);
    free(scratch);
    free(engine_scratch);
    free(engine);
    free(sequence);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the reader expects a 4-byte aligned buffer, as a module's file buffer is */
    uint8_t *bytes = (uint8_t *)malloc(size + 1);
    rv_model *model = (rv_model *)malloc(sizeof(rv_model));
    rv_model *packed = (rv_model *)malloc(sizeof(rv_model));
    rv_metadata metadata;
    size_t needed = 0;
    void *aux = NULL;
    rv_status status;
    memcpy(bytes, data, size);
    (void)rv_metadata_parse(bytes, size, &metadata);
    status = rv_model_load_tflite(model, bytes, size, NULL, 0, &needed);
    if (status == RV_ERR_BUFFER_TOO_SMALL) {
        aux = malloc(needed);
        status = rv_model_load_tflite(model, bytes, size, aux, needed, &needed);
    }
    if (status == RV_OK) {
        void *mem;
        exercise(model);
        (void)rv_model_repack(model, packed, NULL, 0, &needed);
        mem = malloc(needed + 4);
        if (rv_model_repack(model, packed, mem, needed, &needed) == RV_OK) {
            exercise(packed);
        }
        free(mem);
    }
    free(aux);
    free(packed);
    free(model);
    free(bytes);
    return 0;
}
