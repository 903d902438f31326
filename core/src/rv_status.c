/* Status codes as short English reasons. */
#include "rackvae.h"

static const char *const rv_status_text[RV_STATUS_COUNT] = {
    "ok",
    "invalid argument",
    "buffer too small",
    "file truncated",
    "not a TFLite model",
    "offset outside the file",
    "weight data misaligned",
    "not exactly one subgraph",
    "operator not supported",
    "fused activation not supported",
    "tensor type not supported",
    "graph is not a dense decoder",
    "tensor shape does not match",
    "weights or bias missing or of the wrong size",
    "quantization parameters not supported",
    "no xen metadata",
    "xen metadata malformed or not matching the model",
    "more ticks than RV_MAX_TICKS",
    "more rows than RV_MAX_ROWS",
    "more percussion groups than RV_MAX_GROUPS",
    "more layers than RV_MAX_LAYERS",
    "layer wider than RV_MAX_WIDTH or latent wider than RV_MAX_LATENT",
    "inconsistent model descriptor",
    "operation not available for this model type",
    "engine has no model",
};

const char *rv_status_str(rv_status status) {
    if ((unsigned)status >= (unsigned)RV_STATUS_COUNT) {
        return "unknown status";
    }
    return rv_status_text[status];
}
