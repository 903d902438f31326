/* Status codes as short English reasons, short enough for the module's display. */
#include "rackvae.h"

/* The reasons in rv_status order, each ended by its NUL: one string instead of a pointer table. Each
   fits the module's 21-character display line. */
static const char rv_status_text[] = "ok\0"
                                     "bad argument\0"
                                     "buffer too small\0"
                                     "file truncated\0"
                                     "not a TFLite model\0"
                                     "bad offset\0"
                                     "misaligned data\0"
                                     "not one subgraph\0"
                                     "op not supported\0"
                                     "bad activation\0"
                                     "bad tensor type\0"
                                     "not a decoder graph\0"
                                     "bad tensor shape\0"
                                     "bad weights or bias\0"
                                     "bad quantization\0"
                                     "no xen metadata\0"
                                     "bad xen metadata\0"
                                     "too many ticks\0"
                                     "too many rows\0"
                                     "too many groups\0"
                                     "too many layers\0"
                                     "layer too wide\0"
                                     "bad model descriptor\0"
                                     "wrong model type\0"
                                     "no model loaded\0"
                                     "unknown status";

const char *rv_status_str(rv_status status) {
    const char *text = rv_status_text;
    unsigned k = (unsigned)status < (unsigned)RV_STATUS_COUNT ? (unsigned)status : (unsigned)RV_STATUS_COUNT;
    while (k-- > 0) {
        while (*text++ != '\0') {
        }
    }
    return text;
}
