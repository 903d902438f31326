#include "model_list.h"

#include <string.h>

#include "hal.h"

static const char *const model_dirs[] = {"/models/note", "/models/perc"};

typedef struct {
    model_list *list;
    const char *dir;
    int first; /* first entry of this directory, for sorting it alone */
} scan;

static bool has_tflite_suffix(const char *name)
{
    static const char suffix[] = ".tflite";
    size_t length = strlen(name), suffix_length = sizeof suffix - 1;
    if (length <= suffix_length) {
        return false;
    }
    for (size_t i = 0; i < suffix_length; ++i) {
        char c = name[length - suffix_length + i];
        if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != suffix[i]) {
            return false;
        }
    }
    return true;
}

static void add_file(const char *name, void *context)
{
    scan *s = context;
    model_list *list = s->list;
    if (!has_tflite_suffix(name)) {
        return;
    }
    size_t dir_length = strlen(s->dir), name_length = strlen(name);
    /* One entry stays free for the built-in model. */
    if (list->count >= MODEL_LIST_CAPACITY - 1 || dir_length + 1 + name_length >= MODEL_PATH_CAPACITY) {
        ++list->skipped;
        return;
    }
    /* Insertion sort within the directory: listings are short and the card's order is arbitrary. */
    int at = list->count;
    char path[MODEL_PATH_CAPACITY];
    memcpy(path, s->dir, dir_length);
    path[dir_length] = '/';
    memcpy(path + dir_length + 1, name, name_length + 1);
    while (at > s->first && strcmp(list->paths[at - 1], path) > 0) {
        memcpy(list->paths[at], list->paths[at - 1], MODEL_PATH_CAPACITY);
        --at;
    }
    memcpy(list->paths[at], path, MODEL_PATH_CAPACITY);
    ++list->count;
}

void model_list_scan(model_list *list)
{
    list->count = 0;
    list->skipped = 0;
    for (size_t d = 0; d < sizeof model_dirs / sizeof model_dirs[0]; ++d) {
        scan s = {list, model_dirs[d], list->count};
        hal_list_files(model_dirs[d], add_file, &s);
    }
    list->paths[list->count][0] = '\0';
    ++list->count;
}

bool model_list_is_built_in(const model_list *list, int index) { return list->paths[index][0] == '\0'; }

const char *model_list_name(const model_list *list, int index)
{
    return model_list_is_built_in(list, index) ? MODEL_BUILT_IN_NAME : list->paths[index];
}

int model_list_find(const model_list *list, const char *path)
{
    for (int i = 0; i < list->count; ++i) {
        if (strcmp(model_list_name(list, i), path) == 0) {
            return i;
        }
    }
    return -1;
}
