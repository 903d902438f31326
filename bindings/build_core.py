"""cffi builder: compiles the C decoder core (core/src) into the extension ``rackvae._core``.

The declarations below are the part of ``core/include/rackvae.h`` Python uses. Structs end in ``...;``
so the C compiler lays them out from the real header (a field spelled differently fails the build).

Flags: ``-ffp-contract=off`` keeps every float operation the one written (the same bits as the
Cortex-M7 build). No ``-march``: the extension runs on any x86-64, and the core picks its x86 kernels
(AVX2, AVX-512, VNNI, VBMI) at run time from the CPU (core/src/rv_dense_x86.c); ``rackvae.isa`` caps
them from ``RACKVAE_ISA``. ``make_builder(native=True)`` is the same build with ``-march=native``,
which bench/bench_decode.py compares it with.
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CORE_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core" / "src").glob("*.c"))

CDEF = """
#define RV_MAX_TICKS ...
#define RV_MAX_ROWS ...
#define RV_MAX_GROUPS ...
#define RV_MAX_NOTES ...
#define RV_MAX_LAYERS ...
#define RV_MAX_LATENT ...
#define RV_DECODE_BLOCK ...
#define RV_ACCENT_ROW ...
#define RV_MAX_CHANNELS ...
#define RV_DEFAULT_VELOCITY ...

typedef int... rv_status;
static const int RV_OK;
static const int RV_ERR_BUFFER_TOO_SMALL;
static const int RV_ERR_TRUNCATED;
static const int RV_ERR_METADATA;
static const int RV_ERR_LIMIT_TICKS;
static const int RV_ERR_LIMIT_ROWS;
static const int RV_ERR_LIMIT_GROUPS;
static const int RV_ERR_LIMIT_LAYERS;
static const int RV_F32;
static const int RV_F16;
static const int RV_S8;
static const int RV_LAYOUT_OUT_IN;
static const int RV_LAYOUT_IN_OUT;
static const int RV_KIND_NOTE;
static const int RV_KIND_PERC;
static const int RV_CHANNEL_HITS;
static const int RV_CHANNEL_VELOCITY;
static const int RV_CHANNEL_OFFSET;
static const float RV_DEFAULT_THRESHOLD;

typedef struct rv_metadata {
    uint8_t kind;
    uint8_t rows;
    uint8_t ticks;
    uint8_t latent_scale;
    uint8_t n_groups;
    uint8_t group_sizes[];
    uint8_t has_extension;
    uint8_t base_note;
    uint8_t latent_dim;
    uint8_t extension_version;
    float threshold;
    float group_thresholds[];
    uint8_t row_notes[];
    uint8_t channels;
    uint8_t channel_ids[];
    ...;
} rv_metadata;

typedef struct rv_quant { float scale; int32_t zero_point; ...; } rv_quant;

typedef struct rv_layer {
    uint16_t in;
    uint16_t out;
    uint8_t dtype;
    uint8_t bias_dtype;
    uint8_t activation;
    uint8_t layout;
    const void *weights;
    const void *bias;
    rv_quant input_quant;
    rv_quant output_quant;
    int32_t activation_min;
    int32_t activation_max;
    uint16_t n_multipliers;
    const int32_t *multipliers;
    const int32_t *shifts;
    ...;
} rv_layer;

typedef struct rv_model {
    uint8_t dtype;
    uint8_t n_layers;
    rv_layer layers[];
    rv_metadata metadata;
    rv_quant input_quant;
    rv_quant output_quant;
    const int8_t *logistic_table;
    ...;
} rv_model;

typedef struct rv_post_config {
    float threshold;
    uint8_t max_notes;
    uint8_t zero_volt_note;
    float group_offsets[...];
    ...;
} rv_post_config;
typedef struct rv_note {
    float probability;
    float accent;
    float volts;
    uint8_t row;
    uint8_t midi_note;
    int8_t group;
    uint8_t velocity;
    float offset;
    ...;
} rv_note;
typedef struct rv_step { uint8_t count; rv_note notes[]; ...; } rv_step;
typedef struct rv_sequence { uint8_t ticks; rv_step steps[]; ...; } rv_sequence;
typedef struct rv_engine { int16_t tick; uint8_t manual; uint8_t paused; ...; } rv_engine;

int rv_version(void);
const char *rv_status_str(rv_status status);

uint16_t rv_model_latent_dim(const rv_model *model);
uint16_t rv_model_output_size(const rv_model *model);
rv_status rv_model_check(const rv_model *model);
rv_status rv_model_load_tflite(rv_model *model, const void *bytes, size_t len, void *aux, size_t aux_len,
                               size_t *aux_needed);
rv_status rv_model_repack(const rv_model *src, rv_model *dst, void *mem, size_t mem_len, size_t *needed);
rv_status rv_metadata_parse(const uint8_t *data, size_t len, rv_metadata *out);

size_t rv_scratch_size(const rv_model *model);
rv_status rv_decode(const rv_model *model, const float *latents, size_t n, float *outputs,
                    void *scratch, size_t scratch_len);
rv_status rv_decode_s8(const rv_model *model, const int8_t *latents, size_t n, int8_t *outputs,
                       void *scratch, size_t scratch_len);
rv_status rv_logistic_s8_table(rv_quant input_quant, int8_t table[256]);
rv_status rv_quantize_multiplier(double real_multiplier, int32_t *multiplier, int32_t *shift);

rv_post_config rv_post_config_default(void);
rv_post_config rv_post_config_for_model(const rv_metadata *meta);
rv_status rv_row_group(const rv_metadata *meta, uint8_t row, int8_t *group, float *accent);
rv_status rv_postprocess_step(const rv_metadata *meta, const float *probabilities,
                              const rv_post_config *config, rv_step *step);
rv_status rv_postprocess(const rv_metadata *meta, const float *outputs, const rv_post_config *config,
                         rv_sequence *sequence);
void rv_step_groups(const rv_step *step, uint32_t *trigger_mask, float accents[], uint8_t velocities[],
                    float offsets[]);
float rv_latent_from_controls(float knob_volts, float cv_volts, float latent_scale);
float rv_threshold_from_controls(float knob_volts, float cv_volts);

size_t rv_engine_scratch_size(const rv_model *model);
rv_status rv_engine_init(rv_engine *engine, const rv_model *model, void *scratch, size_t scratch_len,
                         const rv_post_config *config);
const rv_step *rv_engine_clock(rv_engine *engine, int *tick);
void rv_engine_reset(rv_engine *engine);
void rv_engine_pause_until_reset(rv_engine *engine);
void rv_engine_set_manual(rv_engine *engine, int manual);
void rv_engine_request_inference(rv_engine *engine);
int rv_engine_inference_pending(const rv_engine *engine);
rv_status rv_engine_run_inference(rv_engine *engine, const float *latent, float threshold);
const rv_sequence *rv_engine_sequence(const rv_engine *engine);
"""

# Bindings only, not core API: Decoder.invoke's one decode of one latent with its arguments gathered
# once in a struct, since a call from Python pays for each argument it converts (six cost ~0.13 us,
# a demo-size decode ~0.5 us). Declared for cffi and defined for the compiler from the same text.
INVOCATION = """
typedef struct rv_py_invocation {
    const rv_model *model;
    const float *latent;
    float *probabilities;
    void *scratch;
    size_t scratch_len;
} rv_py_invocation;
"""
CDEF += INVOCATION + "rv_status rv_py_invoke(const rv_py_invocation *invocation);\n"
INVOKE_SOURCE = (
    INVOCATION
    + """
static rv_status rv_py_invoke(const rv_py_invocation *invocation) {
    return rv_decode(invocation->model, invocation->latent, 1, invocation->probabilities, invocation->scratch,
                     invocation->scratch_len);
}
"""
)


# Bindings only: the x86 instruction-set level of the core's kernels (rv_internal.h; one level
# elsewhere), for rackvae.isa.
CDEF += """
static const int RV_ISA_GENERIC;
static const int RV_ISA_AVX2;
static const int RV_ISA_AVX512;
static const int RV_ISA_VNNI;
static const int RV_ISA_VBMI;
int rv_cpu_isa(void);
int rv_cpu_cap(int level);
"""


def make_builder(native: bool = False) -> FFI:
    """The extension's builder. ``native``: the same build with ``-march=native``, for comparison (not
    a wheel's), with absolute paths so that it compiles in any directory; the wheel's paths are
    relative to the checkout, as setuptools wants them."""
    base = ROOT if native else Path()
    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source(
        "rackvae._core",
        '#include "rackvae.h"\n#include "rv_internal.h"\n' + INVOKE_SOURCE,
        sources=[str(base / source) for source in CORE_SOURCES],
        include_dirs=[str(base / "core" / "include"), str(base / "core" / "src")],
        extra_compile_args=["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno"]
        + (["-march=native"] if native else []),
        # No symbol table or debug sections in the module (Python's CFLAGS bring -g): 2.46 MB -> 0.23 MB.
        extra_link_args=["-s"],
        libraries=["m"],
    )
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
