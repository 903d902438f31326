/* The built-in model: the exporter's C arrays (rackvae export --carray) compiled into the firmware, so
   the module plays with no SD card. Zero copy: the descriptor points at weights in flash. */
#ifndef RV_DEFAULT_MODEL_H
#define RV_DEFAULT_MODEL_H

#include "rackvae.h"

extern const rv_model rv_default_model;

#endif
