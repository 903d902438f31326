/* rackvae decoder core: every size limit in one place.
 *
 * A model beyond a limit is refused when it is loaded, with a status that names the limit. Each limit
 * may be overridden with -D on the compiler command line (e.g. a small board: -DRV_MAX_TICKS=32); the
 * engine's memory (sizeof(rv_engine)) scales with RV_MAX_TICKS * RV_MAX_NOTES.
 *
 * The original xen_quantizer firmware had 32 ticks, 6 percussion groups and 4 notes out per tick.
 */
#ifndef RV_LIMITS_H
#define RV_LIMITS_H

/* Steps in one sequence (metadata "sequence length"): 48 holds a bar of triplet 16ths. */
#ifndef RV_MAX_TICKS
#define RV_MAX_TICKS 64
#endif

/* Rows (pitches or percussion slots) per tick: the whole MIDI range. */
#ifndef RV_MAX_ROWS
#define RV_MAX_ROWS 128
#endif

/* Percussion groups (trigger outputs) in the metadata. */
#ifndef RV_MAX_GROUPS
#define RV_MAX_GROUPS 8
#endif

/* Notes kept per tick after post-processing (the config's max_notes is at most this). */
#ifndef RV_MAX_NOTES
#define RV_MAX_NOTES 8
#endif

/* Output channels of a decoder (groove models: hits, velocity, offset; rackvae.h's RV_CHANNEL_*). Not
   overridable: it is the format's count of channel kinds, not a memory limit. */
#define RV_MAX_CHANNELS 3

/* Dense layers in the decoder. */
#ifndef RV_MAX_LAYERS
#define RV_MAX_LAYERS 8
#endif

/* Latent dimensions (the module has 3 knobs; a wider latent can still be decoded from code). */
#ifndef RV_MAX_LATENT
#define RV_MAX_LATENT 16
#endif

/* Features in any layer, input or output (RV_MAX_TICKS * RV_MAX_ROWS; a groove model's output layer
   holds channels * ticks * rows of them). */
#ifndef RV_MAX_WIDTH
#define RV_MAX_WIDTH 8192
#endif

/* Latent vectors decoded together in one pass of the desktop (x86-64) kernels, which load each weight
   once per block; the portable kernels decode one latent at a time, so elsewhere it is 1. On x86-64
   it is 8 whichever kernels the CPU runs (they are chosen at run time), so a scratch size computed
   once holds on every machine. rv_scratch_size() grows with it; results never depend on it. */
#ifndef RV_DECODE_BLOCK
#if defined(__x86_64__)
#define RV_DECODE_BLOCK 8
#else
#define RV_DECODE_BLOCK 1
#endif
#endif

/* Defaults of the post-processing (the original: max 4 notes, threshold knob 0..0.3 + CV +-0.3).
   The threshold of models whose metadata holds none (original xen files, rackvae's before extension
   version 2): 0.3, the top of the original module's threshold knob, so original files play within the
   range their module gave them; of that range it is the closest to where such models match their
   data's density (the uncalibrated demo model plays 1.77x the data's notes at 0.1, 1.24x at 0.3,
   1.0x near 0.35). Models with their own threshold (version 2) play at it instead. */
#define RV_DEFAULT_MAX_NOTES 4
#define RV_DEFAULT_THRESHOLD 0.3f
#define RV_THRESHOLD_KNOB_RANGE 0.3f
/* Velocity of every note of a model without a velocity channel (MIDI's "mezzo-forte"-ish default). */
#define RV_DEFAULT_VELOCITY 100
/* MIDI note that sits at 0 V on a 1 V/octave pitch output. */
#define RV_DEFAULT_ZERO_VOLT_NOTE 60
/* Knob and CV inputs span -5..5 V; full scale maps onto +-latent_scale. */
#define RV_CONTROL_FULL_SCALE_VOLTS 5.0f

#endif
