/* The models the module can play: the .tflite files in /models/note and /models/perc on the SD card
   (each directory sorted by name), then the built-in model compiled into the firmware. */
#ifndef RV_MODEL_LIST_H
#define RV_MODEL_LIST_H

#include <stdbool.h>

#define MODEL_LIST_CAPACITY 64
#define MODEL_PATH_CAPACITY 64

/* The built-in model's entry: an empty path. */
#define MODEL_BUILT_IN_NAME "built-in"

typedef struct {
    int count;
    int skipped; /* files not listed: the list was full or the name too long */
    char paths[MODEL_LIST_CAPACITY][MODEL_PATH_CAPACITY];
} model_list;

/* Reads both card directories; the built-in model is always the last entry. */
void model_list_scan(model_list *list);

/* Index of the entry with this path (MODEL_BUILT_IN_NAME for the built-in one), or -1. */
int model_list_find(const model_list *list, const char *path);

/* The card path of an entry, or MODEL_BUILT_IN_NAME. */
const char *model_list_name(const model_list *list, int index);

bool model_list_is_built_in(const model_list *list, int index);

#endif
