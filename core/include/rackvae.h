/* rackvae decoder core: public API.
 *
 * Portable C99, no heap, no global mutable state, no dependency beyond libm. The caller owns all
 * memory: functions say how much they need (rv_scratch_size, the aux size of rv_model_load_tflite,
 * sizeof(rv_engine)). Every public function that can fail returns an rv_status; rv_status_str names it.
 *
 * Data flow:   model bytes (.tflite) or the exporter's C arrays  -> rv_model
 *              latent [latent_dim]  --rv_decode-->  outputs [channels * ticks * rows]
 *              outputs  --rv_postprocess-->  per tick: at most max_notes notes, in pitch order
 *              clock / reset / knobs  --rv_engine-->  the step to play now, inference double buffered
 *
 * Output layout: channel-major blocks of ticks * rows values, each block tick-major (index = tick * rows
 * + row); block k holds channel metadata.channel_ids[k], the first always the hits. Every value comes
 * out of the graph's one final LOGISTIC (int8: scale 1/256, zero point -128, all blocks alike):
 *   RV_CHANNEL_HITS      probability of a hit: what a hits-only model (1 channel) outputs alone;
 *   RV_CHANNEL_VELOCITY  s = velocity / 127      (rv_note.velocity = round(127 s), at least 1);
 *   RV_CHANNEL_OFFSET    s = offset + 0.5        (rv_note.offset = s - 0.5 steps, -0.5..0.5).
 * So  [hits: ticks*rows][velocity: ticks*rows][offset: ticks*rows]  for a groove model.
 *
 * Numbers: float32 layers sum each output in input order with fmaf (exactly rounded everywhere) and
 * never let the compiler contract other expressions (build with -ffp-contract=off), so x86 and
 * Cortex-M7 builds compute identical bits. The int8 path reproduces TFLite's reference kernels
 * (FULLY_CONNECTED requantisation, LOGISTIC fixed-point arithmetic) bit for bit.
 */
#ifndef RACKVAE_H
#define RACKVAE_H

#include <stddef.h>
#include <stdint.h>

#include "rv_limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RV_VERSION_MAJOR 0
#define RV_VERSION_MINOR 1

/* Version of the compiled core, (major << 8) | minor. */
int rv_version(void);

/* Constant model data (weights, C arrays) goes to flash where the platform distinguishes it:
   PROGMEM on Arduino/Teensy, nothing on the desktop. Define RV_FLASH yourself to override, except on
   AVR, where the core reads these arrays from program memory (pgm_read_*) and RV_FLASH must stay. */
#ifndef RV_FLASH
#if defined(__AVR__)
#include <avr/pgmspace.h>
#define RV_FLASH PROGMEM
#elif defined(PROGMEM)
#define RV_FLASH PROGMEM
#else
#define RV_FLASH
#endif
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Status                                                                                           */

typedef enum rv_status {
    RV_OK = 0,
    RV_ERR_ARGUMENT,          /* a null pointer or a value outside its documented range */
    RV_ERR_BUFFER_TOO_SMALL,  /* caller-supplied memory smaller than the size the core asked for */
    RV_ERR_TRUNCATED,         /* the file ends inside a structure it declares */
    RV_ERR_NOT_TFLITE,        /* no "TFL3" file identifier / not a TFLite flatbuffer */
    RV_ERR_OFFSET,            /* an offset or vector points outside the file */
    RV_ERR_ALIGNMENT,         /* weight data not aligned for its type (file buffer must be 4-aligned) */
    RV_ERR_SUBGRAPHS,         /* not exactly one subgraph */
    RV_ERR_OPERATOR,          /* an operator other than FULLY_CONNECTED, LOGISTIC, DEQUANTIZE */
    RV_ERR_ACTIVATION,        /* a fused activation other than NONE or RELU */
    RV_ERR_TENSOR_TYPE,       /* a tensor type the decoder graph cannot have (or mixed types) */
    RV_ERR_GRAPH,             /* ops do not chain input -> FULLY_CONNECTED... -> LOGISTIC -> output */
    RV_ERR_SHAPE,             /* a tensor shape that does not match its layer */
    RV_ERR_WEIGHTS,           /* a weight or bias tensor without constant data of its size */
    RV_ERR_QUANTIZATION,      /* int8 quantisation parameters missing or outside what TFLite accepts */
    RV_ERR_NO_METADATA,       /* no TFLITE_METADATA entry holding the "xen:" bytes */
    RV_ERR_METADATA,          /* "xen:" bytes malformed, of an unknown type, or not matching the graph */
    RV_ERR_LIMIT_TICKS,       /* more ticks than RV_MAX_TICKS */
    RV_ERR_LIMIT_ROWS,        /* more rows than RV_MAX_ROWS */
    RV_ERR_LIMIT_GROUPS,      /* more percussion groups than RV_MAX_GROUPS */
    RV_ERR_LIMIT_LAYERS,      /* more dense layers than RV_MAX_LAYERS */
    RV_ERR_LIMIT_WIDTH,       /* a layer wider than RV_MAX_WIDTH, or latent wider than RV_MAX_LATENT */
    RV_ERR_MODEL,             /* an rv_model descriptor that is inconsistent (C arrays edited by hand) */
    RV_ERR_DTYPE,             /* the call needs another model type (e.g. rv_decode_s8 on float) */
    RV_ERR_NOT_READY,         /* the engine has no model */
    RV_STATUS_COUNT
} rv_status;

/* A short English reason, e.g. "operator not supported". Never NULL. */
const char *rv_status_str(rv_status status);

/* ------------------------------------------------------------------------------------------------ */
/* Model descriptor: plain data, statically initialisable (the C-array exporter writes one).        */

typedef enum rv_dtype {
    RV_F32 = 0, /* float32 weights and biases */
    RV_F16 = 1, /* IEEE half weights (uint16_t bits), expanded on the fly; biases f16 or f32 */
    RV_S8 = 2   /* int8 weights, int32 biases, TFLite int8 requantisation */
} rv_dtype;

/* Weight matrix layout. TFLite stores FULLY_CONNECTED weights OUT_IN (row per output); the C-array
   exporter writes IN_OUT (row per input), which lets float kernels run several outputs per pass.
   Both layouts give identical results (each output is summed in input order either way).
   RV_LAYOUT_S8_ROWS4 is the stream of weights and requantisation constants rv_model_repack writes for
   the int8 kernel of Cortex-M7 with the DSP extension (rows in groups of 4, int16 weight pairs: what
   one dual multiply-accumulate, smlad, takes). Only rv_model_repack writes it; rv_model_check refuses
   it. */
typedef enum rv_layout { RV_LAYOUT_OUT_IN = 0, RV_LAYOUT_IN_OUT = 1, RV_LAYOUT_S8_ROWS4 = 2 } rv_layout;

typedef enum rv_activation { RV_ACT_NONE = 0, RV_ACT_RELU = 1 } rv_activation;

typedef enum rv_kind { RV_KIND_NOTE = 0, RV_KIND_PERC = 1 } rv_kind;

/* Output channel ids (metadata.channel_ids). */
typedef enum rv_channel { RV_CHANNEL_HITS = 0, RV_CHANNEL_VELOCITY = 1, RV_CHANNEL_OFFSET = 2 } rv_channel;

/* The xen metadata: "xen:" + "seqdec"|"perdec" + [rows, ticks, latent_scale, (n_groups, sizes...)]
   + optional extension "rv" [version, base_note, latent_dim]
   + version >= 2: [threshold, (percussion: group_thresholds[n_groups], row_notes[rows])], thresholds
   as bytes k meaning k / 255
   + version >= 3: [channels (1..RV_MAX_CHANNELS), channel_ids[channels]] (the first id RV_CHANNEL_HITS,
   no id twice; written only for models of more than one channel: hits-only files stay version 2).
   Later versions append fields; a reader takes the ones it knows.
   Absent fields get defaults: thresholds RV_DEFAULT_THRESHOLD, row_notes the note each row played
   before version 2 (percussion: the row; notes: base_note + row, at most 127). The fields of version 2
   count only when extension_version >= 2 (C arrays written before it leave them zero). channels is 1
   and channel_ids {RV_CHANNEL_HITS} when absent; channels 0 (C arrays written before version 3) means
   the same. */
typedef struct rv_metadata {
    uint8_t kind;         /* rv_kind */
    uint8_t rows;         /* notes / instruments per tick */
    uint8_t ticks;        /* sequence length */
    uint8_t latent_scale; /* latents span +-latent_scale */
    uint8_t n_groups;     /* percussion: number of groups (0 for note models) */
    uint8_t group_sizes[RV_MAX_GROUPS];
    uint8_t has_extension; /* 1 when the "rv" extension was present */
    uint8_t base_note;     /* MIDI note of row 0 (extension; 0 when absent) */
    uint8_t latent_dim;    /* extension; 0 when absent */
    uint8_t extension_version; /* the "rv" extension's version; 0 when absent */
    float threshold;           /* the model's own threshold (version 2) */
    float group_thresholds[RV_MAX_GROUPS]; /* percussion: each group's threshold (version 2) */
    uint8_t row_notes[RV_MAX_ROWS]; /* MIDI note of each row; RV_ACCENT_ROW: plays no note (version 2) */
    uint8_t channels;                     /* output blocks (version 3; 1 when absent, 0 means 1) */
    uint8_t channel_ids[RV_MAX_CHANNELS]; /* rv_channel of each block, [0] = RV_CHANNEL_HITS */
} rv_metadata;

/* row_notes entry of a percussion accent row: it plays no note, it raises its group's accent. */
#define RV_ACCENT_ROW 255

/* Affine quantisation of one tensor: real = scale * (q - zero_point). */
typedef struct rv_quant {
    float scale;
    int32_t zero_point;
} rv_quant;

typedef struct rv_layer {
    uint16_t in;        /* input features */
    uint16_t out;       /* output features */
    uint8_t dtype;      /* rv_dtype of weights (float models may mix RV_F32 and RV_F16 layers) */
    uint8_t bias_dtype; /* RV_F32 or RV_F16 for float layers; RV_S8 layers have int32 biases */
    uint8_t activation; /* rv_activation (the last layer is followed by the logistic) */
    uint8_t layout;     /* rv_layout of weights */
    const void *weights; /* float / uint16_t (half bits) / int8_t, in*out values */
    const void *bias;    /* out values: float / uint16_t / int32_t; may be NULL (zeros) */
    /* int8 models only: */
    rv_quant input_quant;      /* quantisation of this layer's input tensor */
    rv_quant output_quant;     /* quantisation of its output tensor */
    int32_t activation_min;    /* clamp of the requantised output (RELU raises it to the zero point) */
    int32_t activation_max;
    uint16_t n_multipliers;    /* 1 (per-tensor) or out (per-channel) */
    const int32_t *multipliers; /* TFLite QuantizeMultiplier() significands, n_multipliers values */
    const int32_t *shifts;      /* and exponents (positive = left shift) */
} rv_layer;

typedef struct rv_model {
    uint8_t dtype;    /* RV_S8 for an integer graph, else RV_F16 when any layer is float16, else RV_F32 */
    uint8_t n_layers;
    rv_layer layers[RV_MAX_LAYERS];
    rv_metadata metadata;
    /* int8 models: quantisation of the latent input and of the probability output, and the LOGISTIC
       as a table: output = logistic_table[(uint8_t)(input + 128)] (computed with TFLite's arithmetic). */
    rv_quant input_quant;
    rv_quant output_quant;
    const int8_t *logistic_table; /* 256 entries; NULL for float models */
    /* Set by rv_model_verify, rv_model_load_tflite and rv_model_repack once the descriptor passed
       rv_model_check, so decodes skip the check; 0 in the exporter's C arrays (checked on every
       decode until the app verifies a copy). Change no field of a verified model. */
    uint32_t verified;
} rv_model;

/* Sizes derived from a model. */
uint16_t rv_model_latent_dim(const rv_model *model);
uint16_t rv_model_output_size(const rv_model *model); /* channels * ticks * rows: rv_decode's per latent */

/* Checks a descriptor (e.g. the exporter's C arrays) for consistency and the limits. */
rv_status rv_model_check(const rv_model *model);

/* rv_model_check, and when it passes marks the model verified (decodes then skip the check). */
rv_status rv_model_verify(rv_model *model);

/* Loads a .tflite file held in memory (4-byte aligned; the model keeps pointers into it, so it must
   outlive the model). Accepted: one subgraph of FULLY_CONNECTED (fused NONE/RELU) layers ending in
   LOGISTIC, float32, float16 weights through DEQUANTIZE, or int8 with int8 input/output; and the xen
   metadata. int8 models need aux memory (4-byte aligned) for derived constants (requantisation
   multipliers, the logistic table): a call with aux = NULL, aux_len = 0 sets *aux_needed and returns
   RV_ERR_BUFFER_TOO_SMALL when it is not 0; call again with that much. Every read is bounds-checked:
   a malformed file returns an error, never reads outside [bytes, bytes + len). */
rv_status rv_model_load_tflite(rv_model *model, const void *bytes, size_t len, void *aux, size_t aux_len,
                               size_t *aux_needed);

/* Copies a float model's OUT_IN weights into the IN_OUT layout in caller memory (faster kernels on
   every target; results identical); on Cortex-M7 with the DSP extension also int8 weights, widened
   into RV_LAYOUT_S8_ROWS4 streams (twice their bytes plus 72 bytes per 4 output rows, and a 1 KB table
   of the probabilities) when every layer suits the kernel; otherwise int8 layers keep pointing where
   they did, as do biases. With too little memory (e.g. mem = NULL) it sets *needed and returns
   RV_ERR_BUFFER_TOO_SMALL. */
rv_status rv_model_repack(const rv_model *src, rv_model *dst, void *mem, size_t mem_len, size_t *needed);

/* Parses the xen metadata bytes as the original firmware located them: the first "xen:" in data.
   Bounds-checked, unlike the original (which copied 6 + 12 bytes blindly). */
rv_status rv_metadata_parse(const uint8_t *data, size_t len, rv_metadata *out);

/* ------------------------------------------------------------------------------------------------ */
/* Decoding                                                                                         */

/* Bytes of scratch memory rv_decode / rv_decode_s8 need for this model (any batch size). */
size_t rv_scratch_size(const rv_model *model);

/* Decodes n latents [n][latent_dim] into outputs [n][channels * ticks * rows] (the layout at the top:
   channel blocks, each tick-major, index = tick * rows + row). int8 models quantise the latents as
   TFLite's QUANTIZE does and dequantise the output. scratch must be at least rv_scratch_size(model)
   bytes and 4-byte aligned. */
rv_status rv_decode(const rv_model *model, const float *latents, size_t n, float *outputs, void *scratch,
                    size_t scratch_len);

/* int8 models: the integer graph alone, quantised latents in, quantised outputs out,
   bit-exact with TFLite-Micro's reference kernels (all channels, [n][channels * ticks * rows]). */
rv_status rv_decode_s8(const rv_model *model, const int8_t *latents, size_t n, int8_t *outputs,
                       void *scratch, size_t scratch_len);

/* TFLite's int8 LOGISTIC for one input quantisation, as a 256-entry table indexed by q + 128
   (output scale 1/256, zero point -128). Used by the loader; exposed for the C-array exporter. */
rv_status rv_logistic_s8_table(rv_quant input_quant, int8_t table[256]);

/* TFLite's QuantizeMultiplier(): real multiplier -> significand (Q31) and exponent. */
rv_status rv_quantize_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift);

/* ------------------------------------------------------------------------------------------------ */
/* From probabilities to music                                                                      */

typedef struct rv_post_config {
    float threshold;        /* a row sounds when its probability >= threshold (+ its group's offset) */
    uint8_t max_notes;      /* at most this many per tick, the most probable (1..RV_MAX_NOTES) */
    uint8_t zero_volt_note; /* MIDI note at 0 V on a 1 V/octave output */
    float group_offsets[RV_MAX_GROUPS]; /* a percussion row of group g sounds when
                                           p >= threshold + group_offsets[g] */
} rv_post_config;

/* threshold RV_DEFAULT_THRESHOLD, group offsets 0, max_notes RV_DEFAULT_MAX_NOTES, zero_volt_note 60. */
rv_post_config rv_post_config_default(void);

/* The defaults with the model's own thresholds (metadata version 2): threshold = the model's,
   group_offsets[g] = its group g threshold - threshold; without them, rv_post_config_default(). */
rv_post_config rv_post_config_for_model(const rv_metadata *meta);

typedef struct rv_note {
    float probability;
    float accent; /* percussion: position of the row in its group, 0..1 (0 for a group of one);
                     notes: 1 */
    float volts;  /* notes: (midi_note - zero_volt_note) / 12; percussion: 0 */
    uint8_t row;
    uint8_t midi_note; /* row_notes[row]: notes: base_note + row, at most 127; percussion: the General
                          MIDI note (metadata version 2; RV_ACCENT_ROW for an accent row), else the row */
    int8_t group;      /* percussion: group index; notes: -1 */
    uint8_t velocity;  /* 1..127: round(127 * s) of the velocity channel, at least 1; RV_DEFAULT_VELOCITY
                          for models without one */
    float offset;      /* steps, -0.5..0.5 (positive: late): s - 0.5 of the offset channel; 0 without one */
} rv_note;

typedef struct rv_step {
    uint8_t count; /* notes[0..count), ascending row (pitch) order */
    rv_note notes[RV_MAX_NOTES];
} rv_step;

typedef struct rv_sequence {
    uint8_t ticks;
    rv_step steps[RV_MAX_TICKS];
} rv_sequence;

/* Percussion rows map to groups by cumulative group sizes, as the original firmware did; rows past
   the last group (files whose rows were trimmed, or sizes summing to fewer rows) belong to none:
   returns RV_ERR_ARGUMENT for those and for note models. */
rv_status rv_row_group(const rv_metadata *meta, uint8_t row, int8_t *group, float *accent);

/* One tick: rows with probability >= threshold (percussion: + their group's offset); when more than
   max_notes, the most probable are kept (ties: the lower row); returned in ascending row order.
   Percussion rows outside every group are skipped. Threshold and selection read the hits only.
   probabilities points at the tick's hits INSIDE the sequence's whole output vector (outputs +
   tick * rows); channel block k of the tick is read at probabilities[k * ticks * rows + row], so a
   hits-only model (one channel) reads only the tick's `rows` values. */
rv_status rv_postprocess_step(const rv_metadata *meta, const float *probabilities, const rv_post_config *config,
                              rv_step *step);

/* All ticks of one decoded sequence: outputs [channels * ticks * rows], what rv_decode writes per latent. */
rv_status rv_postprocess(const rv_metadata *meta, const float *outputs, const rv_post_config *config,
                         rv_sequence *sequence);

/* Percussion outputs of a step: bit g of *trigger_mask set when group g sounds; accents[g] is the
   accent of its most probable row (ties: the lower row); velocities[g] and offsets[g] are those of its
   loudest note (the highest velocity; ties: the most probable, then the lower row). Silent groups get
   0 in all three. Each array has RV_MAX_GROUPS entries; velocities and offsets may be NULL. */
void rv_step_groups(const rv_step *step, uint32_t *trigger_mask, float accents[RV_MAX_GROUPS],
                    uint8_t velocities[RV_MAX_GROUPS], float offsets[RV_MAX_GROUPS]);

/* Knob and CV (volts, -5..5 each) -> one latent coordinate: (knob + cv) / 5 * latent_scale, clamped
   to +-latent_scale (the original summed two +-5 ranges unclamped and ignored the metadata's scale). */
float rv_latent_from_controls(float knob_volts, float cv_volts, float latent_scale);

/* Threshold knob (-5..5 V -> 0..0.3) plus CV (-5..5 V -> -0.3..0.3), clamped to 0..1. */
float rv_threshold_from_controls(float knob_volts, float cv_volts);

/* ------------------------------------------------------------------------------------------------ */
/* Sequencer engine                                                                                 */
/*
 * Two sequence buffers: the clock plays the front one while inference fills the back one.
 * Clock edges (rv_engine_clock, may run in an interrupt) never wait for inference: they advance the
 * tick, swap in a finished back buffer at the right moment, and ask for the next inference.
 * The main loop polls rv_engine_inference_pending(), samples the knobs, and calls
 * rv_engine_run_inference(), which decodes into the back buffer and publishes it.
 *
 * Automatic mode: at step 0 a finished sequence is swapped in and the next one requested, so the
 * sequence for cycle k+1 is computed during cycle k and step 0 is never delayed. If it is not ready
 * in time, the current sequence plays once more.
 * Manual mode: an inference happens only on request (button or gate: rv_engine_request_inference);
 * its result is swapped in at the next clock edge.
 * Reset returns to before step 0 (the next clock plays step 0) and ends a pause; pause-until-reset
 * ignores clock edges until then. Before the first sequence is ready, clock edges play nothing.
 * Single core: the interrupt and the main loop share the flags below; publication is ordered by
 * volatile accesses and a compiler barrier.
 */

typedef struct rv_engine {
    const rv_model *model;
    uint8_t *scratch;       /* decode scratch, then the outputs: rv_engine_scratch_size() bytes */
    size_t scratch_len;
    rv_post_config config;
    rv_sequence sequences[2];
    volatile uint8_t front;        /* index of the sequence being played */
    volatile uint8_t front_valid;  /* a sequence has been published at least once */
    volatile uint8_t back_ready;   /* the back buffer holds a finished sequence not yet played */
    volatile uint8_t pending;      /* an inference is wanted */
    volatile uint8_t manual;       /* manual-inference mode */
    volatile uint8_t paused;       /* pause until reset */
    volatile int16_t tick;         /* current step, -1 before step 0 */
    float latent[RV_MAX_LATENT];   /* the latent of the last inference (for display/logging) */
} rv_engine;

/* Bytes of scratch the engine needs: rv_scratch_size() plus one output vector (all channels). */
size_t rv_engine_scratch_size(const rv_model *model);

/* Starts with no sequence, tick -1, automatic mode, an inference pending. config NULL:
   rv_post_config_default() (pass rv_post_config_for_model(&model->metadata) for the model's
   thresholds). rv_engine_run_inference's threshold replaces the config's; its group offsets stay. */
rv_status rv_engine_init(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len,
                         const rv_post_config *config);

/* Switches an initialised engine to another model (e.g. one the user selected) in new scratch,
   keeping the clock position (taken modulo the new ticks), manual mode, pause and post-processing
   config; the old model's sequences are dropped and an inference is requested. Not while the clock
   interrupt may run: the caller holds it off (or ignores its edges) during the switch. On an error
   the engine keeps its old model. Only for an engine rv_engine_init has set up. */
rv_status rv_engine_set_model(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len);

/* Clock edge. Returns the step to play now, or NULL (paused, no model or no sequence yet).
   *tick receives the step index (-1 when nothing plays); tick may be NULL. */
const rv_step *rv_engine_clock(rv_engine *engine, int *tick);

void rv_engine_reset(rv_engine *engine);
void rv_engine_pause_until_reset(rv_engine *engine);
void rv_engine_set_manual(rv_engine *engine, int manual);
void rv_engine_request_inference(rv_engine *engine);
int rv_engine_inference_pending(const rv_engine *engine);

/* Main loop: decodes latent [latent_dim] with this threshold into the back buffer and publishes it.
   Clears the pending flag. Call it when rv_engine_inference_pending() says so (or any time). */
rv_status rv_engine_run_inference(rv_engine *engine, const float *latent, float threshold);

/* The sequence playing now (NULL before the first one), e.g. for the display. */
const rv_sequence *rv_engine_sequence(const rv_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
