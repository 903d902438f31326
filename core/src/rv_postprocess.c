/* From a decoder's outputs to notes: threshold the hits, keep the most probable max_notes per tick in
 * pitch order, map percussion rows to groups and accents, note rows to MIDI notes and 1 V/octave volts,
 * give each note its velocity and offset (groove models' other channels); and the mapping of the
 * panel's knobs and CVs to a latent and a threshold. */
#include <string.h>

#include "rv_internal.h"

rv_post_config rv_post_config_default(void) { return rv_post_config_for_model(NULL); }

rv_post_config rv_post_config_for_model(const rv_metadata *meta) {
    rv_post_config config;
    unsigned g;
    memset(&config, 0, sizeof(config)); /* group offsets 0 */
    config.threshold = RV_DEFAULT_THRESHOLD;
    config.max_notes = RV_DEFAULT_MAX_NOTES;
    config.zero_volt_note = RV_DEFAULT_ZERO_VOLT_NOTE;
    if (meta != NULL && meta->extension_version >= 2) {
        config.threshold = meta->threshold;
        for (g = 0; g < meta->n_groups && g < RV_MAX_GROUPS; g++) {
            config.group_offsets[g] = meta->group_thresholds[g] - meta->threshold;
        }
    }
    return config;
}

rv_status rv_row_group(const rv_metadata *meta, uint8_t row, int8_t *group, float *accent) {
    unsigned g, start = 0;
    if (meta == NULL || group == NULL || accent == NULL || meta->kind != RV_KIND_PERC) {
        return RV_ERR_ARGUMENT;
    }
    for (g = 0; g < meta->n_groups && g < RV_MAX_GROUPS; g++) {
        const unsigned size = meta->group_sizes[g];
        if (row >= start && row < start + size) {
            *group = (int8_t)g;
            /* position in the group as a fraction (the original's integer division gave 0 or 1, and
               divided by zero for groups of one) */
            *accent = size > 1 ? (float)(row - start) / (float)(size - 1) : 0.0f;
            return RV_OK;
        }
        start += size;
    }
    return RV_ERR_ARGUMENT;
}

static int valid_config(const rv_post_config *config) {
    return config != NULL && config->max_notes >= 1 && config->max_notes <= RV_MAX_NOTES &&
           config->zero_volt_note <= 127;
}

/* All but a percussion note's group and accent, which the caller walks to (rv_row_group's values). */
static void fill_note(const rv_metadata *meta, const rv_post_config *config, uint8_t row, float probability,
                      rv_note *note) {
    note->probability = probability;
    note->row = row;
    if (meta->kind == RV_KIND_PERC) {
        note->midi_note = meta->extension_version >= 2 ? meta->row_notes[row] : row;
        note->volts = 0.0f;
    } else {
        note->group = -1;
        note->accent = 1.0f;
        note->midi_note = (uint8_t)RV_MIN(meta->base_note + row, 127); /* rows above MIDI's range stay at its top */
        note->volts = (float)((int)note->midi_note - (int)config->zero_volt_note) / 12.0f;
    }
}

/* A note's velocity and offset: from the channels after the hits (block k at value[k * ticks * rows],
   value pointing at the note's hit), velocity round(127 s) in 1..127 (NaN: 1; truncating 127 s + 0.5,
   exact for s >= 0.5 / 127, rounds half up, and below that the floor 1 holds), offset s - 0.5; the
   defaults without them. rv_metadata_check lets only velocity or offset follow the hits. */
static void fill_groove(const rv_metadata *meta, const float *value, rv_note *note) {
    const size_t block = (size_t)meta->ticks * meta->rows;
    unsigned k;
    note->velocity = RV_DEFAULT_VELOCITY;
    note->offset = 0.0f;
    for (k = 1; k < meta->channels; k++) {
        const float s = value[k * block];
        if (meta->channel_ids[k] == RV_CHANNEL_VELOCITY) {
            note->velocity = (uint8_t)fminf(fmaxf(127.0f * s + 0.5f, 1.0f), 127.0f);
        } else {
            note->offset = s - 0.5f;
        }
    }
}

/* Rows that can drive an output: all of a note model's; a percussion model's up to the end of its last
   group (the groups are consecutive from row 0, rv_row_group). */
static unsigned playable_rows(const rv_metadata *meta) {
    unsigned g, grouped = 0;
    if (meta->kind != RV_KIND_PERC) {
        return meta->rows;
    }
    for (g = 0; g < meta->n_groups && g < RV_MAX_GROUPS; g++) {
        grouped += meta->group_sizes[g];
    }
    return RV_MIN(grouped, meta->rows);
}

/* Index of the weakest of n kept rows: the least probable, of equals the highest row (the last). */
static unsigned weakest_kept(const float *kept_p, unsigned n) {
    unsigned weakest = 0, i;
    for (i = 1; i < n; i++) {
        if (kept_p[i] <= kept_p[weakest]) {
            weakest = i;
        }
    }
    return weakest;
}

rv_status rv_postprocess_step(const rv_metadata *meta, const float *probabilities, const rv_post_config *config,
                              rv_step *step) {
    /* The max_notes most probable rows so far (ties: the lower row), in row order: rows arrive in
       order and are appended; once the list is full a row gets in only by evicting the weakest. */
    uint8_t kept_row[RV_MAX_NOTES];
    float kept_p[RV_MAX_NOTES];
    unsigned count = 0, weakest = 0, rows, r, i, group = (unsigned)-1, group_end, start;
    float limit;
    if (meta == NULL || probabilities == NULL || step == NULL || !valid_config(config)) {
        return RV_ERR_ARGUMENT;
    }
    rows = playable_rows(meta);
    /* percussion rows of group g sound at threshold + group_offsets[g] (playable rows are in groups);
       note rows at threshold */
    group_end = meta->kind == RV_KIND_PERC ? 0 : rows;
    limit = config->threshold;
    for (r = 0; r < rows; r++) {
        const float p = probabilities[r];
        while (r >= group_end) {
            group++; /* from (unsigned)-1 to 0 first */
            group_end += meta->group_sizes[group];
            limit = config->threshold + config->group_offsets[group];
        }
        if (!(p >= limit)) {
            continue;
        }
        if (count == config->max_notes) {
            if (!(p > kept_p[weakest])) {
                continue;
            }
            for (i = weakest + 1; i < count; i++) {
                kept_p[i - 1] = kept_p[i];
                kept_row[i - 1] = kept_row[i];
            }
            count--;
        }
        kept_p[count] = p;
        kept_row[count] = (uint8_t)r;
        count++;
        if (count == config->max_notes) {
            weakest = weakest_kept(kept_p, count);
        }
    }
    step->count = (uint8_t)count;
    group = start = 0;
    for (i = 0; i < count; i++) {
        rv_note *note = &step->notes[i];
        const unsigned row = kept_row[i];
        fill_note(meta, config, (uint8_t)row, kept_p[i], note);
        if (meta->kind == RV_KIND_PERC) {
            /* the kept rows ascend and are all in groups: walk the groups along (as rv_row_group) */
            unsigned size;
            while (row >= start + meta->group_sizes[group]) {
                start += meta->group_sizes[group++];
            }
            size = meta->group_sizes[group];
            note->group = (int8_t)group;
            note->accent = size > 1 ? (float)(row - start) / (float)(size - 1) : 0.0f;
        }
        fill_groove(meta, probabilities + row, note);
    }
    return RV_OK;
}

rv_status rv_postprocess(const rv_metadata *meta, const float *outputs, const rv_post_config *config,
                         rv_sequence *sequence) {
    unsigned t;
    if (meta == NULL || outputs == NULL || sequence == NULL || meta->ticks > RV_MAX_TICKS) {
        return RV_ERR_ARGUMENT;
    }
    sequence->ticks = meta->ticks;
    for (t = 0; t < meta->ticks; t++) {
        const rv_status status =
            rv_postprocess_step(meta, outputs + (size_t)t * meta->rows, config, &sequence->steps[t]);
        if (status != RV_OK) {
            return status;
        }
    }
    return RV_OK;
}

void rv_step_groups(const rv_step *step, uint32_t *trigger_mask, float accents[RV_MAX_GROUPS],
                    uint8_t velocities[RV_MAX_GROUPS], float offsets[RV_MAX_GROUPS]) {
    /* per sounding group (its bit in mask set): the probability of the note behind its accent and of
       the loudest note; read only once the group's first note has set them */
    float probable[RV_MAX_GROUPS], loudest[RV_MAX_GROUPS];
    uint8_t no_velocities[RV_MAX_GROUPS];
    float no_offsets[RV_MAX_GROUPS];
    uint32_t mask = 0;
    unsigned g, i;
    velocities = velocities != NULL ? velocities : no_velocities;
    offsets = offsets != NULL ? offsets : no_offsets;
    for (g = 0; g < RV_MAX_GROUPS; g++) {
        accents[g] = 0.0f;
        velocities[g] = 0;
        offsets[g] = 0.0f;
    }
    for (i = 0; i < step->count && i < RV_MAX_NOTES; i++) {
        const rv_note *note = &step->notes[i];
        const float p = note->probability;
        unsigned first;
        g = (unsigned)note->group; /* -1 (no group) wraps above the groups */
        if (g >= RV_MAX_GROUPS) {
            continue;
        }
        first = !(mask >> g & 1u);
        mask |= (uint32_t)1 << g;
        if (first || p > probable[g]) { /* ties keep the lower row, which comes first */
            probable[g] = p;
            accents[g] = note->accent;
        }
        if (first || note->velocity > velocities[g] || (note->velocity == velocities[g] && p > loudest[g])) {
            loudest[g] = p;
            velocities[g] = note->velocity;
            offsets[g] = note->offset;
        }
    }
    *trigger_mask = mask;
}

static float clamp(float v, float lo, float hi) {
    v = v > lo ? v : lo; /* NaN -> lo */
    return v < hi ? v : hi;
}

float rv_latent_from_controls(float knob_volts, float cv_volts, float latent_scale) {
    return clamp((knob_volts + cv_volts) / RV_CONTROL_FULL_SCALE_VOLTS * latent_scale, -latent_scale, latent_scale);
}

float rv_threshold_from_controls(float knob_volts, float cv_volts) {
    const float volts = RV_CONTROL_FULL_SCALE_VOLTS;
    const float knob = clamp((knob_volts + volts) / (2.0f * volts), 0.0f, 1.0f) * RV_THRESHOLD_KNOB_RANGE;
    const float cv = clamp(cv_volts / volts, -1.0f, 1.0f) * RV_THRESHOLD_KNOB_RANGE;
    return clamp(knob + cv, 0.0f, 1.0f);
}
