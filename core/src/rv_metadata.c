/* The xen metadata bytes, found as the original firmware found them: the first "xen:" in the buffer of
 * the TFLITE_METADATA entry. Unlike the original (which copied 6 + 12 bytes blindly) every byte read
 * is inside [data, data + len).
 *
 *   "xen:" "seqdec" rows ticks latent_scale                          [ext]
 *   "xen:" "perdec" rows ticks latent_scale n_groups size_0..size_n-1 [ext]
 *   ext = "rv" version(>=1) base_note latent_dim   (rackvae's extension; absent in original files)
 *         version >= 2: threshold, percussion: group_thresholds[n_groups] row_notes[rows]
 *         version >= 3: channels (1..RV_MAX_CHANNELS) channel_ids[channels] (hits first, no repeats)
 * Thresholds are bytes k meaning k / 255; a later version's fields follow these and are not read.
 */
#include <string.h>

#include "rv_internal.h"

#define RV_MAGIC_LEN 4
#define RV_TYPE_LEN 6
#define RV_EXT_LEN 5

/* Rows, ticks and base note: the checks parsing and rv_metadata_check share, in parsing's order. */
static rv_status check_sizes(const rv_metadata *meta) {
    if (meta->rows == 0 || meta->ticks == 0) {
        return RV_ERR_METADATA;
    }
    if (meta->ticks > RV_MAX_TICKS) {
        return RV_ERR_LIMIT_TICKS;
    }
    if (meta->rows > RV_MAX_ROWS) {
        return RV_ERR_LIMIT_ROWS;
    }
    if (meta->base_note > 127) {
        return RV_ERR_METADATA;
    }
    return RV_OK;
}

/* Channel ids: at most RV_MAX_CHANNELS, the first the hits, each a known channel once (channels 0,
   a descriptor from before version 3, means the hits alone). */
static rv_status check_channels(const rv_metadata *meta) {
    unsigned k, seen = 0;
    if (meta->channels > RV_MAX_CHANNELS || meta->channel_ids[0] != RV_CHANNEL_HITS) {
        return RV_ERR_METADATA;
    }
    for (k = 0; k < meta->channels; k++) {
        const unsigned id = meta->channel_ids[k];
        if (id >= RV_MAX_CHANNELS || (seen >> id & 1u)) {
            return RV_ERR_METADATA;
        }
        seen |= 1u << id;
    }
    return RV_OK;
}

rv_status rv_metadata_parse(const uint8_t *data, size_t len, rv_metadata *out) {
    size_t i;
    if (data == NULL || out == NULL) {
        return RV_ERR_ARGUMENT;
    }
    for (i = 0; i + RV_MAGIC_LEN <= len; i++) {
        if (memcmp(data + i, "xen:", RV_MAGIC_LEN) == 0) {
            return rv_metadata_parse_at(data + i, len - i, out);
        }
    }
    memset(out, 0, sizeof(*out));
    return RV_ERR_NO_METADATA;
}

rv_status rv_metadata_parse_at(const uint8_t *data, size_t len, rv_metadata *out) {
    const uint8_t *p = data + RV_MAGIC_LEN;
    size_t left = len - RV_MAGIC_LEN;
    size_t n_fields, v2_len;
    unsigned g, r;
    int v2;
    const uint8_t *notes;
    rv_status status;
    memset(out, 0, sizeof(*out));
    if (left < RV_TYPE_LEN + 3) {
        return RV_ERR_METADATA;
    }
    if (memcmp(p, "seqdec", RV_TYPE_LEN) == 0) {
        out->kind = RV_KIND_NOTE;
    } else if (memcmp(p, "perdec", RV_TYPE_LEN) == 0) {
        out->kind = RV_KIND_PERC;
    } else {
        return RV_ERR_METADATA;
    }
    p += RV_TYPE_LEN;
    left -= RV_TYPE_LEN;
    out->rows = p[0];
    out->ticks = p[1];
    out->latent_scale = p[2];
    n_fields = 3;
    if (out->kind == RV_KIND_PERC) {
        if (left < 4) {
            return RV_ERR_METADATA;
        }
        out->n_groups = p[3];
        if (out->n_groups == 0) {
            return RV_ERR_METADATA;
        }
        if (out->n_groups > RV_MAX_GROUPS) {
            return RV_ERR_LIMIT_GROUPS;
        }
        if (left < 4 + (size_t)out->n_groups) {
            return RV_ERR_METADATA;
        }
        for (g = 0; g < out->n_groups; g++) {
            out->group_sizes[g] = p[4 + g];
        }
        n_fields = 4 + (size_t)out->n_groups;
    }
    p += n_fields;
    left -= n_fields;
    if (left >= 2 && p[0] == 'r' && p[1] == 'v') {
        if (left < RV_EXT_LEN || p[2] == 0) {
            return RV_ERR_METADATA;
        }
        out->has_extension = 1;
        out->extension_version = p[2];
        out->base_note = p[3];
        out->latent_dim = p[4];
        p += RV_EXT_LEN;
        left -= RV_EXT_LEN;
    }
    status = check_sizes(out);
    if (status != RV_OK) {
        return status;
    }
    /* version 2 (or defaults): thresholds, and the note each row plays (percussion files without
       version 2 have base_note 0, so their rows play their index) */
    v2 = out->extension_version >= 2;
    notes = v2 && out->kind == RV_KIND_PERC ? p + 1 + out->n_groups : NULL;
    v2_len = notes != NULL ? 1u + out->n_groups + out->rows : 1u;
    if (v2 && left < v2_len) {
        return RV_ERR_METADATA;
    }
    out->threshold = v2 ? (float)p[0] / 255.0f : RV_DEFAULT_THRESHOLD;
    for (g = 0; g < out->n_groups; g++) {
        out->group_thresholds[g] = v2 ? (float)p[1 + g] / 255.0f : out->threshold;
    }
    for (r = 0; r < out->rows; r++) {
        out->row_notes[r] = notes != NULL ? notes[r] : (uint8_t)RV_MIN(out->base_note + r, 127u);
    }
    /* version 3 (or the hits alone, ids {RV_CHANNEL_HITS} from the memset): the output channels */
    out->channels = 1;
    if (out->extension_version >= 3) {
        p += v2_len;
        left -= v2_len;
        if (left == 0 || p[0] == 0 || p[0] > RV_MAX_CHANNELS || left <= p[0]) {
            return RV_ERR_METADATA;
        }
        out->channels = p[0];
        memcpy(out->channel_ids, p + 1, p[0]);
        return check_channels(out);
    }
    return RV_OK;
}

rv_status rv_metadata_check(const rv_metadata *meta, uint16_t latent_dim, uint16_t output_size) {
    rv_status status;
    unsigned g;
    if (meta->kind != RV_KIND_NOTE && meta->kind != RV_KIND_PERC) {
        return RV_ERR_METADATA;
    }
    if (meta->base_note > 127) {
        return RV_ERR_METADATA; /* before the limits, as a zero row or tick count */
    }
    status = check_sizes(meta);
    if (status != RV_OK) {
        return status;
    }
    if (meta->n_groups > RV_MAX_GROUPS) {
        return RV_ERR_LIMIT_GROUPS;
    }
    if ((meta->kind == RV_KIND_PERC) != (meta->n_groups > 0)) {
        return RV_ERR_METADATA;
    }
    for (g = meta->n_groups; g < RV_MAX_GROUPS; g++) {
        if (meta->group_sizes[g] != 0) {
            return RV_ERR_METADATA;
        }
    }
    if (meta->kind == RV_KIND_NOTE && (unsigned)meta->base_note + meta->rows > 128u) {
        return RV_ERR_METADATA; /* the top row would be beyond MIDI note 127 */
    }
    if (check_channels(meta) != RV_OK ||
        (uint32_t)meta->rows * meta->ticks * RV_MAX(meta->channels, 1u) != output_size) {
        return RV_ERR_METADATA;
    }
    if (meta->has_extension && meta->latent_dim != latent_dim) {
        return RV_ERR_METADATA;
    }
    return RV_OK;
}
