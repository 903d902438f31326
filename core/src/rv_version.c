#include "rackvae.h"

int rv_version(void) { return (RV_VERSION_MAJOR << 8) | RV_VERSION_MINOR; }
