/* rackvae decoder core: public API. C99, no heap, no global state. */
#ifndef RACKVAE_H
#define RACKVAE_H

#define RV_VERSION_MAJOR 0
#define RV_VERSION_MINOR 1

/* Version of the compiled core, (major << 8) | minor. */
int rv_version(void);

#endif
